"""Inference rules of the nn family (softmax, log-softmax, dropout), and the
checks the family's kernels share with them.

Softmax ops see X as 2-D, split before `axis`, so the axis must lie in
[-ndim, ndim); the output keeps X's shape. Gradient inputs that pair up
element by element (Y with dY, dY with the dropout mask) must share a shape.
The checks take plain shapes and dtypes, so the CPU kernels and the CUDA
launchers call them with their arrays' and the rules with TensorInfos'.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape, shape_of


def axis_index(axis: int, ndim: int, name: str = "X") -> int:
    """`axis` as a non-negative index into a rank-`ndim` input, or raise."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for {name} of rank {ndim}")
    return axis % ndim


def canonical_axis(op: OpView, axis: int, ndim: int, name: str = "X") -> int:
    """axis_index for a rule (the normalization rules call it with their op)."""
    return axis_index(axis, ndim, name)


def row_shape(shape, axis: int, name: str = "X") -> tuple[int, int]:
    """(prod(dims before axis), prod(dims from axis)): a shape coerced to 2-D at `axis`."""
    axis = axis_index(axis, len(shape), name)
    return math.prod(shape[:axis]), math.prod(shape[axis:])


def float_type(dtype, name: str = "X") -> None:
    """Raise unless `dtype` (a NumPy dtype or its name) is a float type."""
    if np.dtype(dtype).kind != "f":
        raise ShapeError(f"{name} must be float, got {dtype}")


def dropout_grad_mask(is_test, has_mask: bool) -> None:
    """DropoutGrad in training reads Dropout's mask (test mode ignores it)."""
    if not is_test and not has_mask:
        raise ShapeError("in training (is_test=0) it needs the mask input")


@rule("nn_softmax")
def softmax(op: OpView, inputs: list) -> list:
    """Y is like X; X must be float and `axis` must index one of its dims."""
    x = inputs[0]
    if x is None:
        return [None]
    float_type(x.dtype)
    axis_index(op.arg("axis", 1), len(x.shape))
    return [x]


@rule("nn_softmax_gradient")
def softmax_gradient(op: OpView, inputs: list) -> list:
    """dX is like Y (or dY); Y and dY must have the same shape."""
    y, dy = inputs[0], inputs[1]
    same_shape(shape_of(y), shape_of(dy), ("Y", "dY"))
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
    dropout_grad_mask(op.arg("is_test", 0), op.n_inputs > 1)
    if mask is not None and mask.dtype != "bool":  # the kernels also take uint8 and float masks
        raise ShapeError(f"mask must be bool, got {mask.dtype}")
    same_shape(shape_of(dy), shape_of(mask), ("dY", "mask"))
    return [dy]
