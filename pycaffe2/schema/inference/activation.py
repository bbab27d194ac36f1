"""Inference rules of the activation family, and the checks its kernels share.

`float_dtypes` and `prelu_slope` take plain shapes and dtype
names, so the rules (TensorInfo shapes) and the CPU and CUDA kernels (array
shapes) raise the same ShapeError. FLOAT_TYPES serves other families too.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule, same_shape, same_sizes, shape_of

FLOAT_TYPES = ("float16", "float32", "float64")


def float_dtypes(dtypes) -> None:
    """Raise unless every known dtype name (None: unknown) is a float type."""
    for index, dtype in enumerate(dtypes):
        if dtype is not None and dtype not in FLOAT_TYPES:
            raise ShapeError(f"input {index} must be float, got {dtype}")


def prelu_slope(x_shape, slope_shape, order: str) -> tuple[int, int]:
    """X seen as [outer, channels, inner] for PRelu's slope: (channels, inner), one channel
    for a shared slope. As in Caffe2 the slope's element count decides: 1, or X's channels."""
    if math.prod(slope_shape) == 1:
        return 1, 1
    axis = 1 if order == "NCHW" else len(x_shape) - 1
    channels = x_shape[axis] if len(x_shape) >= 2 else 1
    if len(x_shape) < 2 or math.prod(slope_shape) != channels:
        raise ShapeError(f"Slope must have 1 or {channels} values (X {list(x_shape)}'s channels, "
                         f"order {order}), got {list(slope_shape)}")
    return channels, math.prod(x_shape[axis + 1:])


@rule("activation_gradient")
def activation_gradient(op: OpView, inputs: list) -> list:
    """dX like the first input; the inputs pair element by element (as Caffe2, they need
    as many elements, not one shape) and are float."""
    float_dtypes([None if info is None else info.dtype for info in inputs])
    same_sizes({name: shape_of(info) for name, info in zip(op.input_names, inputs)})
    return [inputs[0]] * op.n_outputs


@rule("float_identical")
def float_identical(op: OpView, inputs: list) -> list:
    """Like `identical`, but every known input must be a float tensor."""
    float_dtypes([None if info is None else info.dtype for info in inputs])
    return [inputs[0]] * op.n_outputs


@rule("prelu")
def prelu(op: OpView, inputs: list) -> list:
    x, slope = inputs
    if x is not None and slope is not None:
        prelu_slope(x.shape, slope.shape, op.arg("order"))
    return [x]


@rule("prelu_gradient")
def prelu_gradient(op: OpView, inputs: list) -> list:
    """dX is like X, dSlope like Slope; dY must have X's shape."""
    _, dy, x, slope = inputs
    if x is not None:
        same_shape(shape_of(dy), x.shape, ("dY", "X"))
        if slope is not None:
            prelu_slope(x.shape, slope.shape, op.arg("order"))
    return [x, slope]
