"""Inference graph transforms, as Caffe2's fusion passes had them: explicit and testable.

`optimize_inference(predict_net, init_net, params=..., keep=...)` returns new nets (its
inputs are never changed) where
- a test-mode SpatialBN is folded into the Conv, ConvTranspose or FC that makes its input,
  when nothing else reads that op's output: W' = W * s and b' = (b - mean) * s + bias per
  output channel, s = scale / sqrt(var + epsilon) (Caffe2's opt/fusion.cc). The folded
  arrays get new names, `<filter>_folded` and `<bias>_folded` (`<filter>_folded_bias` for a
  Conv that had no bias), with `_1`, `_2` ... when a name is taken; the originals stay;
- a test-mode Dropout (Y = X) is dropped: its readers read X; when Y must keep its name
  (an external output, a kept blob), X's producer writes Y instead, else it becomes a Copy;
- optionally, a Conv read only by a Relu becomes one ConvRelu (Caffe2's fused op);
- an op is made in place (Relu, Sum, Add, ...: whatever its schema's in-place rules allow)
  by renaming its input's producer output to the op's output, when nothing else reads that
  input and its name is neither an external input/output nor kept (not in a `dag` net,
  whose blobs need one writer each).

Values of the parameters come from `params` ({name: array}), else from the constant fills
(GivenTensor*Fill, ConstantFill) of the init net; a SpatialBN whose parameters are not known
is left, with the reason in the record. The analysis follows each version of a blob (a net
may write a name many times), so renaming never changes what any op reads; blobs that nets
inside ops' args (If, While, RecurrentNetwork ...) name are never renamed.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import inner_nets
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import bind_args
from pycaffe2.schema.checker import CONCURRENT_NET_TYPES
from pycaffe2.schema.inference.fill import constant_dtype, fill_shape, given_dtype

__all__ = ["Optimized", "Record", "constant_params", "optimize_inference"]

FOLD_INTO = ("Conv", "ConvTranspose", "FC")
CONSTANT_FILLS = ("ConstantFill", "GivenTensorFill", "GivenTensorDoubleFill", "GivenTensorFp16Fill",
                  "GivenTensorIntFill", "GivenTensorInt64Fill", "GivenTensorInt16Fill", "GivenTensorBoolFill")
_FILL_OF = {"float32": "GivenTensorFill", "float64": "GivenTensorDoubleFill", "float16": "GivenTensorFp16Fill"}


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


class Optimized(NamedTuple):
    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef | None  # with fills of the new arrays, without those no net reads now
    params: dict  # the new (folded) arrays by blob name: what a workspace must be fed
    record: Record


# ---------------------------------------------------------------- the graph: blob versions

class _Value:
    """One version of a blob: written by one op output (producer None: from outside the net)."""

    __slots__ = ("name", "pinned", "producer", "readers")

    def __init__(self, name: str, producer):
        self.name, self.producer, self.readers, self.pinned = name, producer, [], producer is None


class _Node:
    __slots__ = ("alive", "index", "inputs", "op", "outputs", "pos")

    def __init__(self, op, index: int):
        self.op, self.index, self.pos, self.alive = op, index, index, True
        self.inputs: list[_Value] = []
        self.outputs: list[_Value] = []

    def label(self) -> str:
        return f"op {self.index} ({self.op.type})"


class _Graph:
    def __init__(self, net: caffe2_pb2.NetDef, keep):
        self.nodes: list[_Node] = []
        live: dict[str, _Value] = {}
        for index, op in enumerate(net.op):
            node = _Node(op, index)
            for name in op.input:
                value = live.get(name) or live.setdefault(name, _Value(name, None))
                value.readers.append(node)
                node.inputs.append(value)
            for name in op.output:
                live[name] = _Value(name, node)
                node.outputs.append(live[name])
            self.nodes.append(node)
        # Names nets inside args use, and external inputs' names: no version of them is renamed.
        self.inner = _inner_names(net) | set(net.external_input)
        for name in {*net.external_output, *keep}:
            if name in live:  # the final version keeps its name: it is what is fetched
                live[name].pinned = True
        for node in self.nodes:
            for value in (*node.inputs, *node.outputs):
                value.pinned = value.pinned or value.name in self.inner

    def name_free(self, start: int, stop: int, name: str) -> bool:
        """No live op strictly between positions start and stop reads or writes `name`."""
        return not any(node.alive and any(v.name == name for v in (*node.inputs, *node.outputs))
                       for node in self.nodes[start + 1:stop])

    def rename(self, value: _Value, name: str, until: _Node) -> bool:
        """Call `value` (made in the net, read up to `until`) `name`, with the versions that ops
        before it overwrote in place (so they stay in place); False, changing nothing, when
        that could change what an op reads."""
        chain = [value]  # value, then the version its producer overwrote in place, ...
        while chain[-1].producer is not None:
            same = [v for v in chain[-1].producer.inputs if v.name == chain[-1].name]
            if not same:
                break
            chain.append(same[0])
        if name in self.inner or any(v.pinned or v.producer is None for v in chain):
            return False
        if not self.name_free(chain[-1].producer.pos, until.pos, name):
            return False
        if not all(_producer_allows(v, name, chain) for v in chain):
            return False
        for v in chain:
            v.name = name
        return True

    def remove(self, node: _Node) -> None:
        node.alive = False
        for value in node.inputs:
            value.readers = [r for r in value.readers if r is not node]

    @staticmethod
    def merge(into: _Value, old: _Value) -> None:
        """Readers of `old` read `into` instead (same name by now, or renamed by the caller)."""
        for reader in old.readers:
            reader.inputs = [into if v is old else v for v in reader.inputs]
        into.readers += old.readers
        into.pinned = into.pinned or old.pinned

    def emit(self, net: caffe2_pb2.NetDef) -> caffe2_pb2.NetDef:
        out = caffe2_pb2.NetDef()
        out.CopyFrom(net)
        del out.op[:]
        for node in self.nodes:
            if node.alive:
                op = out.op.add()
                op.CopyFrom(node.op)
                op.input[:] = [v.name for v in node.inputs]
                op.output[:] = [v.name for v in node.outputs]
        return out


def _producer_allows(value: _Value, name: str, chain: list[_Value]) -> bool:
    """Whether the op making `value` may write it as `name` (its schema's in-place rules)."""
    producer = value.producer
    schema = get_schema(producer.op.type)
    slot = producer.outputs.index(value)
    if schema is None or any(o == slot and producer.inputs[i] not in chain for i, o in schema.inplace_enforced
                             if i < len(producer.inputs)):
        return False
    if any(v.name == name for o, v in enumerate(producer.outputs) if o != slot):
        return False
    return all(schema.inplace_ok(i, slot) for i, v in enumerate(producer.inputs) if v.name == name)


def _inner_names(net: caffe2_pb2.NetDef) -> set[str]:
    names, stack = set(), [net]
    while stack:
        current = stack.pop()
        for op in current.op:
            if current is not net:
                names.update(op.input)
                names.update(op.output)
            stack.extend(inner for _, inner in inner_nets(op))
    return names


def _canonical(node: _Node) -> str | None:
    schema = get_schema(node.op.type)
    return schema.type if schema is not None else None


def _args(node: _Node) -> dict:
    return bind_args(get_schema(node.op.type), node.op)


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


class _Params:
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

def _drop_dropouts(graph: _Graph, record: Record) -> None:
    for node in graph.nodes:
        if not node.alive or _canonical(node) != "Dropout" or len(node.inputs) != 1 or not node.outputs:
            continue  # (a malformed one is the checker's to report)
        if not _args(node)["is_test"]:
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


def _written(graph: _Graph, name: str, start: int, stop: int) -> bool:
    """Whether a live op after position start, up to stop, writes `name`."""
    return any(n.alive and any(v.name == name for v in n.outputs) for n in graph.nodes[start + 1:stop + 1])


def _fold_batch_norms(graph: _Graph, params: _Params, record: Record) -> None:
    for bn in graph.nodes:
        if bn.alive and _canonical(bn) == "SpatialBN":
            why = _fold(graph, bn, params)
            if why is None:
                record.folded.append(f"{bn.label()} into {bn.inputs[0].producer.label()}")
            else:
                record.skipped.append(f"{bn.label()}: {why}")


def _fold(graph: _Graph, bn: _Node, params: _Params) -> str | None:
    """Fold one SpatialBN into its input's producer; None when done, else why not."""
    args = _args(bn)
    if not args["is_test"] or len(bn.outputs) != 1:
        return "training mode (is_test=0)"
    if len(bn.inputs) < 5:
        return f"{len(bn.inputs)} inputs (X, scale, bias, mean and var needed)"
    z, y = bn.inputs[0], bn.outputs[0]
    op = z.producer
    if op is None or _canonical(op) not in FOLD_INTO or op.outputs.index(z) != 0:
        return f"its input '{z.name}' is not made by a Conv, ConvTranspose or FC in this net"
    if len(op.inputs) < (3 if _canonical(op) == "FC" else 2):
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


def _folded_arrays(op: _Node, bn_args: dict, bn_inputs, params: _Params):
    """(W', b') of `op` with the SpatialBN folded in, or why that cannot be done."""
    kind, op_args = _canonical(op), _args(op)
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


def _use_param(node: _Node, slot: int, name: str) -> None:
    value = _Value(name, None)
    value.readers.append(node)
    if slot < len(node.inputs):
        old = node.inputs[slot]
        old.readers = [r for r in old.readers if r is not node] + [r for r in old.readers if r is node][1:]
        node.inputs[slot] = value
    else:
        node.inputs.append(value)


def _fuse_conv_relu(graph: _Graph, record: Record) -> None:
    """Conv then Relu -> ConvRelu (Caffe2's fused op), when only the Relu reads the Conv."""
    for relu in graph.nodes:
        if not relu.alive or _canonical(relu) != "Relu" or len(relu.inputs) != 1 or len(relu.outputs) != 1:
            continue
        z, y = relu.inputs[0], relu.outputs[0]
        conv = z.producer
        if conv is None or _canonical(conv) != "Conv" or z.pinned or z.readers != [relu]:
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


def _make_in_place(graph: _Graph, record: Record) -> None:
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


# ---------------------------------------------------------------- the entry point

def optimize_inference(predict_net: caffe2_pb2.NetDef, init_net: caffe2_pb2.NetDef | None = None, *,
                       params=None, keep=(), reserved=(), fold_batch_norm: bool = True,
                       drop_dropout: bool = True, in_place: bool = True,
                       fuse_conv_relu: bool = False) -> Optimized:
    """The inference transforms of this module's docstring, on copies of the nets.

    `params` ({blob: array}) gives parameter values (else the init net's constant fills
    do); `keep` names blobs that must stay fetchable after a run, as external outputs do;
    `reserved` names the new arrays must not take (a workspace's blobs). The returned init
    net (None without one) fills the new arrays and no longer fills the parameters that
    only the removed SpatialBNs and the folded ops read. `fuse_conv_relu` also turns a Conv
    read only by a Relu into one ConvRelu (Caffe2 ran it with its dnnlowp ops only, so
    files written for Caffe2 leave it off)."""
    keep = set(keep)
    graph, record = _Graph(predict_net, keep), Record()
    taken = {name for op in predict_net.op for name in (*op.input, *op.output)}
    taken |= set(predict_net.external_input) | set(predict_net.external_output) | graph.inner | keep
    if init_net is not None:
        taken |= {name for op in init_net.op for name in op.output} | set(init_net.external_output)
    store = _Params(params, init_net, taken | set(params or ()) | set(reserved))
    if drop_dropout:
        _drop_dropouts(graph, record)
    if fold_batch_norm:
        _fold_batch_norms(graph, store, record)
    if fuse_conv_relu:
        _fuse_conv_relu(graph, record)
    if in_place and predict_net.type in CONCURRENT_NET_TYPES:
        record.skipped.append(f"in place: a {predict_net.type} net needs one writer per blob")
    elif in_place:
        _make_in_place(graph, record)
    predict = graph.emit(predict_net)
    unread = _unread(predict_net, predict) - keep - set(predict.external_output)
    predict.external_input[:] = [n for n in predict_net.external_input if n not in unread]
    predict.external_input.extend(store.new)
    init = None if init_net is None else _new_init(init_net, store.new, unread)
    return Optimized(predict, init, store.new, record)


def _unread(before: caffe2_pb2.NetDef, after: caffe2_pb2.NetDef) -> set[str]:
    """Blobs `before` read that `after` no longer reads."""
    def read(net):
        return {name for op in net.op for name in op.input} | _inner_names(net)
    return read(before) - read(after)


def _new_init(init_net: caffe2_pb2.NetDef, new: dict, unread: set[str]) -> caffe2_pb2.NetDef:
    """The init net without the fills of `unread` blobs (when no init op reads them),
    with a fill for each new array."""
    read = {name for op in init_net.op for name in op.input}
    drop = unread - read
    init = caffe2_pb2.NetDef()
    init.CopyFrom(init_net)
    del init.op[:]
    for op in init_net.op:
        if not (op.output and not op.input and set(op.output) <= drop):
            init.op.add().CopyFrom(op)
    for name, array in new.items():
        fill = _FILL_OF.get(array.dtype.name, "GivenTensorFill")
        op = init.op.add(type=fill, output=[name])
        op.arg.add(name="shape", ints=list(array.shape))
        op.arg.add(name="values", floats=array.astype(np.float32).ravel().tolist())
    init.external_output[:] = [n for n in init_net.external_output if n not in drop]
    init.external_output.extend(new)
    return init
