"""Reduction kernels (NumPy): ReduceSum, ReduceMean, ReduceMax, ReduceMin,
ReduceL1, ReduceL2 over a set of axes (all by default), their gradient ops
(dY, X, Y) -> dX, ReduceFront/Back<Sum|Mean|Max> over the first/last dims
(optionally only the first `lengths[j]` reduced elements of each output j),
ArgMax/ArgMin (the first or, with select_last_index, the last of tied extrema), and Summarize (statistics, optionally logged to <input>.summary).
Only ReduceSum/Mean/Max and ArgMax have CUDA kernels.
Outputs keep the input's dtype (sums of ints stay ints, as in Caffe2), and a
full reduction without keepdims is a 0-d array, never a NumPy scalar; a reduction over no
elements gives the identity (sum 0, max -inf, min +inf), as ONNX says. A
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
from pycaffe2.operators.io import log_file
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference import ShapeError, TensorInfo
from pycaffe2.schema.inference.reduction import (
    arg_max_axis,
    check_front_back,
    check_length_values,
    check_lengths,
    front_back_split,
    gradient_kept,
    is_shape_tensor,
    kept_dims,
    reduce_axes,
    reduced_axes,
    reduced_shape,
    summarize_input,
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


def extremum_identity(dtype: np.dtype, largest: bool):
    """What a maximum (largest) or minimum over no elements gives, as ONNX says: -inf or
    +inf, the dtype's extreme for integers, False or True for bool."""
    if dtype == np.bool_:
        return not largest
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if largest else info.max
    return -np.inf if largest else np.inf


def _extremum(function, largest: bool):
    def reduce(x, axis, keepdims):
        if x.size:
            return function(x, axis=axis, keepdims=keepdims)
        return function(x, axis=axis, keepdims=keepdims, initial=extremum_identity(x.dtype, largest))
    return reduce


@register_cpu("ReduceMax")
def reduce_max(x, *, axes, keepdims):
    return _reduce("ReduceMax", _extremum(np.max, True), x, axes, keepdims)


@register_cpu("ReduceMin")
def reduce_min(x, *, axes, keepdims):
    return _reduce("ReduceMin", _extremum(np.min, False), x, axes, keepdims)


@register_cpu("ReduceL1")
def reduce_l1(x, *, axes, keepdims):
    return _reduce("ReduceL1", lambda x, **kw: np.sum(np.abs(x), **kw), x, axes, keepdims)


@register_cpu("ReduceL2")
def reduce_l2(x, *, axes, keepdims):
    return _reduce("ReduceL2", lambda x, **kw: np.sqrt(np.sum(x * x, **kw)), x, axes, keepdims)


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


@register_cpu("ReduceMaxGradient", "ReduceMinGradient")
def reduce_max_gradient(dy, x, y, *, axes):
    # Every element equal to its extremum gets dY, ties included (as in Caffe2).
    dy, y = _kept(x, axes, "dY", dy), _kept(x, axes, "Y", y)
    return np.where(x == y, dy, dy.dtype.type(0))


@register_cpu("ReduceL1Gradient")
def reduce_l1_gradient(dy, x, y, *, axes):
    return np.asarray(np.sign(x) * _kept(x, axes, "dY", dy), dtype=dy.dtype)


@register_cpu("ReduceL2Gradient")
def reduce_l2_gradient(dy, x, y, *, axes):
    dy, y = _kept(x, axes, "dY", dy), _kept(x, axes, "Y", y)
    with np.errstate(divide="ignore", invalid="ignore"):  # Y = 0: X is all 0 there, dX 0
        dx = np.where(y == 0, dy.dtype.type(0), dy * x / y)
    return np.asarray(dx, dtype=dy.dtype)


for _type in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2"):
    gradient_op(_type, "GO0 I0 O0")


def _arg_search(function, x, axis, keepdims, select_last_index):
    axis = arg_max_axis(x.shape, axis)
    if not select_last_index:
        return np.asarray(function(x, axis=axis, keepdims=bool(keepdims)), dtype=np.int64)
    # The last of tied extrema: the first one in the reversed axis, counted back.
    found = function(np.flip(x, axis), axis=axis, keepdims=bool(keepdims))
    return np.asarray(x.shape[axis] - 1 - found, dtype=np.int64)


@register_cpu("ArgMax")
def arg_max(x, *, axis, keepdims, select_last_index):
    return _arg_search(np.argmax, x, axis, keepdims, select_last_index)


@register_cpu("ArgMin")
def arg_min(x, *, axis, keepdims, select_last_index):
    return _arg_search(np.argmin, x, axis, keepdims, select_last_index)


# --- ReduceFront*/ReduceBack*: data seen as a (kept, reduced) matrix ---------------------------

def _matrix(x: np.ndarray, reduced: tuple, kept: tuple, front: bool) -> np.ndarray:
    """x as rows of reduced elements, one row per output element."""
    n_reduced, n_kept = math.prod(reduced), math.prod(kept)
    return x.reshape(n_reduced, n_kept).T if front else x.reshape(n_kept, n_reduced)


def _unmatrix(m: np.ndarray, shape: tuple, front: bool) -> np.ndarray:
    return np.ascontiguousarray(m.T).reshape(shape) if front else m.reshape(shape)


def _mask(lengths, kept: tuple, n_reduced: int, is_max: bool):
    """(rows x reduced) bool mask of the counted elements, and the count per row."""
    if lengths is None:
        return None, np.full(math.prod(kept), n_reduced)
    check_lengths(lengths.shape, lengths.dtype.name, kept)
    check_length_values(lengths, n_reduced, is_max)
    return np.arange(n_reduced)[None, :] < lengths[:, None], lengths


def _front_back(op_type: str, front: bool, kind: str):

    def kernel(x, lengths=None, *, num_reduce_dim):
        kept = check_front_back(op_type, x.shape, x.dtype.name, num_reduce_dim)
        reduced, _ = front_back_split(x.shape, num_reduce_dim, front)
        m = _matrix(x, reduced, kept, front)
        mask, counts = _mask(lengths, kept, m.shape[1], kind == "Max")
        if kind == "Max":
            y = m.max(axis=1, initial=-np.inf, where=True if mask is None else mask) \
                if m.size else np.zeros(m.shape[0], x.dtype)
        else:
            y = m.sum(axis=1, where=True if mask is None else mask)
            if kind == "Mean":
                with np.errstate(divide="ignore", invalid="ignore"):  # nothing counted: NaN
                    y = y / counts.astype(x.dtype)
        return np.asarray(y, dtype=x.dtype).reshape(kept)
    kernel.__name__ = op_type.lower()
    return kernel


def _front_back_gradient(op_type: str, front: bool, kind: str):

    def gradient(dy, x, *rest, num_reduce_dim):
        y, lengths = (rest[0], rest[1] if len(rest) > 1 else None) if kind == "Max" else \
            (None, rest[0] if rest else None)
        shape = tuple(int(d) for d in x) if kind != "Max" and is_shape_tensor(
            TensorInfo(x.shape, x.dtype.name)) else x.shape
        reduced, kept = front_back_split(shape, num_reduce_dim, front)
        if dy.size != math.prod(kept):
            raise ShapeError(f"dY is {list(dy.shape)} but reducing X {list(shape)} gives {list(kept)}")
        n_reduced = math.prod(reduced)
        mask, counts = _mask(lengths, kept, n_reduced, kind == "Max")
        column = dy.reshape(-1, 1)
        if kind == "Mean":
            column = column / counts.reshape(-1, 1).astype(dy.dtype)
        dm = np.broadcast_to(column, (column.shape[0], n_reduced))
        if kind == "Max":
            dm = np.where(_matrix(x, reduced, kept, front) == y.reshape(-1, 1), dm, 0)
        if mask is not None:
            dm = np.where(mask, dm, 0)
        return _unmatrix(np.asarray(dm, dtype=dy.dtype), shape, front)
    gradient.__name__ = op_type.lower() + "_gradient"
    return gradient


def make_front_back_gradient(g):
    """Caffe2's inputs: dY, X (Max: and Y), then the lengths when the forward op had them.
    The lengths get no gradient."""
    inputs = [g.GO(0), g.I(0)] + ([g.O(0)] if g.op.type.endswith("Max") else [])
    inputs += [g.I(1)] if len(g.op.input) > 1 else []
    return [g.Op(g.op.type + "Gradient", inputs, [g.GI(0)])]


for _side in ("Front", "Back"):
    for _kind in ("Sum", "Mean", "Max"):
        _type = f"Reduce{_side}{_kind}"
        register_cpu(_type)(_front_back(_type, _side == "Front", _kind))
        register_cpu(_type + "Gradient")(_front_back_gradient(_type, _side == "Front", _kind))
        register_gradient(_type)(make_front_back_gradient)


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
    if any(x.shape[axis] == 0 for axis in axes):  # a maximum over nothing: -inf (ONNX)
        return cuda.empty(shape).fill(np.float32(-np.inf))
    y = cuda.empty(shape)
    _search_cuda(x, kept, y, cuda.NULL)
    return y


@register_cuda("ArgMax")
def arg_max_cuda(x, *, axis, keepdims, select_last_index):
    if select_last_index:
        raise ValueError("the CUDA kernel finds the first extremum only (select_last_index=0)")
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




def summary(x: np.ndarray) -> np.ndarray:
    """float32 [min, max, mean, std]; std divides by n - 1 (0 for one element), as Caffe2's."""
    summarize_input(x.dtype.name, x.shape)
    values = x.astype(np.float64).ravel()
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return np.array([values.min(), values.max(), values.mean(), std], dtype=np.float32)


@register_cpu("Summarize", specialize=True)
def summarize(*, to_file, input_names, output_names, root_folder):
    started = [False]  # the first run starts the file afresh, as Caffe2 opened it at construction
    path = log_file("Summarize", input_names[0], root_folder)

    def run(x):
        stats = summary(np.asarray(x))
        if to_file:
            with open(path, "a" if started[0] else "w") as log:
                log.write(" ".join(f"{v:g}" for v in stats.tolist()) + "\n")
            started[0] = True
        return stats if output_names else ()  # no output: a debugging tap, like Print
    return run
