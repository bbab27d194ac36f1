"""Math tensor kernels (NumPy): EnforceFinite, NegateGradient, Expand with
ExpandGradient, NumpyTile, Conditional and ReplaceNaN (also on CUDA,
math_tensor.cu). The checks are schema.inference.math_tensor's, shared with
the rules; Expand and NumpyTile check their output's size before allocating.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.elementwise import FLOAT, require_dtype
from pycaffe2.schema.inference.math_tensor import (
    check_conditional,
    check_expands_to,
    check_vector,
    expand_shape,
    tile_shape,
)

CU = "math_tensor.cu"



@register_cpu("EnforceFinite")
def enforce_finite(x):
    require_dtype(x, FLOAT, "input")
    if not np.isfinite(x).all():
        raise ValueError(f"the input {list(x.shape)} holds a NaN or an infinity")
    return ()


@register_cpu("NegateGradient")
def negate_gradient(x):
    return np.array(x, copy=True)


gradient_op("NegateGradient", "GO0", gradient_type="Negative")


@register_cpu("Expand")
def expand(x, shape):
    check_vector("shape", info_of(shape))
    y_shape = expand_shape(tuple(x.shape), tuple(shape.tolist()))
    return np.array(np.broadcast_to(x, y_shape))


gradient_op("Expand", "GO0 I0")


@register_cpu("ExpandGradient")
def expand_gradient(dy, x):
    check_expands_to(x.shape, dy.shape)
    offset = dy.ndim - x.ndim
    axes = tuple(i for i in range(dy.ndim) if i < offset or x.shape[i - offset] == 1)
    return np.asarray(np.sum(dy, axis=axes, dtype=dy.dtype).reshape(x.shape))


@register_cpu("NumpyTile")
def numpy_tile(data, repeats):
    check_vector("repeats", info_of(repeats))
    tile_shape(tuple(data.shape), tuple(repeats.tolist()))
    return np.tile(data, repeats.tolist()) if data.ndim else data.copy()


@register_cpu("Conditional")
def conditional(condition, data_t, data_f):
    check_conditional(info_of(condition), info_of(data_t), info_of(data_f))
    rows = condition.reshape((-1,) + (1,) * (data_t.ndim - 1))
    return np.where(rows, data_t, data_f)


@register_cpu("ReplaceNaN")
def replace_nan(x, *, value):
    require_dtype(x, FLOAT, "input")
    return np.where(np.isnan(x), x.dtype.type(value), x)


@register_cuda("ReplaceNaN", args=("value",))
def replace_nan_cuda(x, *, value):
    require_dtype(x, FLOAT, "input")
    return cuda.elementwise(CU, "replace_nan", ("value",))(x, value=value)
