"""Inference rules of the math_reduce family, and the checks its kernels share.

SumElements and SumSqrElements give a 0-d tensor of the float X's type,
SumElementsInt a 0-d int32; RowwiseMax and ColwiseMax reduce axis 2 or 1 of
a 3-D float X. Their gradient ops give X's shape and type.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape
from pycaffe2.schema.inference.elementwise import FLOAT, INT32, check_dtype, check_info_dtype


def max_axis(op_type: str) -> int:
    """The axis RowwiseMax (2) or ColwiseMax (1) and their gradient ops reduce."""
    return 2 if op_type.startswith("Rowwise") else 1


def max_shape(x: tuple, axis: int) -> tuple:
    """Y's shape: the 3-D X's without `axis`, which must not be empty unless Y is."""
    if len(x) != 3:
        raise ShapeError(f"X must be 3-D [batch, M, N], got {list(x)}")
    y = x[:axis] + x[axis + 1:]
    if x[axis] == 0 and 0 not in y:
        raise ShapeError(f"X is {list(x)}: dim {axis} is empty, so there is no maximum to take")
    return y


def check_max_gradient(op_type: str, x, y, dy) -> None:
    """X, Y, dY (TensorInfo or None): a 3-D float X, and Y and dY of the reduced shape."""
    if x is not None:
        check_dtype("X", x.shape, x.dtype, FLOAT)
        reduced = max_shape(tuple(x.shape), max_axis(op_type))
        for name, info in (("Y", y), ("dY", dy)):
            if info is not None:
                same_shape(info.shape, reduced, (name, "X reduced"))
    if y is not None and dy is not None:
        same_shape(y.shape, dy.shape, ("Y", "dY"))


def check_sum_gradient(dy_shape: tuple) -> None:
    if len(dy_shape) > 1 or (dy_shape and dy_shape[0] != 1):
        raise ShapeError(f"dY must hold one element (the sum's gradient), got {list(dy_shape)}")


@rule("math_reduce_sum")
def math_reduce_sum(op: OpView, inputs: list) -> list:
    """A 0-d tensor of the float X's type."""
    x = inputs[0]
    if x is None:
        return [None]
    check_dtype("X", x.shape, x.dtype, FLOAT)
    return [TensorInfo((), x.dtype)]


@rule("math_reduce_sum_int")
def math_reduce_sum_int(op: OpView, inputs: list) -> list:
    """A 0-d int32 tensor; X must be int32."""
    check_info_dtype(inputs[0], "X", INT32)
    return [TensorInfo((), "int32")]


@rule("math_reduce_sum_gradient")
def math_reduce_sum_gradient(op: OpView, inputs: list) -> list:
    """dX like the float X; dY holds one element."""
    x, dy = inputs
    if dy is not None:
        check_sum_gradient(tuple(dy.shape))
    check_info_dtype(x, "X", FLOAT)
    return [x]


@rule("math_reduce_max")
def math_reduce_max(op: OpView, inputs: list) -> list:
    """The 3-D float X without axis 2 (RowwiseMax) or 1 (ColwiseMax)."""
    x = inputs[0]
    if x is None:
        return [None]
    check_dtype("X", x.shape, x.dtype, FLOAT)
    return [TensorInfo(max_shape(tuple(x.shape), max_axis(op.type)), x.dtype)]


@rule("math_reduce_max_gradient")
def math_reduce_max_gradient(op: OpView, inputs: list) -> list:
    """dX like X; Y and dY of X's reduced shape."""
    check_max_gradient(op.type, *inputs)
    return [inputs[0]]
