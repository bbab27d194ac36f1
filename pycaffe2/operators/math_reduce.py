"""Reduction kernels (NumPy): SumElements, SumElementsInt, SumSqrElements,
RowwiseMax and ColwiseMax, with SumElementsGradient and the max gradient ops
(the gradient goes to every element tied with the maximum, as in Caffe2). The
checks are schema.inference.math_reduce's, shared with the rules.
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
