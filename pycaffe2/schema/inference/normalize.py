"""Inference rules of the normalize family (LpNorm, Normalize, NormalizeL1 and
their gradients), and the checks its kernels share with them. LpNorm gives a
[1] tensor of X's type; the others keep X's shape and type.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape
from pycaffe2.schema.inference.activation import FLOAT_TYPES


def float_input(name: str, shape, dtype, min_rank: int = 0) -> None:
    if str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"{name} must be float, got {dtype}")
    if len(shape) < min_rank:
        raise ShapeError(f"{name} must have rank >= {min_rank}, got {list(shape)}")


def lp_norm_inputs(x, dtype, average: bool) -> None:
    float_input("X", x, dtype)
    if average and math.prod(x) == 0:
        raise ShapeError(f"average=1 divides by X's size, and X {list(x)} is empty")


def lp_norm_gradient_inputs(x, dtype, dout, average: bool) -> None:
    lp_norm_inputs(x, dtype, average)
    if dout is not None and tuple(dout) != (1,):
        raise ShapeError(f"dout must be [1] (LpNorm's output), got {list(dout)}")


def normalize_axis(x, dtype, axis: int) -> int:
    """The canonical axis for a float X of rank >= 1."""
    float_input("X", x, dtype, 1)
    if not -len(x) <= axis < len(x):
        raise ShapeError(f"axis {axis} is out of range for X of rank {len(x)}")
    return axis % len(x)


@rule("normalize_lp_norm")
def lp_norm(op: OpView, inputs: list) -> list:
    """Z is [1] of X's type."""
    x = inputs[0]
    if x is None:
        return [None]
    lp_norm_inputs(x.shape, x.dtype, op.arg("average"))
    return [TensorInfo((1,), x.dtype)]


@rule("normalize_lp_norm_gradient")
def lp_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X."""
    x, dout = inputs
    if x is not None:
        lp_norm_gradient_inputs(x.shape, x.dtype, None if dout is None else dout.shape, op.arg("average"))
    return [x]


@rule("normalize_normalize")
def normalize(op: OpView, inputs: list) -> list:
    """Y is like X."""
    x = inputs[0]
    if x is not None:
        normalize_axis(x.shape, x.dtype, op.arg("axis"))
    return [x]


@rule("normalize_normalize_gradient")
def normalize_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be too."""
    x, dy = inputs
    if x is not None:
        normalize_axis(x.shape, x.dtype, op.arg("axis"))
        same_shape(None if dy is None else dy.shape, x.shape, ("dY", "X"))
    return [x]
