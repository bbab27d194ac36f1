"""The inference passes over a Graph, and what they record: SpatialBN folding, test-mode
Dropout removal, Conv + Relu fusion, ops in place (pycaffe2.transforms says when each applies)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import bind_args
from pycaffe2.schema.inference.fill import constant_dtype, fill_shape, given_dtype
from pycaffe2.transforms.graph import Graph, Node, Value, bound_args, canonical

FOLD_INTO = ("Conv", "ConvTranspose", "FC")
CONSTANT_FILLS = ("ConstantFill", "GivenTensorFill", "GivenTensorDoubleFill", "GivenTensorFp16Fill",
                  "GivenTensorIntFill", "GivenTensorInt64Fill", "GivenTensorInt16Fill", "GivenTensorBoolFill")


@dataclass
class Record:
    """What optimize_inference did, by op index in the input net, and what it left and why."""

    folded: list[str] = field(default_factory=list)  # "op 2 (SpatialBN) into op 1 (Conv)"
    dropped: list[str] = field(default_factory=list)  # "op 60 (Dropout)"
    copied: list[str] = field(default_factory=list)  # Dropouts turned into a Copy
    fused: list[str] = field(default_factory=list)  # "op 3 (Relu) into op 2 (Conv)": a ConvRelu
    in_place: list[tuple[int, str]] = field(default_factory=list)  # (op index, op type)
    skipped: list[str] = field(default_factory=list)  # "op 7 (SpatialBN): training mode (is_test=0)"

    def summary(self) -> str:
        """'folded 53 SpatialBN, dropped 1 Dropout, 49 Relu in place, 16 Sum in place'."""
        parts = [f"folded {len(self.folded)} SpatialBN"] if self.folded else []
        if self.dropped:
            parts.append(f"dropped {len(self.dropped)} Dropout")
        if self.copied:
            parts.append(f"{len(self.copied)} Dropout made a Copy")
        if self.fused:
            parts.append(f"{len(self.fused)} Conv + Relu fused")
        counts = Counter(op_type for _, op_type in self.in_place)
        parts += [f"{n} {op_type} in place" for op_type, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        return ", ".join(parts) or "nothing to do"


# ---------------------------------------------------------------- parameters

def constant_params(init_net: caffe2_pb2.NetDef | None, names) -> dict:
    """{name: array} for each of `names` whose last writer in `init_net` is a constant fill
    without inputs (GivenTensor*Fill, ConstantFill)."""
    last = {}
    for op in (init_net.op if init_net is not None else ()):
        for name in op.output:
            last[name] = op
    found = {}
    for name in names:
        op = last.get(name)
        if op is None or op.type not in CONSTANT_FILLS or op.input or len(op.output) != 1:
            continue
        args = bind_args(get_schema(op.type), op)
        try:
            shape = fill_shape(args["shape"], args["extra_shape"], args["input_as_shape"], False)
            if op.type == "ConstantFill":
                found[name] = np.full(shape, args["value"], dtype=constant_dtype(args["value"], args["dtype"]))
            else:
                found[name] = np.array(args["values"] or [], dtype=given_dtype(op.type, args["dtype"])).reshape(shape)
        except (PyCaffe2Error, ValueError, TypeError):
            continue  # the op's own fault: running the init net reports it
    return found


class Params:
    """Parameter arrays by name, read on demand; fresh names for new ones."""

    def __init__(self, params, init_net, taken):
        self.given, self.init_net, self.taken = dict(params or {}), init_net, set(taken)
        self.new: dict[str, np.ndarray] = {}

    def get(self, name: str):
        if name not in self.given:
            self.given.update(constant_params(self.init_net, [name]))
        value = self.given.get(name)
        return value if isinstance(value, np.ndarray) and value.dtype.kind == "f" else None

    def add(self, base: str, array: np.ndarray) -> str:
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        self.new[name] = array
        return name


# ---------------------------------------------------------------- the passes

def drop_dropouts(graph: Graph, record: Record) -> None:
    for node in graph.nodes:
        if not node.alive or canonical(node) != "Dropout" or len(node.inputs) != 1 or not node.outputs:
            continue  # (a malformed one is the checker's to report)
        if not bound_args(node)["is_test"]:
            record.skipped.append(f"{node.label()}: training mode (is_test=0)")
            continue
        if len(node.outputs) > 1 and (node.outputs[1].readers or node.outputs[1].pinned):
            record.skipped.append(f"{node.label()}: its mask '{node.outputs[1].name}' is read")
            continue
        x, y = node.inputs[0], node.outputs[0]
        last = max((r.pos for r in y.readers), default=node.pos)
        if x.name == y.name or (not y.pinned and not _written(graph, x.name, node.pos, last)):
            graph.remove(node)  # Y's readers read X: nothing writes X before the last of them
            graph.merge(x, y)
            record.dropped.append(node.label())
        elif x.readers == [node] and graph.rename(x, y.name, node):
            graph.remove(node)
            graph.merge(x, y)
            record.dropped.append(node.label())
        else:  # Y must keep its name and X its own: a copy is the cheapest correct op
            copy = caffe2_pb2.OperatorDef(type="Copy", name=node.op.name, input=[x.name], output=[y.name])
            if node.op.HasField("device_option"):
                copy.device_option.CopyFrom(node.op.device_option)
            node.op, node.outputs = copy, [y]
            record.copied.append(node.label())


def _written(graph: Graph, name: str, start: int, stop: int) -> bool:
    """Whether a live op after position start, up to stop, writes `name`."""
    return any(n.alive and any(v.name == name for v in n.outputs) for n in graph.nodes[start + 1:stop + 1])


def fold_batch_norms(graph: Graph, params: Params, record: Record) -> None:
    for bn in graph.nodes:
        if bn.alive and canonical(bn) == "SpatialBN":
            why = _fold(graph, bn, params)
            if why is None:
                record.folded.append(f"{bn.label()} into {bn.inputs[0].producer.label()}")
            else:
                record.skipped.append(f"{bn.label()}: {why}")


def _fold(graph: Graph, bn: Node, params: Params) -> str | None:
    """Fold one SpatialBN into its input's producer; None when done, else why not."""
    args = bound_args(bn)
    if not args["is_test"] or len(bn.outputs) != 1:
        return "training mode (is_test=0)"
    if len(bn.inputs) < 5:
        return f"{len(bn.inputs)} inputs (X, scale, bias, mean and var needed)"
    z, y = bn.inputs[0], bn.outputs[0]
    op = z.producer
    if op is None or canonical(op) not in FOLD_INTO or op.outputs.index(z) != 0:
        return f"its input '{z.name}' is not made by a Conv, ConvTranspose or FC in this net"
    if len(op.inputs) < (3 if canonical(op) == "FC" else 2):
        return f"{op.label()} lacks its weights"
    others = sorted({r.index for r in z.readers if r is not bn})
    if others or z.readers.count(bn) != 1:
        return f"'{z.name}' is also read by " + (", ".join(f"op {i}" for i in others) or "the SpatialBN")
    if z.pinned:
        return f"'{z.name}' must keep its name (an external input or output, kept, or named by a net in an op)"
    folded = _folded_arrays(op, args, [v for v in bn.inputs[1:5]], params)
    if isinstance(folded, str):
        return folded
    if z.name != y.name and not graph.rename(z, y.name, bn):
        return f"'{y.name}' is used between {op.label()} and the SpatialBN"
    weight, bias = folded
    base = f"{op.inputs[2].name}_folded" if len(op.inputs) > 2 else f"{op.inputs[1].name}_folded_bias"
    _use_param(op, 1, params.add(f"{op.inputs[1].name}_folded", weight))
    _use_param(op, 2, params.add(base, bias))
    graph.remove(bn)
    graph.merge(z, y)
    return None


def _folded_arrays(op: Node, bn_args: dict, bn_inputs, params: Params):
    """(W', b') of `op` with the SpatialBN folded in, or why that cannot be done."""
    kind, op_args = canonical(op), bound_args(op)
    values = [op.inputs[1], *(op.inputs[2:3]), *bn_inputs]
    if any(v.producer is not None for v in values):
        return "a parameter is computed in the net, not given"
    arrays = [params.get(v.name) for v in values]
    missing = [v.name for v, a in zip(values, arrays) if a is None]
    if missing:
        return f"the value of '{missing[0]}' is not known (no float array in params or a constant fill)"
    w, b = arrays[0], (arrays[1] if len(op.inputs) > 2 else None)
    scale, shift, mean, var = (a.astype(np.float64).reshape(-1) for a in arrays[-4:])
    order = bn_args["order"]
    if kind != "FC" and op_args["order"] != order:
        return f"{op.op.type} order {op_args['order']} differs from the SpatialBN's {order}"
    if kind == "FC" and order == "NCHW" and op_args["axis"] != 1:
        return "FC axis != 1 puts its outputs off the SpatialBN's channel axis"
    s = scale / np.sqrt(var + bn_args["epsilon"])
    scaled = _scale_channels(kind, w, s, op_args, order)
    if scaled is None or any(a.size != s.size for a in (shift, mean)) or (b is not None and b.size != s.size):
        return f"parameter sizes do not match {s.size} channels"
    bias = np.zeros(s.size) if b is None else b.astype(np.float64).reshape(-1)
    return scaled.astype(w.dtype), ((bias - mean) * s + shift).astype(w.dtype if b is None else b.dtype)


def _scale_channels(kind: str, w: np.ndarray, s: np.ndarray, op_args: dict, order: str):
    """W with each output channel scaled by s, or None when the shapes do not fit."""
    w64 = w.astype(np.float64)
    if kind == "FC":
        axis_w = op_args["axis_w"]
        n = int(np.prod(w.shape[:axis_w]))
        return None if n != s.size else (w64.reshape(n, -1) * s[:, None]).reshape(w.shape)
    if kind == "Conv":
        return None if w.ndim < 2 or w.shape[0] != s.size else w64 * s.reshape((-1,) + (1,) * (w.ndim - 1))
    group = op_args["group"]  # ConvTranspose: [C, M/group, k...] (NCHW) or [C, k..., M/group] (NHWC)
    per_group = w.shape[1] if order == "NCHW" else w.shape[-1]
    if w.ndim < 2 or w.shape[0] % group or per_group * group != s.size:
        return None
    grouped = w64.reshape(group, w.shape[0] // group, *w.shape[1:])
    if order == "NCHW":
        factor = s.reshape((group, 1, per_group) + (1,) * (w.ndim - 2))
    else:
        factor = s.reshape((group, 1) + (1,) * (w.ndim - 2) + (per_group,))
    return (grouped * factor).reshape(w.shape)


def _use_param(node: Node, slot: int, name: str) -> None:
    value = Value(name, None)
    value.readers.append(node)
    if slot < len(node.inputs):
        old = node.inputs[slot]
        old.readers = [r for r in old.readers if r is not node] + [r for r in old.readers if r is node][1:]
        node.inputs[slot] = value
    else:
        node.inputs.append(value)


def fuse_conv_relu(graph: Graph, record: Record) -> None:
    """Conv then Relu -> ConvRelu (Caffe2's fused op), when only the Relu reads the Conv."""
    for relu in graph.nodes:
        if not relu.alive or canonical(relu) != "Relu" or len(relu.inputs) != 1 or len(relu.outputs) != 1:
            continue
        z, y = relu.inputs[0], relu.outputs[0]
        conv = z.producer
        if conv is None or canonical(conv) != "Conv" or z.pinned or z.readers != [relu]:
            continue
        if z.name != y.name and not graph.name_free(conv.pos, relu.pos, y.name):
            continue
        record.fused.append(f"{relu.label()} into {conv.label()}")
        fused = caffe2_pb2.OperatorDef()
        fused.CopyFrom(conv.op)
        fused.type = "ConvRelu"
        kept = [arg for arg in conv.op.arg if arg.name != "no_gradient_to_input"]  # not a ConvRelu arg
        del fused.arg[:]
        fused.arg.extend(kept)
        conv.op, conv.outputs, y.producer = fused, [y], conv
        graph.remove(relu)


def make_in_place(graph: Graph, record: Record) -> None:
    for node in graph.nodes:
        schema = get_schema(node.op.type)
        if not node.alive or schema is None or not (schema.inplace_any or schema.inplace_allowed):
            continue
        for o, y in enumerate(node.outputs):
            if any(v.name == y.name for v in node.inputs):
                continue  # in place already
            for i, x in enumerate(node.inputs):
                if schema.inplace_ok(i, o) and x.readers == [node] and graph.rename(x, y.name, node):
                    record.in_place.append((node.index, node.op.type))
                    break
