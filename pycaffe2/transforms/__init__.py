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

from typing import NamedTuple

import numpy as np

from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.checker import CONCURRENT_NET_TYPES
from pycaffe2.transforms import passes
from pycaffe2.transforms.graph import Graph, inner_names
from pycaffe2.transforms.passes import CONSTANT_FILLS, FOLD_INTO, Params, Record, constant_params

__all__ = ["CONSTANT_FILLS", "FOLD_INTO", "Optimized", "Record", "constant_params", "optimize_inference"]

_FILL_OF = {"float32": "GivenTensorFill", "float64": "GivenTensorDoubleFill", "float16": "GivenTensorFp16Fill"}


class Optimized(NamedTuple):
    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef | None  # with fills of the new arrays, without those no net reads now
    params: dict  # the new (folded) arrays by blob name: what a workspace must be fed
    record: Record


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
    graph, record = Graph(predict_net, keep), Record()
    taken = {name for op in predict_net.op for name in (*op.input, *op.output)}
    taken |= set(predict_net.external_input) | set(predict_net.external_output) | graph.inner | keep
    if init_net is not None:
        taken |= {name for op in init_net.op for name in op.output} | set(init_net.external_output)
    store = Params(params, init_net, taken | set(params or ()) | set(reserved))
    if drop_dropout:
        passes.drop_dropouts(graph, record)
    if fold_batch_norm:
        passes.fold_batch_norms(graph, store, record)
    if fuse_conv_relu:
        passes.fuse_conv_relu(graph, record)
    if in_place and predict_net.type in CONCURRENT_NET_TYPES:
        record.skipped.append(f"in place: a {predict_net.type} net needs one writer per blob")
    elif in_place:
        passes.make_in_place(graph, record)
    predict = graph.emit(predict_net)
    unread = _unread(predict_net, predict) - keep - set(predict.external_output)
    predict.external_input[:] = [n for n in predict_net.external_input if n not in unread]
    predict.external_input.extend(store.new)
    init = None if init_net is None else _new_init(init_net, store.new, unread)
    return Optimized(predict, init, store.new, record)


def _unread(before: caffe2_pb2.NetDef, after: caffe2_pb2.NetDef) -> set[str]:
    """Blobs `before` read that `after` no longer reads."""
    def read(net):
        return {name for op in net.op for name in op.input} | inner_names(net)
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
