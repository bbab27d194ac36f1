"""Inference rules of the reduction family, and each op's shape and type checks.

A reduction removes its axes (or keeps them as size-1 dims with keepdims); its
gradient op returns dX of X's shape after checking dY against Y. The
ReduceFront*/ReduceBack* ops reduce the first/last `num_reduce_dim` dims,
optionally only the first `lengths[j]` reduced elements of each output j. The checks are
plain functions of shapes, dtypes and args raising ShapeError, called by the rules
and by the kernels (operators/reduction.py) alike.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import axis_index, size


def reduced_axes(dims: tuple, axes) -> tuple[int, ...]:
    """`axes` (None or empty: all) counted from the front, sorted, without repeats."""
    if not axes:
        return tuple(range(len(dims)))
    return tuple(sorted({axis_index(axis, len(dims), "axes entry", f"data {list(dims)}")
                         for axis in axes}))


def kept_dims(dims: tuple, axes: tuple) -> tuple:
    """`dims` with the (canonical) `axes` as 1s."""
    return tuple(1 if i in axes else d for i, d in enumerate(dims))


def reduced_shape(dims: tuple, axes: tuple, keepdims: bool) -> tuple:
    """`dims` with the (canonical) `axes` removed, or set to 1 with keepdims."""
    if keepdims:
        return kept_dims(dims, axes)
    return tuple(d for i, d in enumerate(dims) if i not in axes)


def mean_input(dtype: str) -> None:
    if not dtype.startswith("float"):
        raise ShapeError(f"data must be float, got {dtype}")


# float data only: as in Caffe2 (Mean, L1, L2), and where a log or exp makes no integer sense
FLOAT_REDUCTIONS = ("ReduceMean", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp")


def arg_max_axis(dims: tuple, axis: int) -> int:
    """ArgMax's (ArgMin's) axis counted from the front; the data must not be empty along it."""
    axis = axis_index(axis, len(dims), where=f"X {list(dims)}")
    if dims[axis] == 0:
        raise ShapeError(f"X {list(dims)} is empty along axis {axis}")
    return axis


def reduce_axes(op_type: str, dims: tuple, dtype: str, axes) -> tuple[int, ...]:
    """The canonical axes of a Reduce<Sum|Mean|Max|Min|L1|L2|...> of data `dims` `dtype`,
    after its checks. A reduction over no elements gives its identity (ONNX): sum 0,
    prod 1, max -inf, min +inf, log-sum(-exp) -inf."""
    if op_type in FLOAT_REDUCTIONS:
        mean_input(dtype)
    return reduced_axes(dims, axes)


@rule("reduction_reduce")
def reduce(op: OpView, inputs: list) -> list:
    """Reduce<Sum|Mean|Max|Min|L1|L2|Prod|SumSquare|LogSum|LogSumExp>: `axes` (default
    all) removed or kept as 1s."""
    data = inputs[0]
    if data is None:
        return [None]
    axes = reduce_axes(op.type, data.shape, data.dtype, op.arg("axes"))
    return [TensorInfo(reduced_shape(data.shape, axes, op.arg("keepdims")), data.dtype)]


def gradient_kept(name: str, dims: tuple, axes, value: tuple) -> tuple:
    """dY's or Y's shape as the gradient kernels read it: X's shape with the reduced axes
    as 1s, whatever keepdims was; `value` must hold that many elements."""
    axes = reduced_axes(dims, axes)
    kept = kept_dims(dims, axes)
    if size(value) != size(kept):
        raise ShapeError(f"{name} is {list(value)} but reducing X {list(dims)} over axes "
                         f"{list(axes)} gives {list(kept)}")
    return kept


@rule("reduction_reduce_gradient")
def reduce_gradient(op: OpView, inputs: list) -> list:
    """Reduce*Gradient (dY, X, Y): dX like X; dY must match Y and the reduction of X.
    Stricter than the kernels, which take any dY or Y of the kept size: here keepdims
    says which of the two shapes they have."""
    grad, data, result = inputs
    expected = result.shape if result is not None else None
    if data is not None:
        axes = reduced_axes(data.shape, op.arg("axes"))
        reduced = reduced_shape(data.shape, axes, op.arg("keepdims"))
        if expected is not None and expected != reduced:
            raise ShapeError(f"Y is {list(expected)} but reducing X {list(data.shape)} "
                             f"gives {list(reduced)}")
        expected = reduced
    if grad is not None and expected is not None and grad.shape != expected:
        raise ShapeError(f"dY is {list(grad.shape)} but Y is {list(expected)}")
    return [data]


@rule("reduction_argmax")
def argmax(op: OpView, inputs: list) -> list:
    """ArgMax, ArgMin: int64 indices with `axis` removed (kept as 1 with keepdims)."""
    data = inputs[0]
    if data is None:
        return [None]
    axis = arg_max_axis(data.shape, op.arg("axis"))
    return [TensorInfo(reduced_shape(data.shape, (axis,), op.arg("keepdims")), "int64")]


# --- ReduceFront*/ReduceBack* --------------------------------------------------------------------

def front_back_split(dims: tuple, num_reduce_dim: int, front: bool) -> tuple[tuple, tuple]:
    """(reduced dims, kept dims) of data `dims`: the first (front) or last `num_reduce_dim`."""
    if not 0 <= num_reduce_dim <= len(dims):
        raise ShapeError(f"num_reduce_dim {num_reduce_dim} is out of range for data "
                         f"{list(dims)} (0 to {len(dims)})")
    cut = num_reduce_dim if front else len(dims) - num_reduce_dim
    head, tail = tuple(dims[:cut]), tuple(dims[cut:])
    return (head, tail) if front else (tail, head)


def check_front_back(op_type: str, dims: tuple, dtype: str, num_reduce_dim: int) -> tuple:
    """The kept dims of a ReduceFront/Back<Sum|Mean|Max> of data `dims` `dtype`."""
    reduced, kept = front_back_split(dims, num_reduce_dim, op_type.startswith("ReduceFront"))
    if not op_type.endswith("Sum"):  # Caffe2's Mean and Max kernels are float only
        mean_input(dtype)
    if op_type.endswith("Max") and size(reduced) == 0 and size(kept) > 0:
        raise ShapeError(f"data {list(dims)} has no elements to take the maximum of")
    return kept


def check_lengths(shape: tuple, dtype: str, kept: tuple) -> None:
    """lengths: 1-D int32/int64, one entry per output element."""
    if dtype not in ("int32", "int64"):
        raise ShapeError(f"lengths must be int32 or int64, got {dtype}")
    if tuple(shape) != (size(kept),):
        raise ShapeError(f"lengths is {list(shape)} but the output {list(kept)} needs "
                         f"[{size(kept)}]")


def check_length_values(lengths, n_reduced: int, is_max: bool) -> None:
    """Each length within 0..n_reduced (from 1 for a maximum, which needs an element)."""
    low = 1 if is_max else 0
    bad = [int(n) for n in lengths if not low <= n <= n_reduced]
    if bad:
        raise ShapeError(f"lengths entry {bad[0]} is out of range {low}..{n_reduced}")


@rule("reduction_front_back")
def front_back(op: OpView, inputs: list) -> list:
    """ReduceFront/Back<Sum|Mean|Max> (data, [lengths]): the kept dims, data's type."""
    data = inputs[0]
    if data is None:
        return [None]
    kept = check_front_back(op.type, data.shape, data.dtype, op.arg("num_reduce_dim"))
    if len(inputs) > 1 and inputs[1] is not None:
        check_lengths(inputs[1].shape, inputs[1].dtype, kept)
    return [TensorInfo(kept, data.dtype)]


def is_shape_tensor(info: TensorInfo) -> bool:
    """Caffe2's ReduceFront/Back<Sum|Mean>Gradient take X or, from older models, X's shape
    as a 1-D int64 tensor; they tell them apart so."""
    return len(info.shape) == 1 and info.dtype == "int64"


@rule("reduction_front_back_gradient")
def front_back_gradient(op: OpView, inputs: list) -> list:
    """ReduceFront/Back*Gradient (dY, X, [Y], [lengths]): dX like X, dY of the kept dims."""
    grad, data = inputs[0], inputs[1]
    if data is None or (not op.type.endswith("MaxGradient") and is_shape_tensor(data)):
        return [None]
    _, kept = front_back_split(data.shape, op.arg("num_reduce_dim"),
                               op.type.startswith("ReduceFront"))
    if grad is not None and size(grad.shape) != size(kept):
        raise ShapeError(f"dY is {list(grad.shape)} but reducing X {list(data.shape)} "
                         f"gives {list(kept)}")
    return [TensorInfo(data.shape, grad.dtype if grad is not None else data.dtype)]


def summarize_input(dtype: str, shape) -> None:
    """Summarize needs a float tensor with at least one element."""
    mean_input(dtype)
    if size(shape) == 0:
        raise ShapeError(f"data is empty ({list(shape)}): there are no statistics to take")


@rule("reduction_summarize")
def summarize(op: OpView, inputs: list) -> list:
    """float32 [4] (min, max, mean, std) when there is an output."""
    if inputs[0] is not None:
        summarize_input(inputs[0].dtype, inputs[0].shape)
    return [TensorInfo((4,), "float32")] * op.n_outputs
