"""Caffe2's C++ Predictor, as `workspace.Predictor(init_net, predict_net)` gives it.

The init net runs once, at construction, in a workspace of the predictor's own,
so its parameters neither come from nor land in the global workspace. The
predict net is created there once; each `run` feeds the inputs and returns the
predict net's external outputs, in order, as NumPy arrays.

As in Caffe2, `run` takes a list, fed to the predict net's external inputs by
position (the first external input gets the first array), or a dict from input
names to arrays.
"""
from __future__ import annotations

import itertools

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_from_bytes

_instances = itertools.count()


def as_netdef(net, what: str) -> caffe2_pb2.NetDef:
    """A NetDef from serialized bytes, a NetDef or a core.Net-like object (with Proto())."""
    net = net.Proto() if hasattr(net, "Proto") else net
    if isinstance(net, caffe2_pb2.NetDef):
        return net
    if isinstance(net, str):
        raise PyCaffe2Error(f"Predictor: {what} is a str; it needs the serialized NetDef as bytes "
                            "(read the .pb file in binary mode, open(path, 'rb'))")
    if not isinstance(net, (bytes, bytearray, memoryview)):
        raise PyCaffe2Error(f"Predictor: {what} must be a NetDef or its serialized bytes, "
                            f"not {type(net).__name__}")
    parsed, problem = message_from_bytes(caffe2_pb2.NetDef, net)
    if problem:
        raise PyCaffe2Error(f"Predictor: {what} is not a serialized NetDef: {problem}")
    return parsed


class Predictor:
    """Runs `predict_net` on inputs, with the parameters `init_net` makes."""

    def __init__(self, init_net, predict_net):
        init = as_netdef(init_net, "init_net")
        predict = caffe2_pb2.NetDef()
        predict.CopyFrom(as_netdef(predict_net, "predict_net"))
        predict.name = predict.name or "predict"
        self._ws = Workspace(f"predictor_{next(_instances)}")
        self._ws.RunNetOnce(init)
        self._ws.CreateNet(predict)
        self._net = predict
        initialized = set(self._ws.blobs)
        self.input_names = [n for n in predict.external_input if n not in initialized]
        self.output_names = list(predict.external_output)

    def run(self, inputs) -> list[np.ndarray]:
        """Feed `inputs` (a list by position over the external inputs, or a dict by
        name), run the predict net, and return its external outputs."""
        externals = list(self._net.external_input)
        if isinstance(inputs, dict):
            unknown = sorted(str(name) for name in inputs if str(name) not in externals)
            if unknown:
                raise PyCaffe2Error(f"Predictor: {', '.join(unknown)} not among the predict net's "
                                    f"external inputs ({', '.join(self.input_names) or 'none'} expected)")
            feeds = {str(name): value for name, value in inputs.items()}
        else:
            inputs = list(inputs)
            if len(inputs) > len(externals):
                raise PyCaffe2Error(f"Predictor: {len(inputs)} inputs given, but the predict net has "
                                    f"{len(externals)} external inputs")
            feeds = dict(zip(externals, inputs))
        for name, value in feeds.items():
            self._ws.FeedBlob(name, np.asarray(value))
        self._ws.RunNet(self._net.name)
        return self._ws.FetchBlobs(self.output_names)
