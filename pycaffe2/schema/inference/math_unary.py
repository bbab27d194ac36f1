"""Inference rules of the math_unary family, and the checks its kernels share.

The float ops take float tensors and give X's shape and type (the elementwise
family's rules); Logit also checks eps, Mod takes int32 or int64 data and a
non-zero divisor, and Glu halves the axis it splits.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.arithmetic import numpy_broadcast, same_type
from pycaffe2.schema.inference.elementwise import (
    FLOAT,
    INTEGER,
    NUMERIC,
    check_dtype,
    check_info_dtype,
)

MOD_NAMES = ("data", "divisor")


def check_logit_eps(eps: float) -> None:
    if not 0.0 < eps < 0.5:
        raise ShapeError(f"eps must lie in (0, 0.5), got {eps}")


def check_divisor(divisor: int) -> None:
    if divisor == 0:
        raise ShapeError("divisor must not be 0")


def glu_shape(shape: tuple, dim: int) -> tuple:
    """Y's shape: X's with the `dim` axis (negative: from the end) halved."""
    rank = len(shape)
    if not -rank <= dim < rank:
        raise ShapeError(f"dim {dim} is out of range for X of rank {rank} ({list(shape)})")
    axis = dim % rank
    if shape[axis] % 2:
        raise ShapeError(f"X's dim {axis} ({shape[axis]}) must be even to split in two halves")
    return shape[:axis] + (shape[axis] // 2,) + shape[axis + 1:]


@rule("math_unary_logit")
def math_unary_logit(op: OpView, inputs: list) -> list:
    """Y like the float X; eps in (0, 0.5)."""
    check_logit_eps(op.arg("eps"))
    check_info_dtype(inputs[0], "X", FLOAT)
    return [inputs[0]]


def check_mod_tensors(data, divisor) -> tuple | None:
    """Mod with a divisor tensor: both of one numeric type; their broadcast shape (None:
    unknown)."""
    check_info_dtype(data, "data", NUMERIC)
    same_type(data, divisor, MOD_NAMES)
    if data is None or divisor is None:
        return None
    return numpy_broadcast(data.shape, divisor.shape, MOD_NAMES, "")


@rule("math_unary_mod")
def math_unary_mod(op: OpView, inputs: list) -> list:
    """output like the int32 or int64 data; divisor not 0. With a divisor tensor, of the
    numeric data's type and the broadcast shape."""
    if op.n_inputs == 2:
        shape = check_mod_tensors(*inputs)
        return [None if shape is None else TensorInfo(shape, inputs[0].dtype)]
    check_divisor(op.arg("divisor"))
    check_info_dtype(inputs[0], "data", INTEGER)
    return [inputs[0]]


@rule("math_unary_predicate")
def math_unary_predicate(op: OpView, inputs: list) -> list:
    """A bool tensor of the float X's shape."""
    x = inputs[0]
    check_info_dtype(x, "X", FLOAT)
    return [None if x is None else TensorInfo(x.shape, "bool")]


@rule("math_unary_glu")
def math_unary_glu(op: OpView, inputs: list) -> list:
    """Y: X's shape with the `dim` axis halved (it must be even)."""
    x = inputs[0]
    if x is None:
        return [None]
    check_dtype("X", x.shape, x.dtype, FLOAT)
    return [TensorInfo(glu_shape(tuple(x.shape), op.arg("dim")), x.dtype)]
