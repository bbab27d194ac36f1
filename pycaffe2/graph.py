"""Pictures of nets: Graphviz DOT written by hand, rendered by Graphviz's `dot`.

`net_to_dot` draws ops as boxes (type, index and short args) and blobs as
ellipses, with edges blob -> op -> blob. A blob written in place gets one node
per version ("h", then "h (v2)"), so the picture stays acyclic. Gradient ops
(`is_gradient_op`, or a type ending in Gradient/Grad) are grey. Parameters are
bold and filled: a blob is a parameter when the net reads it before any op
writes it and either the model's init net writes it or some op reads it at a
parameter input, one its schema flags with a `param` kind other than
`constant` (FC's W and b, Conv's filter and bias, SpatialBN's scale, bias,
mean and var, ...). `minimal=True` draws only the ops, each blob becoming an
edge from its writer to its readers labelled with its name. Node ids are
generated (op0, b3), so blob and op names only ever appear inside escaped,
quoted labels.

`minimal_dependency=True` (minimal mode) drops an edge a -> c when c also
reads from some b that depends on a. `styles` (net_drawer's node producers)
may replace an op's or blob's attributes: callables op(op, index) and
blob(name, label) returning a dict of DOT attributes, or None for ours.

`render` writes .dot itself and calls `dot -Tsvg` / `-Tpng` for pictures
(`run_dot` returns the picture's bytes); `graph_main` is
`pycaffe2 graph FILE -o OUT [--minimal]`.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import arg_value
from pycaffe2.schema.opschema import PARAMETER_KINDS

PICTURE_FORMATS = ("svg", "png")
MAX_ARGS, MAX_LIST, MAX_TEXT = 6, 4, 24

_OP_STYLE = 'shape=box, style="rounded"'
_GRAD_OP_STYLE = 'shape=box, style="rounded,filled", fillcolor="#e0e0e0", color="#909090", fontcolor="#606060"'
_BLOB_STYLE = "shape=ellipse"
_PARAM_STYLE = 'shape=ellipse, style="bold,filled", fillcolor="#fff2b3"'
_ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RANKDIRS = ("TB", "LR", "BT", "RL")
_CONTROL = {"\n": "\\\\n", "\r": "\\\\r", "\t": "\\\\t"}


def escape(text: str) -> str:
    """`text` made safe inside a double-quoted DOT string, shown literally.

    Backslashes and quotes are escaped, '&' becomes '&amp;' (Graphviz reads
    HTML entities in plain labels) and control characters show as \\n, \\xNN.
    Braces and '<' are plain characters in a quoted, non-record label.
    """
    out = []
    for ch in str(text):
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "&":
            out.append("&amp;")
        elif ch in _CONTROL:
            out.append(_CONTROL[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def is_gradient(op: caffe2_pb2.OperatorDef) -> bool:
    return op.is_gradient_op or op.type.endswith(("Gradient", "Grad"))


# ---------------------------------------------------------------- labels

def _short(value) -> str:
    if isinstance(value, caffe2_pb2.NetDef):
        return f"<net {value.name}>" if value.name else "<net>"
    if isinstance(value, caffe2_pb2.TensorProto):
        return "<tensor>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        items = [_short(v) for v in value[:MAX_LIST]]
        return "[" + ", ".join(items + (["…"] if len(value) > MAX_LIST else [])) + "]"
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def op_label(op: caffe2_pb2.OperatorDef, index: int, with_args: bool) -> str:
    """The escaped label of an op box: type and index, then (with_args) one short arg a line."""
    lines = [escape(f"{op.type} #{index}")]
    if with_args:
        for arg in op.arg[:MAX_ARGS]:
            lines.append(escape(f"{arg.name}={_short(arg_value(arg))}"))
        if len(op.arg) > MAX_ARGS:
            lines.append("…")
    return "\\n".join(lines)


def attributes(attrs: dict) -> str:
    """A DOT attribute list from a dict: names must be plain identifiers, values are
    quoted; a newline in a value is a line break (a producer's multi-line label)."""
    parts = []
    for key, value in attrs.items():
        if not _ATTR_NAME.match(str(key)):
            raise PyCaffe2Error(f"graph: attribute name {str(key)!r} is not a plain identifier")
        parts.append(f'{key}="' + "\\n".join(escape(line) for line in str(value).split("\n")) + '"')
    return ", ".join(parts)


@dataclass
class Styles:
    """Optional per-node attribute overrides (None or a callable's None: our own style)."""
    op: Callable | None = None      # (op, index) -> dict | None
    blob: Callable | None = None    # (name, label) -> dict | None


# ---------------------------------------------------------------- one net

def _as_netdef(net) -> caffe2_pb2.NetDef:
    return net.Proto() if hasattr(net, "Proto") else net


def _weight_reads(net: caffe2_pb2.NetDef) -> set[str]:
    """Blobs some op reads at a parameter input (by its schema's `param` flags)."""
    found = set()
    for op in net.op:
        schema = get_schema(op.type)
        if schema is not None:
            found.update(name for i, name in enumerate(op.input)
                         if schema.input_param(i) in PARAMETER_KINDS)
    return found


class _Drawer:
    """Emits the statements of one net; node ids start with `prefix`."""

    def __init__(self, net: caffe2_pb2.NetDef, prefix: str, params: set[str], styles: Styles | None = None):
        self.net, self.prefix = net, prefix
        self.styles = styles or Styles()
        self.params = params | _weight_reads(net)
        self.lines: list[str] = []
        self.current: dict[str, str] = {}  # blob name -> node id of its latest version
        self.versions: dict[str, int] = {}
        self.count = 0

    def blob_node(self, name: str, written: bool) -> str:
        """The node of `name`'s current version; a write makes a new version."""
        if name in self.current and not written:
            return self.current[name]
        version = self.versions.get(name, 0) + 1
        self.versions[name] = version
        node = f"{self.prefix}b{self.count}"
        self.count += 1
        label = name if version == 1 else f"{name} (v{version})"
        custom = self.styles.blob(name, label) if self.styles.blob else None
        if custom is not None:
            self.lines.append(f"{node} [{attributes(custom)}];")
        else:
            style = _PARAM_STYLE if version == 1 and not written and name in self.params else _BLOB_STYLE
            self.lines.append(f'{node} [{style}, label="{escape(label)}"];')
        self.current[name] = node
        return node

    def full(self) -> list[str]:
        for index, op in enumerate(self.net.op):
            node = f"{self.prefix}op{index}"
            inputs = list(dict.fromkeys(self.blob_node(b, written=False) for b in op.input))
            self.lines.append(self.op_node(op, index, with_args=True))
            self.lines += [f"{blob} -> {node};" for blob in inputs]
            for name in dict.fromkeys(op.output):
                self.lines.append(f"{node} -> {self.blob_node(name, written=True)};")
        return self.lines

    def minimal(self, minimal_dependency: bool = False) -> list[str]:
        producer: dict[str, int] = {}
        ancestors: list[set[int]] = []  # per op: every op it depends on, directly or not
        for index, op in enumerate(self.net.op):
            self.lines.append(self.op_node(op, index, with_args=False))
            edges: dict[int, list[str]] = {}
            for name in dict.fromkeys(op.input):
                if name in producer:
                    edges.setdefault(producer[name], []).append(name)
            ancestors.append(set(edges).union(*(ancestors[p] for p in edges)))
            if minimal_dependency:  # an edge another parent already implies is dropped
                edges = {p: names for p, names in edges.items()
                         if not any(p in ancestors[q] for q in edges if q != p)}
            for source, names in edges.items():
                label = escape(", ".join(names))
                self.lines.append(f'{self.prefix}op{source} -> {self.prefix}op{index} [label="{label}"];')
            producer.update((name, index) for name in op.output)
        return self.lines

    def op_node(self, op, index: int, with_args: bool) -> str:
        custom = self.styles.op(op, index) if self.styles.op else None
        if custom is not None:
            return f"{self.prefix}op{index} [{attributes(custom)}];"
        style = _GRAD_OP_STYLE if is_gradient(op) else _OP_STYLE
        return f'{self.prefix}op{index} [{style}, label="{op_label(op, index, with_args)}"];'


def _statements(net, minimal: bool, prefix: str, params, styles: Styles | None = None,
                minimal_dependency: bool = False) -> list[str]:
    drawer = _Drawer(_as_netdef(net), prefix, set(params or ()), styles)
    return drawer.minimal(minimal_dependency) if minimal else drawer.full()


def graph_text(name: str, body: list[str], rankdir: str | None = None) -> str:
    head = [f'digraph "{escape(name)}" {{', 'node [fontname="Helvetica", fontsize=10];',
            'edge [fontname="Helvetica", fontsize=9];']
    if rankdir is not None:
        if rankdir not in RANKDIRS:
            raise PyCaffe2Error(f"graph: rankdir {rankdir!r} is not one of {', '.join(RANKDIRS)}")
        head.append(f"rankdir={rankdir};")
    return "\n".join(head[:1] + ["  " + line for line in head[1:] + body] + ["}"]) + "\n"


def net_to_dot(net, minimal: bool = False, name: str | None = None, params=None, rankdir: str | None = None,
               minimal_dependency: bool = False, styles: Styles | None = None) -> str:
    """DOT text for a NetDef or core.Net. `params`: blob names known to be
    parameters (say, what the init net writes), added to the schema rule."""
    proto = _as_netdef(net)
    body = _statements(proto, minimal, "", params, styles, minimal_dependency)
    return graph_text(name or proto.name or "net", body, rankdir)


def plan_to_dot(plan, minimal: bool = False, name: str | None = None, params=None) -> str:
    """DOT text for a PlanDef (or core.Plan): each of its nets as a cluster."""
    proto = plan.Proto() if hasattr(plan, "Proto") else plan
    body = []
    for i, net in enumerate(proto.network):
        body.append(f"subgraph cluster_{i} {{")
        body.append(f'  label="{escape(net.name or f"net {i}")}";')
        body += ["  " + line for line in _statements(net, minimal, f"n{i}_", params)]
        body.append("}")
    return graph_text(name or proto.name or "plan", body)


def model_to_dot(model, minimal: bool = False) -> str:
    """DOT text for a netfile.Model: its plan's nets if it has a plan, else its
    predict net; what the init net writes counts as parameters."""
    params = {b for op in model.init_net.op for b in op.output} if model.init_net else set()
    if model.plan is not None and len(model.plan.network):
        return plan_to_dot(model.plan, minimal, params=params)
    return net_to_dot(model.predict_net, minimal, params=params)


# ---------------------------------------------------------------- output

def render(dot_text: str, out_path) -> None:
    """Write `dot_text` to a .dot file, or render it to .svg/.png with Graphviz's `dot`."""
    out = Path(out_path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt == "dot":
        try:
            out.write_text(dot_text, encoding="utf-8")
        except OSError as exc:
            raise PyCaffe2Error(f"{out}: cannot write: {exc.strerror}") from None
        return
    if fmt not in PICTURE_FORMATS:
        raise PyCaffe2Error(f"{out}: unknown picture format '{out.suffix}' (expected .svg, .png or .dot)")
    if not have_dot():
        raise PyCaffe2Error(f"cannot write {out}: Graphviz's `dot` is not installed (or not on PATH); "
                            "install Graphviz, or write `-o file.dot`, which works without it")
    picture = run_dot(dot_text, fmt, what=f"writing {out}")
    try:
        out.write_bytes(picture)
    except OSError as exc:
        raise PyCaffe2Error(f"{out}: cannot write: {exc.strerror}") from None


def have_dot() -> bool:
    return shutil.which("dot") is not None


def run_dot(dot_text: str, fmt: str, what: str = "rendering") -> bytes:
    """The picture Graphviz's `dot -T<fmt>` makes of `dot_text` (the caller checked have_dot)."""
    dot = shutil.which("dot")
    if dot is None:
        raise PyCaffe2Error(f"{what}: Graphviz's `dot` is not installed (or not on PATH)")
    result = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise PyCaffe2Error(f"Graphviz's dot failed {what}: {message}")
    return result.stdout


def graph_main(file, out, minimal: bool = False, allow_outside_paths: bool = False) -> int:
    """`pycaffe2 graph FILE -o OUT [--minimal]`: draw a net, model or plan file."""
    from pycaffe2.netfile import load_model
    render(model_to_dot(load_model(file, allow_outside_paths=allow_outside_paths), minimal), out)
    return 0
