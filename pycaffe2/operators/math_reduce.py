"""Reduction kernels (NumPy): SumElements, SumElementsInt, SumSqrElements,
RowwiseMax and ColwiseMax, with SumElementsGradient and the max gradient ops
(the gradient goes to every element tied with the maximum, as in Caffe2); and
ONNX's ReduceProd, ReduceSumSquare, ReduceLogSum and ReduceLogSumExp over `axes`
with their gradient ops, whose checks are the reduction family's
(schema.inference.reduction). The other checks are schema.inference.math_reduce's,
shared with the rules.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.elementwise import FLOAT, require_dtype
from pycaffe2.schema.inference.math_reduce import (
    INT32,
    check_max_gradient,
    check_sum_gradient,
    max_axis,
    max_shape,
)
from pycaffe2.schema.inference.reduction import gradient_kept, reduce_axes


def _total(values, average: bool, count: int):
    total = np.sum(values, dtype=values.dtype)
    if average:
        with np.errstate(invalid="ignore", divide="ignore"):  # the mean of nothing is NaN
            total = total / values.dtype.type(count)
    return np.asarray(total, dtype=values.dtype)


@register_cpu("SumElements")
def sum_elements(x, *, average):
    require_dtype(x, FLOAT)
    return _total(x, average, x.size)


@register_cpu("SumSqrElements")
def sum_sqr_elements(x, *, average):
    require_dtype(x, FLOAT)
    return _total(np.square(x), average, x.size)


@register_cpu("SumElementsInt")
def sum_elements_int(x):
    require_dtype(x, INT32)
    return np.asarray(np.sum(x, dtype=np.int32), dtype=np.int32)  # wraps as Caffe2's int32 sum


gradient_op("SumElements", "I0 GO0")


@register_cpu("SumElementsGradient")
def sum_elements_gradient(x, dy, *, average):
    check_sum_gradient(tuple(dy.shape))
    require_dtype(x, FLOAT)
    value = dy.reshape(-1)[0].astype(x.dtype)
    if average:
        value = value / x.dtype.type(max(x.size, 1))
    return np.full(x.shape, value, dtype=x.dtype)


def _max(op_type: str):
    axis = max_axis(op_type)

    def kernel(x):
        require_dtype(x, FLOAT)
        shape = max_shape(tuple(x.shape), axis)
        if x.size == 0:
            return np.empty(shape, x.dtype)
        return np.max(x, axis=axis)

    def gradient(x, y, dy):
        check_max_gradient(op_type, info_of(x), info_of(y), info_of(dy))
        y, dy = np.expand_dims(y, axis), np.expand_dims(dy, axis)
        return np.where(x == y, dy, x.dtype.type(0)).astype(x.dtype)

    kernel.__name__ = op_type.lower()
    gradient.__name__ = f"{op_type.lower()}_gradient"
    register_cpu(op_type)(kernel)
    register_cpu(f"{op_type}Gradient")(gradient)
    gradient_op(op_type, "I0 O0 GO0")


_max("RowwiseMax")
_max("ColwiseMax")


# --- ONNX's reductions over `axes` (ReduceProd, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp)

def _over_axes(op_type: str, function):
    """A kernel applying function(x, axes, keepdims) over the checked, canonical axes."""
    def kernel(x, *, axes, keepdims):
        axes = reduce_axes(op_type, x.shape, x.dtype.name, axes)
        with np.errstate(divide="ignore"):  # the log of an empty (or zero) sum is -inf
            return np.asarray(function(x, axes, bool(keepdims)), dtype=x.dtype)
    kernel.__name__ = op_type.lower()
    return register_cpu(op_type)(kernel)


def _log_sum_exp(x, axes, keepdims):
    # Shift by the maximum so exp never overflows; an infinite (or empty: -inf) maximum
    # is not shifted by, so the result is still inf or -inf.
    top = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0).astype(x.dtype)
    total = np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axes)


_over_axes("ReduceProd", lambda x, axes, keepdims: np.prod(x, axis=axes, keepdims=keepdims))
_over_axes("ReduceSumSquare", lambda x, axes, keepdims: np.sum(x * x, axis=axes, keepdims=keepdims))
_over_axes("ReduceLogSum", lambda x, axes, keepdims: np.log(np.sum(x, axis=axes, keepdims=keepdims)))
_over_axes("ReduceLogSumExp", _log_sum_exp)


def _gradient(op_type: str, function):
    """A gradient kernel (dY, X, Y) -> dX: function(dy, x, y, axes) with dY and Y reshaped to
    X's shape with the reduced axes as 1s (whatever keepdims was)."""
    def kernel(dy, x, y, *, axes):
        dy_kept = dy.reshape(gradient_kept("dY", x.shape, axes, dy.shape))
        y_kept = y.reshape(gradient_kept("Y", x.shape, axes, y.shape))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dx = function(dy_kept, x, y_kept, reduce_axes(op_type, x.shape, x.dtype.name, axes))
        return np.asarray(np.broadcast_to(dx, x.shape), dtype=dy.dtype)
    kernel.__name__ = f"{op_type.lower()}_gradient"
    register_cpu(f"{op_type}Gradient")(kernel)
    gradient_op(op_type, "GO0 I0 O0")


def _others_product(x, axes):
    """For each element, the product of the other elements reduced with it: exclusive
    products from the left times from the right, exact where X has zeros (Y / X is not)."""
    if x.size == 0:
        return np.zeros_like(x)
    moved = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
    rows = moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))
    ones = np.ones(rows.shape[:-1] + (1,), x.dtype)
    left = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.moveaxis((left * right).reshape(moved.shape), range(x.ndim - len(axes), x.ndim), axes)


_gradient("ReduceProd", lambda dy, x, y, axes: dy * _others_product(x, axes))
_gradient("ReduceSumSquare", lambda dy, x, y, axes: 2 * x * dy)
_gradient("ReduceLogSum", lambda dy, x, y, axes: dy / np.exp(y))
_gradient("ReduceLogSumExp", lambda dy, x, y, axes: dy * np.exp(x - y))
