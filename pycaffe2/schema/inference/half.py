"""Shape inference and checks for the half family: FloatToHalf, HalfToFloat."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def half_input(dims: tuple, dtype: str, wanted: str) -> None:
    """FloatToHalf takes float32 only, HalfToFloat float16 only (no implicit casts)."""
    if dtype != wanted:
        raise ShapeError(f"input {list(dims)} must be {wanted}, got {dtype}")


def _convert(inputs: list, wanted: str, to: str) -> list:
    data = inputs[0]
    if data is None:
        return [None]
    half_input(data.shape, data.dtype, wanted)
    return [TensorInfo(data.shape, to)]


@rule("half_float_to_half")
def float_to_half(op: OpView, inputs: list) -> list:
    """FloatToHalf: the input's shape, float16."""
    return _convert(inputs, "float32", "float16")


@rule("half_half_to_float")
def half_to_float(op: OpView, inputs: list) -> list:
    """HalfToFloat: the input's shape, float32."""
    return _convert(inputs, "float16", "float32")
