"""Inference rules of the resize family (ResizeNearest, UpsampleBilinear and their
gradients), and the checks its kernels share with them.

X is a 4-D float tensor, [N, C, H, W] (NCHW) or [N, H, W, C] (NHWC; ResizeNearest
only). The output's spatial size is int(H * height_scale) by int(W * width_scale),
computed in float32 as Caffe2 does; with the optional `scales` input
([height_scale, width_scale], read at run time) it is unknown here. A gradient op
takes dY and X and gives dX of X's shape.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES

MAX_ELEMENTS = 2**31 - 1  # Caffe2 sizes these outputs with int


def spatial_axes(order: str) -> tuple[int, int]:
    """The (height, width) axes of a 4-D tensor in `order`."""
    return (1, 2) if order == "NHWC" else (2, 3)


def image(name: str, shape, dtype) -> None:
    """Raise unless input `name` is a 4-D float tensor."""
    if dtype is not None and str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"{name} must be float, got {dtype}")
    if len(shape) != 4:
        raise ShapeError(f"{name} must be 4-D, got {list(shape)}")


def scale_pair(height_scale: float, width_scale: float) -> tuple[float, float]:
    """The scales as float32, checked positive and finite."""
    pair = (np.float32(height_scale), np.float32(width_scale))
    for name, value in zip(("height_scale", "width_scale"), pair):
        if not (np.isfinite(value) and value > 0):
            raise ShapeError(f"{name} must be positive and finite, got {float(value)}")
    return pair


def scales_input(shape, dtype) -> None:
    """Raise unless the scales input is a float vector of 2 elements."""
    if len(shape) != 1 or shape[0] != 2 or (dtype is not None and str(dtype) not in FLOAT_TYPES):
        raise ShapeError(f"scales must be a 1-D float tensor of 2 elements [height_scale, width_scale], "
                         f"got {list(shape)} {dtype}")


def scaled(size: int, scale) -> int:
    """int(size * scale) in float32, as Caffe2's int = int * float; -1 when past MAX_ELEMENTS."""
    with np.errstate(over="ignore"):
        product = np.float32(size) * np.float32(scale)
    return int(product) if product <= MAX_ELEMENTS else -1


def output_shape(x, order: str, height_scale, width_scale) -> tuple[int, ...]:
    """Y's shape for X of shape x, checked against Caffe2's int sizes."""
    hs, ws = scale_pair(height_scale, width_scale)
    h_axis, w_axis = spatial_axes(order)
    out = list(x)
    out[h_axis], out[w_axis] = scaled(x[h_axis], hs), scaled(x[w_axis], ws)
    if min(out) < 0 or math.prod(out) > MAX_ELEMENTS:
        raise ShapeError(f"X {list(x)} scaled by [{float(hs):g}, {float(ws):g}] is too large: "
                         f"more than {MAX_ELEMENTS} output elements")
    return tuple(out)


def gradient_inputs(dy, x, order: str) -> None:
    """dY and X are 4-D float tensors of the same batch and channels."""
    image("dY", dy, None)
    image("X", x, None)
    h_axis, w_axis = spatial_axes(order)
    keep = [a for a in range(4) if a not in (h_axis, w_axis)]
    if [dy[a] for a in keep] != [x[a] for a in keep]:
        raise ShapeError(f"dY {list(dy)} and X {list(x)} must have the same batch and channel dims "
                         f"(order {order})")


def _forward(op: OpView, inputs: list, order: str) -> list:
    x = inputs[0]
    if op.n_inputs == 2 and inputs[1] is not None:
        scales_input(inputs[1].shape, inputs[1].dtype)
    if x is None:
        return [None]
    image("X", x.shape, x.dtype)
    shape = output_shape(x.shape, order, op.arg("height_scale"), op.arg("width_scale"))
    return [None if op.n_inputs == 2 else TensorInfo(shape, x.dtype)]


def _gradient(op: OpView, inputs: list, order: str) -> list:
    dy, x = inputs[:2]
    if op.n_inputs == 3 and inputs[2] is not None:
        scales_input(inputs[2].shape, inputs[2].dtype)
    scale_pair(op.arg("height_scale"), op.arg("width_scale"))
    if dy is None or x is None:
        return [None]
    image("dY", dy.shape, dy.dtype)
    gradient_inputs(dy.shape, x.shape, order)
    return [TensorInfo(tuple(x.shape), dy.dtype)]


@rule("resize_nearest")
def resize_nearest(op: OpView, inputs: list) -> list:
    """Y is X with its spatial dims scaled (unknown when the scales are an input)."""
    return _forward(op, inputs, op.arg("order"))


@rule("resize_nearest_gradient")
def resize_nearest_gradient(op: OpView, inputs: list) -> list:
    """dX has X's shape and dY's type."""
    return _gradient(op, inputs, op.arg("order"))


@rule("resize_upsample_bilinear")
def upsample_bilinear(op: OpView, inputs: list) -> list:
    """Y is X (NCHW) with its spatial dims scaled (unknown when the scales are an input)."""
    return _forward(op, inputs, "NCHW")


@rule("resize_upsample_bilinear_gradient")
def upsample_bilinear_gradient(op: OpView, inputs: list) -> list:
    """dX has X's shape and dY's type."""
    return _gradient(op, inputs, "NCHW")
