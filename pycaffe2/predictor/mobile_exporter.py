"""Caffe2's mobile_exporter: a net and its trained parameters as the model zoo's
pair of nets. The init net holds each parameter's current value in a GivenTensor
fill of its type, and a 1x1 placeholder for each data input (what a Predictor
overwrites). The predict net is the net itself, its external inputs the data
inputs first (so a Predictor fed a list gets them in order), then the parameters
(as the model zoo's predict nets list them) and the rest, and
its external outputs the blobs that no op reads."""
from __future__ import annotations

import numpy as np

from pycaffe2 import core
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor


def add_tensor(net: caffe2_pb2.NetDef, name: str, blob) -> None:
    """Append to `net` the op that makes blob `name` hold `blob`'s value (a uint8 array
    as its raw bytes, in one GivenTensorByteStringToUInt8Fill, as Caffe2 saves it; an
    Int8 blob in Int8GivenTensorFill or, int32 data, Int8GivenIntTensorFill)."""
    if isinstance(blob, Int8Tensor):
        data = np.asarray(blob.data)
        uint8 = data.dtype == np.uint8
        net.op.append(core.CreateOperator(
            "Int8GivenTensorFill" if uint8 else "Int8GivenIntTensorFill", [], [name], shape=list(data.shape),
            values=data.tobytes() if uint8 else data.ravel().tolist(),
            Y_scale=float(blob.scale), Y_zero_point=int(blob.zero_point)))
        return
    array = np.asarray(blob)
    if array.dtype == np.uint8:
        net.op.append(core.CreateOperator("GivenTensorByteStringToUInt8Fill", [], [name], shape=list(array.shape),
                                          values=[array.tobytes()]))
        return
    with core.NameScope("", reset=True):  # the name is already whole; no scope joins it
        fill = core.Net("add_tensor")
        fill.Const(array, name)
    net.op.extend(fill.Proto().op)


def _data_flow(net: caffe2_pb2.NetDef) -> tuple[list[str], list[str]]:
    """(blobs read before any op writes them, blobs written that no op reads), in the
    order the net first mentions them."""
    written, read_first, read = set(), {}, set()
    for op in net.op:
        for name in op.input:
            read.add(name)
            if name not in written:
                read_first.setdefault(name, None)
        written.update(op.output)
    outputs = {}
    for op in net.op:
        for name in op.output:
            if name not in read:
                outputs.setdefault(name, None)
    return list(read_first), list(outputs)


def Export(workspace, net, params) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """(init_net, predict_net) for `net` (a core.Net or NetDef), with the values of
    `params` taken from `workspace` (the workspace module or a Workspace)."""
    proto = net.Proto() if hasattr(net, "Proto") else net
    params = [str(p) for p in params]
    predict_net = caffe2_pb2.NetDef()
    predict_net.CopyFrom(proto)
    init_net = caffe2_pb2.NetDef(name=f"{proto.name}_init" if proto.name else "init")
    read_first, outputs = _data_flow(proto)
    inputs = [name for name in read_first if name not in params]
    for name in params:
        add_tensor(init_net, name, workspace.FetchBlob(name))
    for name in inputs:
        init_net.op.append(core.CreateOperator("GivenTensorFill", [], [name], shape=[1, 1], values=[0.0]))
    externals = list(dict.fromkeys(inputs + params + list(proto.external_input)))
    del predict_net.external_input[:]
    predict_net.external_input.extend(externals)
    del predict_net.external_output[:]
    predict_net.external_output.extend(outputs)
    return init_net, predict_net
