"""Inference rule of the string_match family (StringStartsWith, StringEndsWith)
and the input check its kernels share."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def string_input(dims, dtype: str) -> None:
    if dtype != "object":
        raise ShapeError(f"strings must be a string tensor, got {list(dims)} {dtype}")


@rule("string_match_test")
def string_test(op: OpView, inputs: list) -> list:
    """A bool tensor of the strings' shape."""
    strings = inputs[0]
    if strings is None:
        return [None]
    string_input(strings.shape, strings.dtype)
    return [TensorInfo(strings.shape, "bool")]
