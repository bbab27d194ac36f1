"""Inference rules and checks of the top_k family (TopK and TopKGradient)."""
from __future__ import annotations

import math

from pycaffe2.files import check_alloc
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def top_k_axis(shape, axis: int, what: str = "X") -> int:
    """The axis as a non-negative index into `shape`; raise when it is out of range."""
    rank = len(shape)
    if rank < 1:
        raise ShapeError(f"{what} must have rank >= 1, got a scalar")
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for {what} {list(shape)} (rank {rank})")
    return axis % rank


def top_k_k(k: int | None, k_input) -> None:
    """k comes from the arg or, as one int, from the K input (its shape given)."""
    if k_input is None:
        if k is None:
            raise ShapeError("needs the `k` arg or the K input")
        return
    shape, dtype = k_input
    if str(dtype) not in ("int32", "int64") or len(shape) > 1 or math.prod(shape) != 1:
        raise ShapeError(f"K must hold one int32 or int64, got {list(shape)} {dtype}")


def top_k_x(dtype) -> None:
    if not str(dtype).startswith(("float", "int", "uint")):
        raise ShapeError(f"X must be a numeric tensor, got {dtype}")


def top_k_shapes(shape, k: int, axis: int) -> tuple[tuple[int, ...], int]:
    """(Values' shape, Flattened_indices' length) of TopK on X `shape`."""
    if k < 1:
        raise ShapeError(f"k must be >= 1, got {k}")
    axis = top_k_axis(shape, axis)
    out = tuple(shape[:axis]) + (k,) + tuple(shape[axis + 1:])
    check_alloc(out, "int64", f"k {k}'s Indices")  # k comes from the file
    return out, math.prod(out)


def top_k_gradient_check(values_shape, indices_shape, indices_dtype, x_shape, axis: int) -> int:
    """Raise unless dValues and Indices agree and fit X; return the axis."""
    if tuple(values_shape) != tuple(indices_shape):
        raise ShapeError(f"Indices {list(indices_shape)} must have dValues' shape {list(values_shape)}")
    if str(indices_dtype) not in ("int32", "int64"):
        raise ShapeError(f"Indices must be an int64 tensor, got {indices_dtype}")
    if len(values_shape) != len(x_shape):
        raise ShapeError(f"dValues {list(values_shape)} and X {list(x_shape)} must have the same rank")
    axis = top_k_axis(x_shape, axis)
    if any(v != x for i, (v, x) in enumerate(zip(values_shape, x_shape)) if i != axis):
        raise ShapeError(f"dValues {list(values_shape)} must match X {list(x_shape)} off axis {axis}")
    return axis


@rule("top_k")
def top_k(op: OpView, inputs: list) -> list:
    x = inputs[0]
    k_input = inputs[1] if len(inputs) > 1 else None
    if op.n_inputs < 2:
        top_k_k(op.arg("k"), None)
    elif k_input is not None:
        top_k_k(op.arg("k"), (k_input.shape, k_input.dtype))
    if x is None:
        return [None] * op.n_outputs
    top_k_x(x.dtype)
    if op.n_inputs > 1:  # k is a value
        top_k_axis(x.shape, op.arg("axis"))
        return [None] * op.n_outputs
    shape, flat = top_k_shapes(x.shape, op.arg("k"), op.arg("axis"))
    return [TensorInfo(shape, x.dtype), TensorInfo(shape, "int64"), TensorInfo((flat,), "int64")][:op.n_outputs]


@rule("top_k_gradient")
def top_k_gradient(op: OpView, inputs: list) -> list:
    values, indices, x = inputs
    if values is None or x is None:
        return [None]
    if indices is not None:
        top_k_gradient_check(values.shape, indices.shape, indices.dtype, x.shape, op.arg("axis"))
    return [TensorInfo(x.shape, values.dtype)]
