"""Activation ONNX ops onto pycaffe2's activation ops, with ONNX's attribute
defaults passed explicitly (some differ from Caffe2's, e.g. Selu's float32-rounded
constants). PRelu takes Caffe2's PRelu when its slope is shared or per channel
(axis 1, or the last axis as NHWC), else Where(X < 0, X * slope, X).
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.onnx.context import FILL_OPS
from pycaffe2.onnx.registry import Unsupported, converter

# ONNX type -> (pycaffe2 type, {ONNX attribute: (pycaffe2 arg, ONNX default)})
ACTIVATIONS = {
    "Relu": ("Relu", {}),
    "Sigmoid": ("Sigmoid", {}),
    "Tanh": ("Tanh", {}),
    "Softplus": ("Softplus", {}),
    "Softsign": ("Softsign", {}),
    "HardSwish": ("HardSwish", {}),
    "Mish": ("Mish", {}),
    "LeakyRelu": ("LeakyRelu", {"alpha": ("alpha", 0.01)}),
    "Elu": ("Elu", {"alpha": ("alpha", 1.0)}),
    "Celu": ("Celu", {"alpha": ("alpha", 1.0)}),
    "Selu": ("Selu", {"alpha": ("alpha", 1.67326319217681884765625),
                      "gamma": ("scale", 1.05070102214813232421875)}),
    "HardSigmoid": ("HardSigmoid", {"alpha": ("alpha", 0.2), "beta": ("beta", 0.5)}),
    "ThresholdedRelu": ("ThresholdedRelu", {"alpha": ("alpha", 1.0)}),
    "Shrink": ("Shrink", {"bias": ("bias", 0.0), "lambd": ("lambd", 0.5)}),
    "Swish": ("Swish", {"alpha": ("alpha", 1.0)}),
}


def _input(node) -> str:
    x = node.input(0)
    if x is None:
        raise Unsupported(f"{node.op_type} needs an input")
    return x


@converter(*ACTIVATIONS)
def _activation(node, ctx):
    op_type, attrs = ACTIVATIONS[node.op_type]
    args = {arg: float(node.attr(name, default)) for name, (arg, default) in attrs.items()}
    ctx.op(op_type, [_input(node)], node.outputs[:1], **args)


@converter("Gelu")
def _gelu(node, ctx):
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate {approximate!r} (none or tanh)")
    ctx.op("Gelu", [_input(node)], node.outputs[:1], fast_gelu=int(approximate == "tanh"))


def _prelu_order(x_shape, slope_shape) -> str | None:
    """The order under which Caffe2's PRelu reads this slope as ONNX broadcasts it (one
    value, or one per entry of axis 1 (NCHW) or of the last axis (NHWC)); None if neither."""
    if x_shape is None or slope_shape is None or None in slope_shape:
        return None
    if math.prod(slope_shape) == 1:
        return "NCHW"
    rank = len(x_shape)
    if rank < 2 or len(slope_shape) > rank:
        return None
    aligned = (1,) * (rank - len(slope_shape)) + tuple(slope_shape)
    stretched = [axis for axis, dim in enumerate(aligned) if dim != 1]
    if stretched == [1] and x_shape[1] == aligned[1]:
        return "NCHW"
    if stretched == [rank - 1] and x_shape[-1] == aligned[-1]:
        return "NHWC"
    return None


@converter("PRelu")
def _prelu(node, ctx):
    x, slope = _input(node), node.input(1)
    if slope is None:
        raise Unsupported("PRelu needs a slope input")
    out = node.outputs[:1]
    order = _prelu_order(ctx.shape(x), ctx.shape(slope))
    if order is not None:
        ctx.op("PRelu", [x, slope], out, order=order)
        return
    dtype = ctx.dtype(x)
    if dtype is not None and np.dtype(dtype) in FILL_OPS:
        scaled, negative = ctx.fresh("prelu_scaled"), ctx.fresh("prelu_negative")
        ctx.op("Mul", [x, slope], [scaled])
        ctx.op("LT", [x, ctx.constant(np.zeros((), dtype))], [negative])
        ctx.op("Where", [negative, scaled, x], out, numpy_broadcast=1)
        return
    # dtype unknown: Relu(X) + slope * (X - Relu(X)) (NaN for an infinite X)
    positive, rest = ctx.fresh("prelu_positive"), ctx.fresh("prelu_rest")
    ctx.op("Relu", [x], [positive])
    ctx.op("Sub", [x, positive], [rest])
    ctx.op("Mul", [rest, slope], [rest])
    ctx.op("Add", [positive, rest], out)
