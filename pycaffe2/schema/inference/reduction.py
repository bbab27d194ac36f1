"""Inference rules of the reduction family, and each op's shape and type checks.

A reduction removes its axes (or keeps them as size-1 dims with keepdims); its
gradient op returns dX of X's shape after checking dY against Y. The checks are
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


def max_axes(dims: tuple, axes) -> tuple[int, ...]:
    """ReduceMax's axes; a maximum over nothing is an error."""
    axes = reduced_axes(dims, axes)
    if any(dims[axis] == 0 for axis in axes):
        raise ShapeError(f"data {list(dims)} is empty along the reduced axes")
    return axes


def arg_max_axis(dims: tuple, axis: int) -> int:
    """ArgMax's axis counted from the front; the data must not be empty along it."""
    axis = axis_index(axis, len(dims), where=f"X {list(dims)}")
    if dims[axis] == 0:
        raise ShapeError(f"X {list(dims)} is empty along axis {axis}")
    return axis


def reduce_axes(op_type: str, dims: tuple, dtype: str, axes) -> tuple[int, ...]:
    """The canonical axes of a ReduceSum/Mean/Max of data `dims` `dtype`, after its checks."""
    if op_type == "ReduceMean":
        mean_input(dtype)
    return max_axes(dims, axes) if op_type == "ReduceMax" else reduced_axes(dims, axes)


@rule("reduction_reduce")
def reduce(op: OpView, inputs: list) -> list:
    """ReduceSum/Mean/Max: `axes` (default all) removed or kept as 1s."""
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
    """ArgMax: int64 indices with `axis` removed (kept as 1 with keepdims)."""
    data = inputs[0]
    if data is None:
        return [None]
    axis = arg_max_axis(data.shape, op.arg("axis"))
    return [TensorInfo(reduced_shape(data.shape, (axis,), op.arg("keepdims")), "int64")]
