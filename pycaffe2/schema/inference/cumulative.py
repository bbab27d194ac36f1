"""Inference rule of the cumulative family (CumSum, CumProd) and its checks."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import axis_index


def axis_tensor(shape, dtype: str) -> None:
    """The axis input: one int32 or int64 (a scalar, as ONNX gives it, or 1-D)."""
    if str(dtype) not in ("int32", "int64") or len(shape) > 1 or math.prod(shape) != 1:
        raise ShapeError(f"axis_tensor must hold one int32 or int64, got {list(shape)} {dtype}")


def cumulative_axis(shape, axis: int) -> int:
    if not shape:
        raise ShapeError("X must have rank >= 1, got a scalar")
    return axis_index(axis, len(shape), where=f"X {list(shape)}")


@rule("cumulative_cumulative")
def cumulative(op: OpView, inputs: list) -> list:
    """CumSum, CumProd: X's shape and type."""
    x = inputs[0]
    axis = inputs[1] if len(inputs) > 1 else None
    if axis is not None:
        axis_tensor(axis.shape, axis.dtype)
    if x is None:
        return [None]
    if op.n_inputs == 1:
        cumulative_axis(x.shape, op.arg("axis"))
    elif not x.shape:
        raise ShapeError("X must have rank >= 1, got a scalar")
    return [TensorInfo(x.shape, x.dtype)]


@rule("cumulative_cum_prod_gradient")
def cum_prod_gradient(op: OpView, inputs: list) -> list:
    """CumProdGradient: dX of X's shape and dY's type; dY like X."""
    x, dy = inputs[0], inputs[1]
    if x is None or dy is None:
        return [None]
    if tuple(dy.shape) != tuple(x.shape):
        raise ShapeError(f"dY {list(dy.shape)} must have X's shape {list(x.shape)}")
    axis = inputs[2] if len(inputs) > 2 else None
    if axis is not None:
        axis_tensor(axis.shape, axis.dtype)
    if op.n_inputs == 2:
        cumulative_axis(x.shape, op.arg("axis"))
    return [TensorInfo(x.shape, dy.dtype)]
