"""Inference rules and checks of the spatial family (Im2Col, Col2Im,
SpaceToBatch, BatchToSpace, IntegralImage and its gradient, RMACRegions).
The window and region arithmetic lives here so the kernels share it."""
from __future__ import annotations

import math
from typing import NamedTuple

from pycaffe2.files import max_blob_bytes
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

MAX_RMAC_REGIONS = 10_000_000


class Window(NamedTuple):
    kh: int
    kw: int
    dh: int
    dw: int
    sh: int
    sw: int
    pad: int


def within_cap(name: str, shape, itemsize: int) -> None:
    """Raise when an output of `shape` would pass $PYCAFFE2_MAX_BLOB_BYTES (checked before allocating)."""
    size = math.prod(int(d) for d in shape) * itemsize
    if size > max_blob_bytes():
        raise ShapeError(f"{name} would be {list(shape)}, {size:,} bytes, over the {max_blob_bytes():,}-byte cap "
                         "(raise it with $PYCAFFE2_MAX_BLOB_BYTES)")


def window(args: dict) -> Window:
    """Im2Col's kernel, dilation, stride and pad from its args (the _h/_w args override), or raise."""
    def pick(name, axis):
        value = args.get(f"{name}_{axis}")
        return args[name] if value is None else value
    g = Window(pick("kernel", "h"), pick("kernel", "w"), pick("dilation", "h"), pick("dilation", "w"),
               pick("stride", "h"), pick("stride", "w"), args["pad"])
    for name, value in (("kernel", g.kh), ("kernel", g.kw), ("dilation", g.dh), ("dilation", g.dw),
                        ("stride", g.sh), ("stride", g.sw)):
        if value <= 0:
            raise ShapeError(f"{name} must be > 0, got {value}")
    if g.pad < 0:
        raise ShapeError(f"pad must be >= 0, got {g.pad}")
    return g


def image_dims(shape, order: str) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a 4-D image, or raise."""
    if len(shape) != 4:
        raise ShapeError(f"the image must be 4-D, got {list(shape)}")
    n, a, b, c = shape
    return (n, a, b, c) if order == "NCHW" else (n, c, a, b)


def im2col_out(h: int, w: int, g: Window) -> tuple[int, int]:
    """(out_h, out_w) of Im2Col's windows, or raise when the dilated kernel exceeds the image."""
    ekh, ekw = g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1
    if h < ekh or w < ekw:
        raise ShapeError(f"the dilated kernel {ekh}x{ekw} is larger than the {h}x{w} image")
    return (h + 2 * g.pad - ekh) // g.sh + 1, (w + 2 * g.pad - ekw) // g.sw + 1


def col_shape(image_shape, order: str, g: Window) -> tuple:
    """The shape of Im2Col's output for an image of `image_shape`."""
    n, c, h, w = image_dims(image_shape, order)
    oh, ow = im2col_out(h, w, g)
    return (n, c * g.kh * g.kw, oh, ow) if order == "NCHW" else (n, oh, ow, g.kh * g.kw * c)


def col_matches(shape, expected) -> None:
    """Raise unless Col2Im's columns hold what Im2Col makes of Z's shape."""
    if math.prod(shape) != math.prod(expected):
        raise ShapeError(f"X {list(shape)} does not hold the columns {list(expected)} of the image")


def space_pads(args: dict) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding of SpaceToBatch/BatchToSpace: pad_t, then pad elsewhere (Caffe2)."""
    top = args["pad"] if args.get("pad_t") is None else args["pad_t"]
    return top, args["pad"], args["pad"], args["pad"]


def float_image(name: str, shape, dtype) -> None:
    """Raise unless the input is a 4-D float tensor."""
    if len(shape) != 4 or str(dtype) not in ("float32", "float64"):
        raise ShapeError(f"{name} must be a 4-D float tensor, got {list(shape)} {dtype}")


def space_to_batch_shape(shape, block: int, pads) -> tuple:
    n, c, h, w = shape
    top, left, bottom, right = pads
    hp, wp = h + top + bottom, w + left + right
    if hp % block or wp % block:
        raise ShapeError(f"the padded size {hp}x{wp} is not a multiple of block_size {block}")
    return n * block * block, c, hp // block, wp // block


def batch_to_space_shape(shape, block: int, pads) -> tuple:
    n, c, h, w = shape
    top, left, bottom, right = pads
    if n % (block * block):
        raise ShapeError(f"the batch {n} is not a multiple of block_size^2 = {block * block}")
    oh, ow = h * block - top - bottom, w * block - left - right
    if oh < 0 or ow < 0:
        raise ShapeError(f"the padding crops more than the {h * block}x{w * block} blocks hold")
    return n // (block * block), c, oh, ow


def rmac_regions(h: int, w: int, scales: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of the RMAC regions of an h x w map, as Caffe2 computes them (float32 steps)."""
    import numpy as np
    f32 = np.float32
    short = min(h, w)
    step = 0
    if w != h and short > 0:
        best = np.inf
        for idx in range(1, 7):
            b = f32((max(h, w) - short) / idx)
            val = f32(abs((short * short - short * float(b)) / (short * short) - overlap))
            if val < best:
                step, best = idx, val
    wd, hd = (step if w > h else 0), (step if h > w else 0)
    count = sum((l + wd) * (l + hd) for l in range(1, min(scales, 2 * short) + 1) if 2 * short // (l + 1))
    if count > MAX_RMAC_REGIONS:
        raise ShapeError(f"scales={scales} makes {count} regions (at most {MAX_RMAC_REGIONS})")
    regions = []
    for l in range(1, scales + 1):
        size = 2 * short // (l + 1)
        if size == 0:
            break
        bw = f32((w - size) / (l + wd - 1)) if l + wd - 1 > 0 else f32(0)
        bh = f32((h - size) / (l + hd - 1)) if l + hd - 1 > 0 else f32(0)
        for i in range(l + wd):
            for j in range(l + hd):
                x1, y1 = int(bw * f32(i)), int(bh * f32(j))
                x1 -= max(x1 + size - w, 0)
                y1 -= max(y1 + size - h, 0)
                regions.append((x1, y1, x1 + size - 1, y1 + size - 1))
    return regions


@rule("spatial_im2col")
def im2col(op: OpView, inputs: list) -> list:
    g = window(op.args)
    (x,) = inputs
    if x is None:
        return [None]
    return [TensorInfo(col_shape(x.shape, op.arg("order"), g), x.dtype)]


@rule("spatial_col2im")
def col2im(op: OpView, inputs: list) -> list:
    g = window(op.args)
    x, z = inputs
    if z is None:
        return [None]
    expected = col_shape(z.shape, op.arg("order"), g)
    if x is not None:
        col_matches(x.shape, expected)
    return [TensorInfo(z.shape, x.dtype if x is not None else z.dtype)]


@rule("spatial_space_to_batch")
def space_to_batch(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    float_image("X", x.shape, x.dtype)
    return [TensorInfo(space_to_batch_shape(x.shape, op.arg("block_size"), space_pads(op.args)), x.dtype)]


@rule("spatial_batch_to_space")
def batch_to_space(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    float_image("X", x.shape, x.dtype)
    return [TensorInfo(batch_to_space_shape(x.shape, op.arg("block_size"), space_pads(op.args)), x.dtype)]


@rule("spatial_integral_image")
def integral_image(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    float_image("X", x.shape, x.dtype)
    n, c, h, w = x.shape
    return [TensorInfo((n, c, h + 1, w + 1), x.dtype)]


def integral_gradient_shapes(x_shape, dy_shape) -> None:
    """Raise unless dY is [N, C, H + 1, W + 1] for X [N, C, H, W]."""
    if len(x_shape) != 4 or len(dy_shape) != 4:
        raise ShapeError(f"X and dY must be 4-D, got {list(x_shape)} and {list(dy_shape)}")
    n, c, h, w = x_shape
    if tuple(dy_shape) != (n, c, h + 1, w + 1):
        raise ShapeError(f"dY {list(dy_shape)} must be [N, C, H + 1, W + 1] for X {list(x_shape)}")


@rule("spatial_integral_image_gradient")
def integral_image_gradient(op: OpView, inputs: list) -> list:
    x, dy = inputs
    if x is None or dy is None:
        return [None]
    integral_gradient_shapes(x.shape, dy.shape)
    return [TensorInfo(x.shape, dy.dtype)]


@rule("spatial_rmac_regions")
def rmac(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    if len(x.shape) != 4:
        raise ShapeError(f"X must be 4-D NCHW, got {list(x.shape)}")
    if math.prod(x.shape) == 0:
        return [TensorInfo((0, 5), "float32")]
    n, _, h, w = x.shape
    return [TensorInfo((n * len(rmac_regions(h, w, op.arg("scales"), op.arg("overlap"))), 5), "float32")]
