"""Converters of ONNX's sequence-shaped ops: RNN, GRU and LSTM (one pycaffe2 op each, the
whole sequence), NonMaxSuppression, the signal ops (windows, DFT, STFT, MelWeightMatrix),
TfIdfVectorizer. Control flow (If, Loop, Scan) is in sequence_control.py.

An omitted optional input before a given one becomes an empty constant, which these
pycaffe2 ops read as absent; an omitted output gets a fresh name."""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.registry import Unsupported, converter, np_dtype
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.inference.fill import NUMPY_NAMES

_ACTIVATIONS = {name.lower(): name for name in (
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu",
    "Softsign", "Softplus")}


def gap_inputs(node, ctx, count: int | None = None) -> list[str]:
    """The node's inputs up to the last given one, an empty constant for each omitted one."""
    names = list(node.inputs if count is None else node.inputs[:count])
    while names and not names[-1]:
        names.pop()
    return [name or ctx.constant(np.zeros(0, np.float32)) for name in names]


def named_outputs(node, ctx) -> list[str]:
    """The node's outputs up to the last wanted one, a fresh name for each omitted one."""
    names = list(node.outputs)
    while names and not names[-1]:
        names.pop()
    return [name or ctx.fresh(f"{node.op_type.lower()}_unused") for name in names]


def caffe2_dtype(onnx_type: int) -> int:
    """ONNX's TensorProto.DataType number as Caffe2's (their numbering differs)."""
    dtype = np_dtype(onnx_type)
    for caffe2_name, numpy_name in NUMPY_NAMES.items():
        if dtype is not None and numpy_name == dtype.name and caffe2_name != "BYTE":
            return caffe2_pb2.TensorProto.DataType.Value(caffe2_name)
    raise Unsupported(f"data type {onnx_type} ({dtype}) has no pycaffe2 tensor type")


def _activations(node) -> list[str]:
    names = []
    for name in node.attr("activations", []):
        if name.lower() not in _ACTIVATIONS:
            raise Unsupported(f"activation '{name}' (pycaffe2's {node.op_type} has "
                              f"{', '.join(_ACTIVATIONS.values())})")
        names.append(_ACTIVATIONS[name.lower()])
    return names


@converter("RNN", "GRU", "LSTM")
def _recurrent(node, ctx):
    args = {name: node.attr(name) for name in ("hidden_size", "direction", "activation_alpha",
                                               "activation_beta", "clip", "layout") if node.has_attr(name)}
    if node.has_attr("activations"):
        args["activations"] = _activations(node)
    if "clip" in args and not args["clip"] > 0:
        raise Unsupported(f"clip {args['clip']} (it must be positive)")
    if node.op_type == "GRU":
        args["linear_before_reset"] = node.attr("linear_before_reset", 0)
    if node.op_type == "LSTM":
        args["input_forget"] = node.attr("input_forget", 0)
    ctx.op(node.op_type, gap_inputs(node, ctx), named_outputs(node, ctx), **args)


@converter("NonMaxSuppression")
def _non_max_suppression(node, ctx):
    ctx.op("NonMaxSuppression", gap_inputs(node, ctx), node.outputs,
           center_point_box=node.attr("center_point_box", 0))


@converter("HannWindow", "HammingWindow", "BlackmanWindow")
def _window(node, ctx):
    ctx.op(node.op_type, [node.input(0)], node.outputs, periodic=node.attr("periodic", 1),
           output_datatype=caffe2_dtype(node.attr("output_datatype", 1)))


def _dft(node, ctx, axis: int):
    ctx.op("DFT", gap_inputs(node, ctx, 2), node.outputs, axis=axis, inverse=node.attr("inverse", 0),
           onesided=node.attr("onesided", 0))


@converter("DFT", since=20)
def _dft20(node, ctx):
    axis = node.input(2)
    _dft(node, ctx, -2 if axis is None else int(np.asarray(ctx.require(axis, "DFT's axis")).reshape(-1)[0]))


@converter("DFT", since=17)
def _dft17(node, ctx):
    _dft(node, ctx, node.attr("axis", 1))


@converter("STFT")
def _stft(node, ctx):
    ctx.op("STFT", gap_inputs(node, ctx), node.outputs, onesided=node.attr("onesided", 1))


@converter("MelWeightMatrix")
def _mel_weight_matrix(node, ctx):
    ctx.op("MelWeightMatrix", node.inputs, node.outputs,
           output_datatype=caffe2_dtype(node.attr("output_datatype", 1)))


@converter("TfIdfVectorizer")
def _tfidf_vectorizer(node, ctx):
    if node.has_attr("pool_strings"):
        raise Unsupported("pool_strings (pycaffe2's TfIdfVectorizer counts int n-grams only)")
    args = {name: node.attr(name) for name in ("mode", "min_gram_length", "max_gram_length", "max_skip_count",
                                               "ngram_counts", "ngram_indexes", "pool_int64s", "weights")
            if node.has_attr(name)}
    ctx.op("TfIdfVectorizer", node.inputs, node.outputs, **args)
