"""Inference rules of the elementwise_linear family: X seen as [N, D] at `axis`,
scales and shifts [D]."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shapes
from pycaffe2.schema.inference.tensor import axis_index


def features(x_shape, axis: int, named: dict) -> tuple[int, int]:
    """(N, D) of X at `axis`; raise unless each named vector (name -> shape) is [D]."""
    axis = axis_index(axis, len(x_shape), where=f"X {list(x_shape)}")
    n, d = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
    for name, shape in named.items():
        if shape is not None and tuple(shape) != (d,):
            raise ShapeError(f"{name} {list(shape)} must be [{d}] (X {list(x_shape)} has {d} features "
                             f"from axis {axis})")
    return n, d


@rule("elementwise_linear")
def elementwise_linear(op: OpView, inputs: list) -> list:
    x, a, b = inputs
    if x is None:
        return [None]
    features(x.shape, op.arg("axis"), {"a": a and a.shape, "b": b and b.shape})
    return [x]


@rule("elementwise_linear_gradient")
def elementwise_linear_gradient(op: OpView, inputs: list) -> list:
    dy, x, a = inputs
    if x is None:
        return [None, a, a]
    _, d = features(x.shape, op.arg("axis"), {"a": a and a.shape})
    if dy is not None:
        same_shapes({"dY": dy.shape, "X": x.shape})
    return [TensorInfo(x.shape, x.dtype), TensorInfo((d,), x.dtype), TensorInfo((d,), x.dtype)]
