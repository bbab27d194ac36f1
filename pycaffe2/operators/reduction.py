"""Reduction kernels (NumPy): ReduceSum, ReduceMean, ReduceMax over a set of
axes (all by default), their gradient ops (dY, X, Y) -> dX, and ArgMax.
Outputs keep the input's dtype (sums of ints stay ints, as in Caffe2), and a
full reduction without keepdims is a 0-d array, never a NumPy scalar. A
gradient op sees dY with the reduced axes restored as size-1 dims, whatever
`keepdims` was, and broadcasts it back over X."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.gradient.registry import gradient_op
from pycaffe2.operators import register_cpu


def _axes(op_type: str, x: np.ndarray, axes) -> tuple[int, ...]:
    """`axes` (None or empty: all) counted from the front, sorted, without repeats."""
    if not axes:
        return tuple(range(x.ndim))
    for axis in axes:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"{op_type}: axes entry {axis} is out of range for data "
                             f"{list(x.shape)}")
    return tuple(sorted({axis % x.ndim for axis in axes}))


def _reduce(op_type: str, function, x: np.ndarray, axes, keepdims) -> np.ndarray:
    axes = _axes(op_type, x, axes)
    return np.asarray(function(x, axis=axes, keepdims=bool(keepdims)), dtype=x.dtype)


@register_cpu("ReduceSum")
def reduce_sum(x, *, axes, keepdims):
    return _reduce("ReduceSum", np.sum, x, axes, keepdims)


@register_cpu("ReduceMean")
def reduce_mean(x, *, axes, keepdims):
    if x.dtype.kind != "f":
        raise ValueError(f"ReduceMean: data must be float, got {x.dtype}")
    return _reduce("ReduceMean", np.mean, x, axes, keepdims)


@register_cpu("ReduceMax")
def reduce_max(x, *, axes, keepdims):
    if any(x.shape[axis] == 0 for axis in _axes("ReduceMax", x, axes)):
        raise ValueError(f"ReduceMax: data {list(x.shape)} is empty along the reduced axes")
    return _reduce("ReduceMax", np.max, x, axes, keepdims)


def _kept(op_type: str, x: np.ndarray, axes, name: str, value: np.ndarray) -> np.ndarray:
    """`value` (dY or Y) reshaped with X's reduced axes as size-1 dims."""
    axes = _axes(op_type, x, axes)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if value.size != math.prod(shape):
        raise ValueError(f"{op_type}: {name} is {list(value.shape)} but reducing X "
                         f"{list(x.shape)} over axes {list(axes)} gives {list(shape)}")
    return value.reshape(shape)


@register_cpu("ReduceSumGradient")
def reduce_sum_gradient(dy, x, y, *, axes):
    return np.broadcast_to(_kept("ReduceSumGradient", x, axes, "dY", dy), x.shape).copy()


@register_cpu("ReduceMeanGradient")
def reduce_mean_gradient(dy, x, y, *, axes):
    count = math.prod(x.shape[axis] for axis in _axes("ReduceMeanGradient", x, axes))
    dx = np.broadcast_to(_kept("ReduceMeanGradient", x, axes, "dY", dy), x.shape)
    return dx / dy.dtype.type(max(count, 1))


@register_cpu("ReduceMaxGradient")
def reduce_max_gradient(dy, x, y, *, axes):
    # Every element equal to its maximum gets dY, ties included (as in Caffe2).
    dy = _kept("ReduceMaxGradient", x, axes, "dY", dy)
    y = _kept("ReduceMaxGradient", x, axes, "Y", y)
    return np.where(x == y, dy, dy.dtype.type(0))


for _type in ("ReduceSum", "ReduceMean", "ReduceMax"):
    gradient_op(_type, "GO0 I0 O0")


@register_cpu("ArgMax")
def arg_max(x, *, axis, keepdims):
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"ArgMax: axis {axis} is out of range for X {list(x.shape)}")
    if x.shape[axis] == 0:
        raise ValueError(f"ArgMax: X {list(x.shape)} is empty along axis {axis}")
    return np.asarray(np.argmax(x, axis=axis, keepdims=bool(keepdims)), dtype=np.int64)
