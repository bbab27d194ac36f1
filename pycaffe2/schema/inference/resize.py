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

from pycaffe2.files import check_alloc
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


# ---- Resize (ONNX's): any rank, scales or sizes per axis -----------------------------------

def _full(values, axes, rank: int, fill, what: str) -> list:
    """Per-axis `values` (given for `axes`) spread over all `rank` axes, the rest `fill`."""
    if len(values) != len(axes):
        raise ShapeError(f"{what} has {len(values)} values but {len(axes)} axes are resized "
                         f"(X has rank {rank})")
    full = list(fill)
    for a, v in zip(axes, values):
        full[a] = v
    return full


def resize_axes(axes, rank: int) -> list:
    """The resized axes, negative ones counted from the end, checked in range and distinct."""
    if not axes:
        return list(range(rank))
    out = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in out) or len(set(out)) != len(out):
        raise ShapeError(f"axes {list(axes)} must be distinct axes of X's rank {rank}")
    return out


def resize_plan(x_shape, args: dict):
    """(Y's shape, per-axis scale, per-axis roi (start, end)) of Resize on X of `x_shape`:
    from `sizes` (scale = size / in, or one scale for all resized axes under a
    keep_aspect_ratio_policy) or from `scales` (size = floor(in * scale), in float32)."""
    if args.get("mode") == "nearest" and args.get("antialias"):
        raise ShapeError("antialias is for modes linear and cubic")
    rank = len(x_shape)
    axes = resize_axes(args.get("axes") or [], rank)
    scales, sizes = args.get("scales") or [], args.get("sizes") or []
    if bool(scales) == bool(sizes):
        raise ShapeError("give exactly one of scales and sizes")
    roi = args.get("roi") or []
    if roi:
        roi = _full(roi[:len(roi) // 2], axes, rank, [0.0] * rank, "roi (starts)") + \
            _full(roi[len(roi) // 2:], axes, rank, [1.0] * rank, "roi (ends)")
    else:
        roi = [0.0] * rank + [1.0] * rank
    if sizes:
        sizes = _full(sizes, axes, rank, x_shape, "sizes")
        if min(sizes) < 0:
            raise ShapeError(f"sizes {list(args['sizes'])} must be non-negative")
        if any(x == 0 and s > 0 for x, s in zip(x_shape, sizes)):
            raise ShapeError(f"X {list(x_shape)} is empty along an axis sizes {list(sizes)} enlarge")
        factors = [s / x if x else 1.0 for s, x in zip(sizes, x_shape)]
        policy = args.get("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            one = (min if policy == "not_larger" else max)(factors[a] for a in axes)
            factors = [one if a in axes else 1.0 for a in range(rank)]
            sizes = [int(one * x_shape[a] + 0.5) if a in axes else x_shape[a] for a in range(rank)]
    else:
        factors = _full(scales, axes, rank, [1.0] * rank, "scales")
        if any(not (np.isfinite(f) and f > 0) for f in factors):
            raise ShapeError(f"scales {list(scales)} must be positive and finite")
        with np.errstate(over="ignore"):
            sizes = [int(min(np.float32(f) * np.float32(x), 2.0**62)) for f, x in zip(factors, x_shape)]
    check_alloc(sizes, "float64", "Resize's output")
    return tuple(sizes), factors, [(roi[a], roi[rank + a]) for a in range(rank)]


@rule("resize_resize")
def resize(op: OpView, inputs: list) -> list:
    """Y has X's type and the planned shape."""
    x = inputs[0]
    if x is None:
        return [None]
    shape, _, _ = resize_plan(x.shape, op.args)
    return [TensorInfo(shape, x.dtype)]


def check_gradient_shape(dy_shape, y_shape) -> None:
    if tuple(dy_shape) != tuple(y_shape):
        raise ShapeError(f"dY is {list(dy_shape)} but Resize's Y is {list(y_shape)}")


@rule("resize_resize_gradient")
def resize_gradient(op: OpView, inputs: list) -> list:
    """dX has X's shape and dY's type."""
    dy, x = inputs
    if x is None:
        return [None]
    shape, _, _ = resize_plan(x.shape, op.args)
    if dy is not None:
        check_gradient_shape(dy.shape, shape)
    return [TensorInfo(tuple(x.shape), dy.dtype if dy is not None else x.dtype)]
