"""Inference rules of the nn family (softmax, log-softmax, dropout).

Softmax ops see X as 2-D, split before `axis`, so the axis must lie in
[-ndim, ndim); the output keeps X's shape. Gradient inputs that pair up
element by element (Y with dY, dY with the dropout mask) must share a shape.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES


def canonical_axis(op: OpView, axis: int, ndim: int, name: str = "X") -> int:
    """`axis` as a non-negative index into a rank-`ndim` input, or raise."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{op.type}: axis {axis} is out of range for {name} of rank {ndim}")
    return axis % ndim


def check_same_shape(op: OpView, first, second, names: tuple[str, str]) -> None:
    """Raise when two known inputs that pair element by element differ in shape."""
    if first is not None and second is not None and first.shape != second.shape:
        raise ShapeError(f"{op.type}: {names[0]} is {list(first.shape)} but {names[1]} is "
                         f"{list(second.shape)}: they must have the same shape")


@rule("nn_softmax")
def softmax(op: OpView, inputs: list) -> list:
    """Y is like X; X must be float and `axis` must index one of its dims."""
    x = inputs[0]
    if x is None:
        return [None]
    if x.dtype not in FLOAT_TYPES:
        raise ShapeError(f"{op.type}: X must be float, got {x.dtype}")
    canonical_axis(op, op.arg("axis", 1), len(x.shape))
    return [x]


@rule("nn_softmax_gradient")
def softmax_gradient(op: OpView, inputs: list) -> list:
    """dX is like Y (or dY); Y and dY must have the same shape."""
    y, dy = inputs[0], inputs[1]
    check_same_shape(op, y, dy, ("Y", "dY"))
    return [y if y is not None else dy]


@rule("nn_dropout")
def dropout(op: OpView, inputs: list) -> list:
    """Y is like X; the mask, written only in training, is a bool tensor of X's shape."""
    x = inputs[0]
    if x is None or op.arg("is_test", 0):
        return [x, None]
    return [x, TensorInfo(x.shape, "bool")]


@rule("nn_dropout_grad")
def dropout_grad(op: OpView, inputs: list) -> list:
    """dX is like dY; a given mask must be bool and of dY's shape."""
    dy = inputs[0]
    mask = inputs[1] if len(inputs) > 1 else None
    if mask is not None and mask.dtype != "bool":
        raise ShapeError(f"{op.type}: mask must be bool, got {mask.dtype}")
    check_same_shape(op, dy, mask, ("dY", "mask"))
    return [dy]
