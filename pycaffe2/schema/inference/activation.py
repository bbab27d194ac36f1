"""Inference rules of the activation family."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, rule

FLOAT_TYPES = ("float16", "float32", "float64")


@rule("float_identical")
def float_identical(op: OpView, inputs: list) -> list:
    """Like `identical`, but every known input must be a float tensor."""
    for index, info in enumerate(inputs):
        if info is not None and info.dtype not in FLOAT_TYPES:
            raise ShapeError(f"input {index} must be float, got {info.dtype}")
    return [inputs[0]] * op.n_outputs


def _check_slope(op: OpView, x, slope) -> None:
    if x is None or slope is None:
        return
    channels = x.shape[1 if op.arg("order") == "NCHW" else -1] if len(x.shape) > 1 else 1
    if slope.shape not in ((1,), (channels,)):
        raise ShapeError(f"Slope must be [1] or [{channels}] (X's channels), "
                         f"got {list(slope.shape)}")


@rule("prelu")
def prelu(op: OpView, inputs: list) -> list:
    _check_slope(op, inputs[0], inputs[1])
    return [inputs[0]]


@rule("prelu_gradient")
def prelu_gradient(op: OpView, inputs: list) -> list:
    _check_slope(op, inputs[2], inputs[3])
    return [inputs[2], inputs[3]]
