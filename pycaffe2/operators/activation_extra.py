"""Activation kernels ONNX has and Caffe2 lacks (NumPy, CPU only): Celu,
HardSwish, Mish, Shrink and their gradient ops. Float only, as the rest of
the activation family; the schema's float_identical rule does the type check.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.activation import _paired, sigmoid
from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.activation import float_dtypes


def _float(x) -> None:
    float_dtypes([x.dtype.name])


@register_cpu("Celu")
def celu(x, *, alpha):
    _float(x)
    t = x.dtype.type
    # expm1 of min(X, 0) never overflows where the positive side is taken.
    negative = t(alpha) * np.expm1(np.minimum(x, t(0)) / t(alpha))
    return np.asarray(np.where(x > 0, x, negative), dtype=x.dtype)


@register_cpu("CeluGradient")
@_paired("CeluGradient")
def celu_gradient(y, dy, *, alpha):
    _float(y)
    return np.asarray(np.where(y > 0, dy, dy * (y / y.dtype.type(alpha) + 1)), dtype=dy.dtype)


@register_cpu("HardSwish")
def hard_swish(x):
    _float(x)
    t = x.dtype.type
    return np.asarray(x * np.clip(x / t(6) + t(0.5), t(0), t(1)), dtype=x.dtype)


@register_cpu("HardSwishGradient")
@_paired("HardSwishGradient")
def hard_swish_gradient(x, dy):
    _float(x)
    t = x.dtype.type
    slope = np.where(x > 3, t(1), np.where(x < -3, t(0), x / t(3) + t(0.5)))
    return np.asarray(dy * slope, dtype=dy.dtype)


def _softplus_tanh(x):
    return np.tanh(np.logaddexp(x, x.dtype.type(0)))


@register_cpu("Mish")
def mish(x):
    _float(x)
    return np.asarray(x * _softplus_tanh(x), dtype=x.dtype)


@register_cpu("MishGradient")
@_paired("MishGradient")
def mish_gradient(x, dy):
    _float(x)
    t = _softplus_tanh(x)
    return np.asarray(dy * (t + x * sigmoid(x) * (1 - t * t)), dtype=dy.dtype)


@register_cpu("Shrink")
def shrink(x, *, bias, lambd):
    _float(x)
    t = x.dtype.type
    shrunk = np.where(x > t(lambd), x - t(bias), np.where(x < -t(lambd), x + t(bias), t(0)))
    return np.asarray(shrunk, dtype=x.dtype)


@register_cpu("ShrinkGradient")
@_paired("ShrinkGradient")
def shrink_gradient(x, dy, *, lambd):
    _float(x)
    return np.asarray(np.where(np.abs(x) > x.dtype.type(lambd), dy, dy.dtype.type(0)), dtype=dy.dtype)


gradient_op("Celu", "O0 GO0")
gradient_op("HardSwish", "I0 GO0")
gradient_op("Mish", "I0 GO0")
gradient_op("Shrink", "I0 GO0")
