"""Inference rules of the math_bitwise family (BitShift, BitwiseNot), and the checks
their kernels share: integer operands of one type, broadcast NumPy-style."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, TensorInfo, rule
from pycaffe2.schema.inference.arithmetic import numpy_broadcast, same_type
from pycaffe2.schema.inference.elementwise import INT_BOOL, check_info_dtype

INTEGERS = (("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
            "an integer tensor")
SHIFT_NAMES = ("X", "Y")


def check_shift(x: TensorInfo | None, y: TensorInfo | None) -> tuple | None:
    """X and Y integer tensors of one type; their broadcast shape (None: unknown)."""
    check_info_dtype(x, "X", INTEGERS)
    check_info_dtype(y, "Y", INTEGERS)
    same_type(x, y, SHIFT_NAMES)
    if x is None or y is None:
        return None
    return numpy_broadcast(x.shape, y.shape, SHIFT_NAMES, "")


@rule("math_bitwise_shift")
def math_bitwise_shift(op: OpView, inputs: list) -> list:
    """Z of X's type and the broadcast shape of X and Y."""
    shape = check_shift(*inputs)
    return [None if shape is None else TensorInfo(shape, inputs[0].dtype)]


@rule("math_bitwise_not")
def math_bitwise_not(op: OpView, inputs: list) -> list:
    """Y like the integer or bool X."""
    check_info_dtype(inputs[0], "X", INT_BOOL)
    return [inputs[0]]
