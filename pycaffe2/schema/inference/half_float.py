"""Inference rules of the half_float family: the shape kept, the dtype converted."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def dtype_is(name: str, dtype, expected: str) -> None:
    """Raise unless the input has the dtype the conversion starts from."""
    if str(dtype) != expected:
        raise ShapeError(f"{name} must be a {expected} tensor, got {dtype}")


@rule("half_float_to_half")
def to_half(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    dtype_is("X", x.dtype, "float32")
    return [TensorInfo(x.shape, "float16")]


@rule("half_float_to_float")
def to_float(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    dtype_is("X", x.dtype, "float16")
    return [TensorInfo(x.shape, "float32")]
