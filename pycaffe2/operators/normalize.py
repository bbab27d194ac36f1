"""NumPy kernels of the normalize family: LpNorm (L1 or squared L2 of a whole
tensor) and Normalize / NormalizeL1 (along one axis), with the gradient ops of
LpNorm and Normalize. Shape checks are the schema's
(schema/inference/normalize.py), shared with `validate`.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference import same_shape
from pycaffe2.schema.inference.normalize import lp_norm_gradient_inputs, lp_norm_inputs, normalize_axis

EPSILON = 1e-12  # Caffe2's kEps: LpNorm's sign threshold, Normalize's least norm


def _size(x, average):
    return x.size if average else 1


@register_cpu("LpNorm")
def lp_norm(x, *, p, average):
    lp_norm_inputs(x.shape, x.dtype.name, average)
    total = np.sum(np.abs(x), dtype=np.float64) if p == 1 else np.sum(np.square(x, dtype=np.float64))
    return np.array([total / _size(x, average)], x.dtype)


gradient_op("LpNorm", "I0 GO0")


@register_cpu("LpNormGradient")
def lp_norm_gradient(x, dout, *, p, average):
    lp_norm_gradient_inputs(x.shape, x.dtype.name, dout.shape, average)
    scale = dout.reshape(()).astype(x.dtype) / x.dtype.type(_size(x, average))
    if p == 1:
        sign = np.where(x > EPSILON, 1, np.where(x < -EPSILON, -1, 0)).astype(x.dtype)
        return sign * scale
    return (x * x.dtype.type(2) * scale).astype(x.dtype, copy=False)


def _l2_norm(x, axis):
    norm = np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
    return np.maximum(norm, x.dtype.type(EPSILON))


@register_cpu("Normalize")
def normalize(x, *, axis):
    axis = normalize_axis(x.shape, x.dtype.name, axis)
    return (x / _l2_norm(x, axis)).astype(x.dtype, copy=False)


gradient_op("Normalize", "I0 GO0")


@register_cpu("NormalizeGradient")
def normalize_gradient(x, dy, *, axis):
    axis = normalize_axis(x.shape, x.dtype.name, axis)
    same_shape(dy.shape, x.shape, ("dY", "X"))
    norm = _l2_norm(x, axis)
    dot = np.sum(x * dy, axis=axis, keepdims=True)
    return (dy / norm - x * (dot / norm**3)).astype(x.dtype, copy=False)


@register_cpu("NormalizeL1")
def normalize_l1(x, *, axis):
    axis = normalize_axis(x.shape, x.dtype.name, axis)
    norm = np.sum(np.abs(x), axis=axis, keepdims=True)
    return np.divide(x, norm, out=x.copy(), where=norm != 0)
