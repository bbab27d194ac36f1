"""Inference rules of the reduction family.

A reduction removes its axes (or keeps them as size-1 dims with keepdims);
its gradient op returns dX of X's shape after checking dY against Y.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import canonical_axis


def reduced_shape(op: OpView, dims: tuple, axes, keepdims: bool) -> tuple:
    """`dims` with `axes` (all when None) removed, or set to 1 with keepdims."""
    if axes is None:
        axes = range(len(dims))
    chosen = {canonical_axis(op, axis, len(dims), "axes entry") for axis in axes}
    if keepdims:
        return tuple(1 if i in chosen else d for i, d in enumerate(dims))
    return tuple(d for i, d in enumerate(dims) if i not in chosen)


@rule("reduction_reduce")
def reduce(op: OpView, inputs: list) -> list:
    """ReduceSum/Mean/Max: `axes` (default all) removed or kept as 1s."""
    data = inputs[0]
    if data is None:
        return [None]
    return [TensorInfo(reduced_shape(op, data.shape, op.arg("axes") or None,
                                     op.arg("keepdims")), data.dtype)]


@rule("reduction_reduce_gradient")
def reduce_gradient(op: OpView, inputs: list) -> list:
    """Reduce*Gradient (dY, X, Y): dX like X; dY must match Y and the reduction of X."""
    grad, data, result = inputs
    expected = result.shape if result is not None else None
    if data is not None:
        reduced = reduced_shape(op, data.shape, op.arg("axes") or None, op.arg("keepdims"))
        if expected is not None and expected != reduced:
            raise ShapeError(f"{op.type}: Y is {list(expected)} but reducing X "
                             f"{list(data.shape)} gives {list(reduced)}")
        expected = reduced
    if grad is not None and expected is not None and grad.shape != expected:
        raise ShapeError(f"{op.type}: dY is {list(grad.shape)} but Y is {list(expected)}")
    return [data]


@rule("reduction_argmax")
def argmax(op: OpView, inputs: list) -> list:
    """ArgMax: int64 indices with `axis` removed (kept as 1 with keepdims)."""
    data = inputs[0]
    if data is None:
        return [None]
    return [TensorInfo(reduced_shape(op, data.shape, [op.arg("axis")], op.arg("keepdims")),
                       "int64")]
