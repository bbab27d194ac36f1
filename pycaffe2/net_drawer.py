"""Caffe2's `net_drawer`: pictures of nets and plans as Graphviz graphs.

`GetPydotGraph(net_or_ops, name=None, rankdir="LR")` draws ops and blobs,
`GetPydotGraphMinimal(...)` ops only (blobs become labelled edges;
`minimal_dependency=True` drops edges other edges imply). The DOT text is
pycaffe2.graph's. The result is a `pydot.Dot` when pydot is installed;
otherwise a `DotGraph` of ours with the pydot methods scripts call:
`to_string()`, `create(format=)`, `create_png()` / `create_svg()` /
`create_pdf()`, `write(path, format=)`, `write_png(path)`, ...

Pictures need Graphviz's `dot`. Without it a DotGraph's `create*` returns
b"" and prints one note to stderr (once), so notebook lines such as
`display.Image(graph.create_png(), width=800)` go on; `write*` of a picture
raises PyCaffe2Error instead, since an empty file would look like a
picture. `write(path)` (format "raw") writes the DOT text and always works.

Node producers (`op_node_producer(op, op_id)`, `blob_node_producer(node_name,
label)`, as Caffe2's `GetOpNodeProducer` / `GetBlobNodeProducer` make) return
nodes (pydot.Node or ours) whose label and attributes style the node.
"""
from __future__ import annotations

import itertools
import json
import sys

from pycaffe2 import graph
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2

OP_STYLE = {"shape": "box", "color": "#0F9D58", "style": "filled", "fontcolor": "#FFFFFF"}
BLOB_STYLE = {"shape": "octagon"}
# Formats Graphviz makes pictures in; "raw" (and "dot_source") is the DOT text itself.
FORMATS = ("png", "svg", "pdf", "ps", "jpg", "jpeg", "gif", "dot", "plain", "json")
MAX_PARALLEL_STEPS = 3

_noted = False


def _pydot():
    try:
        import pydot
    except ImportError:
        return None
    return pydot


class Node:
    """A graph node for producers when pydot is missing (pydot.Node's reading methods)."""

    def __init__(self, name: str, **attrs):
        self.name, self.attrs = str(name), {k: str(v) for k, v in attrs.items()}

    def get_name(self) -> str:
        return self.name

    def get_label(self):
        return self.attrs.get("label")

    def get_attributes(self) -> dict:
        return dict(self.attrs)


def _make_node(name: str, **attrs):
    pydot = _pydot()
    return pydot.Node(name, **attrs) if pydot is not None else Node(name, **attrs)


def _unquote(text: str) -> str:
    """A label as shown: Caffe2's producers JSON-quote names and labels."""
    text = str(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    return text


def _node_attributes(node) -> dict:
    """Label and attributes of a producer's node (pydot.Node, our Node, or a dict)."""
    if isinstance(node, dict):
        attrs = dict(node)
    elif hasattr(node, "get_attributes") and hasattr(node, "get_name"):
        attrs = dict(node.get_attributes())
        attrs.setdefault("label", node.get_name())
    else:
        raise PyCaffe2Error(f"net_drawer: a node producer returned {type(node).__name__}; "
                            "expected a pydot.Node, net_drawer.Node or a dict of attributes")
    if "label" in attrs:
        attrs["label"] = _unquote(attrs["label"])
    return attrs


def GetOpNodeProducer(append_output: bool, **kwargs):
    """A producer naming an op `name/Type (op#i)` (plus its outputs when append_output)."""
    def produce(op, op_id):
        text = f"{op.name}/{op.type} (op#{op_id})" if op.name else f"{op.type} (op#{op_id})"
        if append_output:
            text += "".join("\n" + out for out in op.output)
        return _make_node(text, **kwargs)
    return produce


def GetBlobNodeProducer(**kwargs):
    def produce(node_name, label):
        return _make_node(node_name, label=label, **kwargs)
    return produce


def _rectify_operator_and_name(operators_or_net, name):
    """(NetDef holding the ops, graph name) from a NetDef, a core.Net or a list of OperatorDefs."""
    if hasattr(operators_or_net, "Proto"):
        operators_or_net = operators_or_net.Proto()
    if isinstance(operators_or_net, caffe2_pb2.NetDef):
        return operators_or_net, name if name is not None else operators_or_net.name
    try:
        ops = list(operators_or_net)
    except TypeError:
        ops = None
    if ops is None or not all(isinstance(op, caffe2_pb2.OperatorDef) for op in ops):
        raise PyCaffe2Error(f"net_drawer: expected a NetDef, a core.Net or a list of OperatorDefs, "
                            f"got {type(operators_or_net).__name__}")
    net = caffe2_pb2.NetDef()
    net.op.extend(ops)
    return net, name if name is not None else "unnamed"


def _styles(op_node_producer, blob_node_producer) -> graph.Styles:
    def op_style(op, index):
        return _node_attributes(op_node_producer(op, index))

    def blob_style(name, label):
        return _node_attributes(blob_node_producer(name, label))

    return graph.Styles(op_style if op_node_producer else None, blob_style if blob_node_producer else None)


def _result(dot_text: str, name: str):
    pydot = _pydot()
    if pydot is not None:
        return pydot.graph_from_dot_data(dot_text)[0]
    return DotGraph(dot_text, name)


def GetPydotGraph(operators_or_net, name=None, rankdir="LR", op_node_producer=None, blob_node_producer=None):
    net, name = _rectify_operator_and_name(operators_or_net, name)
    text = graph.net_to_dot(net, name=name or "unnamed", rankdir=rankdir,
                            styles=_styles(op_node_producer, blob_node_producer))
    return _result(text, name or "unnamed")


def GetPydotGraphMinimal(operators_or_net, name=None, rankdir="LR", minimal_dependency=False,
                         op_node_producer=None):
    net, name = _rectify_operator_and_name(operators_or_net, name)
    text = graph.net_to_dot(net, minimal=True, name=name or "unnamed", rankdir=rankdir,
                            minimal_dependency=minimal_dependency, styles=_styles(op_node_producer, None))
    return _result(text, name or "unnamed")


def GetOperatorMapForPlan(plan_def) -> dict:
    """{"<plan>_<net>": ops} for each net of a PlanDef (unnamed nets: "<plan>_network_<i>")."""
    plan = plan_def.Proto() if hasattr(plan_def, "Proto") else plan_def
    return {f"{plan.name}_{net.name}" if net.name else f"{plan.name}_network_{i}": net.op
            for i, net in enumerate(plan.network)}


class _PlanDrawer:
    """Execution steps as boxes, their nets as ellipses; dashed edges from a step to its parts."""

    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def node(self, label: str, attrs: dict) -> str:
        node = f"n{self.count}"
        self.count += 1
        self.lines.append(f"{node} [{graph.attributes(dict(attrs, label=label))}];")
        return node

    def sub_edge(self, start: str, end: str) -> None:
        self.lines.append(f'{start} -> {end} [arrowhead="dot", style="dashed"];')

    def chain(self, nodes: list[str]) -> None:
        self.lines += [f"{a} -> {b};" for a, b in itertools.pairwise(nodes)]

    def steps(self, steps, linked: bool = True) -> list[str]:
        nodes = []
        for step in steps:
            label = [step.name]
            if step.report_net:
                label.append(f"Reporter: {step.report_net}")
            if step.should_stop_blob:
                label.append(f"Stopper: {step.should_stop_blob}")
            if step.concurrent_substeps:
                label.append("Concurrent")
            node = self.node("\n".join(label), OP_STYLE)
            nodes.append(node)
            if step.network:
                parts = [self.node(net, {}) for net in step.network]
                self.chain(parts)
            elif step.substep:
                shown = step.substep[:MAX_PARALLEL_STEPS] if step.concurrent_substeps else step.substep
                parts = self.steps(shown, linked=not step.concurrent_substeps)
                hidden = len(step.substep) - len(shown)
                if hidden:
                    parts.append(self.node(f"{hidden} more steps", OP_STYLE))
            else:
                raise PyCaffe2Error(f"net_drawer: execution step {step.name!r} has neither nets nor substeps")
            for part in parts if step.concurrent_substeps else parts[:1]:
                self.sub_edge(node, part)
        if linked:
            self.chain(nodes)
        return nodes


def GetPlanGraph(plan_def, name=None, rankdir="TB"):
    """The execution steps of a PlanDef (or core.Plan) and the nets they run."""
    plan = plan_def.Proto() if hasattr(plan_def, "Proto") else plan_def
    drawer = _PlanDrawer()
    drawer.steps(plan.execution_step)
    name = name if name is not None else (plan.name or "plan")
    return _result(graph.graph_text(name, drawer.lines, rankdir), name)


class DotGraph:
    """pydot.Dot's output methods over DOT text, without pydot."""

    def __init__(self, dot_text: str, name: str = "unnamed"):
        self.dot_text, self.name = dot_text, name

    def get_name(self) -> str:
        return self.name

    def to_string(self) -> str:
        return self.dot_text

    __str__ = to_string

    def create(self, prog=None, format="ps"):
        """The picture's bytes; b"" (with a note, once) when Graphviz's dot is missing."""
        if format in ("raw", "dot_source"):
            return self.dot_text.encode("utf-8")
        _check(prog, format)
        if not graph.have_dot():
            _note_missing_dot()
            return b""
        return graph.run_dot(self.dot_text, format, what=f"rendering graph {self.name!r}")

    def create_png(self, prog=None):
        return self.create(prog, "png")

    def create_svg(self, prog=None):
        return self.create(prog, "svg")

    def create_pdf(self, prog=None):
        return self.create(prog, "pdf")

    def write(self, path, prog=None, format="raw"):
        """Write the DOT text ("raw") or a picture; a picture without Graphviz's dot is an error."""
        if format in ("raw", "dot_source"):
            data = self.dot_text.encode("utf-8")
        else:
            _check(prog, format)
            if not graph.have_dot():
                raise PyCaffe2Error(f"cannot write {path}: Graphviz's `dot` is not installed (or not on PATH); "
                                    "install Graphviz, or write(path) the DOT text, which works without it")
            data = graph.run_dot(self.dot_text, format, what=f"writing {path}")
        try:
            with open(path, "wb") as out:
                out.write(data)
        except OSError as exc:
            raise PyCaffe2Error(f"{path}: cannot write: {exc.strerror}") from None
        return True

    def write_raw(self, path, prog=None):
        return self.write(path, prog, "raw")

    def write_png(self, path, prog=None):
        return self.write(path, prog, "png")

    def write_svg(self, path, prog=None):
        return self.write(path, prog, "svg")

    def write_pdf(self, path, prog=None):
        return self.write(path, prog, "pdf")


def _check(prog, fmt) -> None:
    if prog not in (None, "dot"):
        raise PyCaffe2Error(f"net_drawer: only Graphviz's `dot` draws graphs here, not {prog!r}")
    if fmt not in FORMATS:
        raise PyCaffe2Error(f"net_drawer: unknown format {fmt!r} (expected raw or one of {', '.join(FORMATS)})")


def _note_missing_dot() -> None:
    global _noted
    if not _noted:
        _noted = True
        print("net_drawer: Graphviz's `dot` is not installed, so graph pictures are empty (b''); "
              "to_string() still gives the DOT text", file=sys.stderr)
