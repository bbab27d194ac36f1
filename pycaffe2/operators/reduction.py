"""Reduction kernels (NumPy): ReduceSum, ReduceMean, ReduceMax over a set of
axes (all by default), their gradient ops (dY, X, Y) -> dX, and ArgMax.
Outputs keep the input's dtype (sums of ints stay ints, as in Caffe2), and a
full reduction without keepdims is a 0-d array, never a NumPy scalar. A
gradient op sees dY with the reduced axes restored as size-1 dims, whatever
`keepdims` was, and broadcasts it back over X. The CUDA launchers (float32;
ArgMax also int32 and int64) sum with arithmetic.cu's strided reductions and
search maxima with reduction.cu, under the same checks and errors."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._strided import _collapse, _device_ints, _reduction_layout, _strides_over
from pycaffe2.operators.arithmetic import _reduce_cuda
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda


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


def _check_mean(x) -> None:
    if x.dtype.kind != "f":
        raise ValueError(f"ReduceMean: data must be float, got {x.dtype}")


@register_cpu("ReduceMean")
def reduce_mean(x, *, axes, keepdims):
    _check_mean(x)
    return _reduce("ReduceMean", np.mean, x, axes, keepdims)


def _max_axes(x, axes) -> tuple[int, ...]:
    """ReduceMax's axes; a maximum over nothing is an error."""
    axes = _axes("ReduceMax", x, axes)
    if any(x.shape[axis] == 0 for axis in axes):
        raise ValueError(f"ReduceMax: data {list(x.shape)} is empty along the reduced axes")
    return axes


@register_cpu("ReduceMax")
def reduce_max(x, *, axes, keepdims):
    return _reduce("ReduceMax", np.max, x, _max_axes(x, axes), keepdims)


def _kept(op_type: str, x: np.ndarray, axes, name: str, value: np.ndarray) -> np.ndarray:
    """`value` (dY or Y) reshaped with X's reduced axes as size-1 dims."""
    axes = _axes(op_type, x, axes)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if value.size != math.prod(shape):
        raise ValueError(f"{op_type}: {name} is {list(value.shape)} but reducing X "
                         f"{list(x.shape)} over axes {list(axes)} gives {list(shape)}")
    return cuda.reshape(value, shape)


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


gradient_op("ReduceSum", "GO0 I0 O0")
gradient_op("ReduceMean", "GO0 I0 O0")
gradient_op("ReduceMax", "GO0 I0 O0")


def _arg_axis(x, axis: int) -> int:
    """ArgMax's axis, counted from the front."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"ArgMax: axis {axis} is out of range for X {list(x.shape)}")
    if x.shape[axis] == 0:
        raise ValueError(f"ArgMax: X {list(x.shape)} is empty along axis {axis}")
    return axis % x.ndim


@register_cpu("ArgMax")
def arg_max(x, *, axis, keepdims):
    axis = _arg_axis(x, axis)
    return np.asarray(np.argmax(x, axis=axis, keepdims=bool(keepdims)), dtype=np.int64)


# --- CUDA launchers: sums by arithmetic.cu, maxima and gradients by reduction.cu ---------------

CU = "reduction.cu"
_SEARCH_KERNELS = {np.dtype(np.float32): "float", np.dtype(np.int32): "int", np.dtype(np.int64): "int64"}


def _shapes(x, axes: tuple) -> tuple:
    """(X's shape with the reduced axes as 1s, the output's shape without keepdims)."""
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return kept, tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _out_shape(x, axes: tuple, keepdims) -> tuple:
    kept, dropped = _shapes(x, axes)
    return kept if keepdims else dropped


@register_cuda("ReduceSum")
def reduce_sum_cuda(x, *, axes, keepdims):
    (x,) = cuda.float32_inputs("ReduceSum", x)
    axes = _axes("ReduceSum", x, axes)
    return _reduce_cuda(x, _shapes(x, axes)[0], _out_shape(x, axes, keepdims))


@register_cuda("ReduceMean")
def reduce_mean_cuda(x, *, axes, keepdims):
    _check_mean(x)
    (x,) = cuda.float32_inputs("ReduceMean", x)
    axes = _axes("ReduceMean", x, axes)
    count, shape = math.prod(x.shape[axis] for axis in axes), _out_shape(x, axes, keepdims)
    if count == 0:  # np.mean over nothing: NaN
        return cuda.empty(shape).fill(np.float32(np.nan))
    return _reduce_cuda(x, _shapes(x, axes)[0], shape, 1.0 / count)


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
    (x,) = cuda.float32_inputs("ReduceMax", x)
    axes = _max_axes(x, axes)
    y = cuda.empty(_out_shape(x, axes, keepdims))
    _search_cuda(x, _shapes(x, axes)[0], y, cuda.NULL)
    return y


@register_cuda("ArgMax")
def arg_max_cuda(x, *, axis, keepdims):
    x = cuda.as_gpu(x)
    if x.dtype not in _SEARCH_KERNELS:
        raise ValueError(f"ArgMax: the CUDA kernel takes float32, int32 or int64, got {x.dtype}")
    axes = (_arg_axis(x, axis),)
    index = cuda.empty(_out_shape(x, axes, keepdims), np.int64)
    _search_cuda(x, _shapes(x, axes)[0], cuda.NULL, index)
    return index


def _gradient_meta(op_type: str, dy, x, axes):
    """(meta, ndim) walking X's elements to their dY (kept-shaped) offsets: X's merged dims,
    then dY's strides over them (0 along the reduced axes). Checks dY's size as the CPU does."""
    kept = _kept(op_type, x, axes, "dY", dy).shape
    dims, (strides,) = _collapse(tuple(x.shape), _strides_over(kept, tuple(x.shape)))
    return _device_ints(tuple(dims + strides)), np.int32(len(dims))


def _broadcast_cuda(op_type: str, dy, x, axes, divisor: int):
    (dy,) = cuda.float32_inputs(op_type, dy)
    meta, ndim = _gradient_meta(op_type, dy, x, axes)
    dx = cuda.empty(x.shape)
    cuda.launch(CU, "broadcast_divide", dx.size, dy, dx, meta, ndim, np.float32(divisor), np.int64(dx.size))
    return dx


@register_cuda("ReduceSumGradient")
def reduce_sum_gradient_cuda(dy, x, y, *, axes):
    return _broadcast_cuda("ReduceSumGradient", dy, x, axes, 1)


@register_cuda("ReduceMeanGradient")
def reduce_mean_gradient_cuda(dy, x, y, *, axes):
    count = math.prod(x.shape[axis] for axis in _axes("ReduceMeanGradient", x, axes))
    return _broadcast_cuda("ReduceMeanGradient", dy, x, axes, max(count, 1))


@register_cuda("ReduceMaxGradient")
def reduce_max_gradient_cuda(dy, x, y, *, axes):
    dy, x, y = cuda.float32_inputs("ReduceMaxGradient", dy, x, y)
    meta, ndim = _gradient_meta("ReduceMaxGradient", dy, x, axes)
    _kept("ReduceMaxGradient", x, axes, "Y", y)
    dx = cuda.empty(x.shape)
    cuda.launch(CU, "max_gradient", dx.size, dy, x, y, dx, meta, ndim, np.int64(dx.size))
    return dx
