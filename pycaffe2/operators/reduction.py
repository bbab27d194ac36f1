"""Reduction kernels (NumPy): ReduceSum, ReduceMean, ReduceMax over a set of
axes (all by default), their gradient ops (dY, X, Y) -> dX, and ArgMax.
Outputs keep the input's dtype (sums of ints stay ints, as in Caffe2), and a
full reduction without keepdims is a 0-d array, never a NumPy scalar. A
gradient op sees dY with the reduced axes restored as size-1 dims, whatever
`keepdims` was, and broadcasts it back over X. The CUDA launchers (float32;
ArgMax also int32 and int64) sum with arithmetic.cu's strided reductions and
search maxima with reduction.cu. Every shape and type check is the family's
inference module's (schema/inference/reduction.py), so CreateNet, the CPU and
CUDA give the same errors."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._strided import _collapse, _device_ints, _reduction_layout, _strides_over
from pycaffe2.operators.arithmetic import _reduce_cuda
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema.inference.reduction import (
    arg_max_axis,
    gradient_kept,
    kept_dims,
    reduce_axes,
    reduced_axes,
    reduced_shape,
)


def _reduce(op_type: str, function, x: np.ndarray, axes, keepdims) -> np.ndarray:
    axes = reduce_axes(op_type, x.shape, x.dtype.name, axes)
    return np.asarray(function(x, axis=axes, keepdims=bool(keepdims)), dtype=x.dtype)


@register_cpu("ReduceSum")
def reduce_sum(x, *, axes, keepdims):
    return _reduce("ReduceSum", np.sum, x, axes, keepdims)


@register_cpu("ReduceMean")
def reduce_mean(x, *, axes, keepdims):
    return _reduce("ReduceMean", np.mean, x, axes, keepdims)


@register_cpu("ReduceMax")
def reduce_max(x, *, axes, keepdims):
    return _reduce("ReduceMax", np.max, x, axes, keepdims)


def _kept(x: np.ndarray, axes, name: str, value: np.ndarray) -> np.ndarray:
    """`value` (dY or Y) reshaped with X's reduced axes as size-1 dims."""
    return cuda.reshape(value, gradient_kept(name, x.shape, axes, value.shape))


def _count(x, axes) -> int:
    """How many elements each output of a reduction of x over `axes` reduces."""
    return math.prod(x.shape[axis] for axis in reduced_axes(x.shape, axes))


@register_cpu("ReduceSumGradient")
def reduce_sum_gradient(dy, x, y, *, axes):
    return np.broadcast_to(_kept(x, axes, "dY", dy), x.shape).copy()


@register_cpu("ReduceMeanGradient")
def reduce_mean_gradient(dy, x, y, *, axes):
    dx = np.broadcast_to(_kept(x, axes, "dY", dy), x.shape)
    return dx / dy.dtype.type(max(_count(x, axes), 1))


@register_cpu("ReduceMaxGradient")
def reduce_max_gradient(dy, x, y, *, axes):
    # Every element equal to its maximum gets dY, ties included (as in Caffe2).
    dy, y = _kept(x, axes, "dY", dy), _kept(x, axes, "Y", y)
    return np.where(x == y, dy, dy.dtype.type(0))


gradient_op("ReduceSum", "GO0 I0 O0")
gradient_op("ReduceMean", "GO0 I0 O0")
gradient_op("ReduceMax", "GO0 I0 O0")


@register_cpu("ArgMax")
def arg_max(x, *, axis, keepdims):
    axis = arg_max_axis(x.shape, axis)
    return np.asarray(np.argmax(x, axis=axis, keepdims=bool(keepdims)), dtype=np.int64)


# --- CUDA launchers: sums by arithmetic.cu, maxima and gradients by reduction.cu ---------------

CU = "reduction.cu"
_SEARCH_KERNELS = {np.dtype(np.float32): "float", np.dtype(np.int32): "int", np.dtype(np.int64): "int64"}


def _reduce_shapes(op_type: str, x, axes, keepdims) -> tuple:
    """(float32 x on the GPU, canonical axes, x's shape with them as 1s, the output's shape)."""
    axes = reduce_axes(op_type, x.shape, x.dtype.name, axes)
    (x,) = cuda.float32_inputs(x)
    return x, axes, kept_dims(x.shape, axes), reduced_shape(x.shape, axes, keepdims)


@register_cuda("ReduceSum")
def reduce_sum_cuda(x, *, axes, keepdims):
    x, axes, kept, shape = _reduce_shapes("ReduceSum", x, axes, keepdims)
    return _reduce_cuda(x, kept, shape)


@register_cuda("ReduceMean")
def reduce_mean_cuda(x, *, axes, keepdims):
    x, axes, kept, shape = _reduce_shapes("ReduceMean", x, axes, keepdims)
    count = math.prod(x.shape[axis] for axis in axes)
    if count == 0:  # np.mean over nothing: NaN
        return cuda.empty(shape).fill(np.float32(np.nan))
    return _reduce_cuda(x, kept, shape, 1.0 / count)


def _search_cuda(x, kept: tuple, y, index) -> None:
    """The maximum of x (non-empty along its reduced dims, the 1s of `kept`) for each element
    of `kept`: its value into y and its row-major position among the reduced elements into
    index, either NULL. Laid out as arithmetic.py's _reduce_cuda lays out its sums."""
    n_out = math.prod(kept)
    if n_out == 0:
        return
    meta, n_kept, n_reduced, n_red = _reduction_layout(x.shape, kept)
    args = (x, y, index, meta, n_kept, n_reduced, np.int64(n_out), np.int64(n_red))
    kind = _SEARCH_KERNELS[x.dtype]
    if n_red <= 32 or n_out >= 65536:
        cuda.launch(CU, f"max_serial_{kind}", n_out, *args)
    else:  # one block per output element; the kernel assumes 256 threads
        cuda.function(CU, f"max_blocks_{kind}")(*args, block=(256, 1, 1),
                                                grid=(min(n_out, cuda.max_blocks()), 1))


@register_cuda("ReduceMax")
def reduce_max_cuda(x, *, axes, keepdims):
    x, axes, kept, shape = _reduce_shapes("ReduceMax", x, axes, keepdims)
    y = cuda.empty(shape)
    _search_cuda(x, kept, y, cuda.NULL)
    return y


@register_cuda("ArgMax")
def arg_max_cuda(x, *, axis, keepdims):
    x = cuda.as_gpu(x)
    if x.dtype not in _SEARCH_KERNELS:
        raise ValueError(f"the CUDA kernel takes float32, int32 or int64, got {x.dtype}")
    axes = (arg_max_axis(x.shape, axis),)
    index = cuda.empty(reduced_shape(x.shape, axes, keepdims), np.int64)
    _search_cuda(x, kept_dims(x.shape, axes), cuda.NULL, index)
    return index


def _gradient_meta(dy, x, axes):
    """(meta, ndim) walking X's elements to their dY (kept-shaped) offsets: X's merged dims,
    then dY's strides over them (0 along the reduced axes). Checks dY's size as the CPU does."""
    kept = gradient_kept("dY", x.shape, axes, dy.shape)
    dims, (strides,) = _collapse(tuple(x.shape), _strides_over(kept, tuple(x.shape)))
    return _device_ints(tuple(dims + strides)), np.int32(len(dims))


def _broadcast_cuda(op_type: str, dy, x, axes, divisor: int):
    (dy,) = cuda.float32_inputs(dy)
    meta, ndim = _gradient_meta(dy, x, axes)
    dx = cuda.empty(x.shape)
    cuda.launch(CU, "broadcast_divide", dx.size, dy, dx, meta, ndim, np.float32(divisor), np.int64(dx.size))
    return dx


@register_cuda("ReduceSumGradient")
def reduce_sum_gradient_cuda(dy, x, y, *, axes):
    return _broadcast_cuda("ReduceSumGradient", dy, x, axes, 1)


@register_cuda("ReduceMeanGradient")
def reduce_mean_gradient_cuda(dy, x, y, *, axes):
    return _broadcast_cuda("ReduceMeanGradient", dy, x, axes, max(_count(x, axes), 1))


@register_cuda("ReduceMaxGradient")
def reduce_max_gradient_cuda(dy, x, y, *, axes):
    dy, x, y = cuda.float32_inputs(dy, x, y)
    meta, ndim = _gradient_meta(dy, x, axes)
    gradient_kept("Y", x.shape, axes, y.shape)
    dx = cuda.empty(x.shape)
    cuda.launch(CU, "max_gradient", dx.size, dy, x, y, dx, meta, ndim, np.int64(dx.size))
    return dx
