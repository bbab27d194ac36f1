"""NumPy kernels of the spatial family: Im2Col and Col2Im, SpaceToBatch and
BatchToSpace, IntegralImage and its gradient, RMACRegions. The shape checks
and window/region arithmetic are the family's inference module's
(schema/inference/spatial.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.spatial import (
    batch_to_space_shape,
    col_matches,
    col_shape,
    float_image,
    im2col_out,
    image_dims,
    integral_gradient_shapes,
    rmac_regions,
    space_pads,
    space_to_batch_shape,
    window,
    within_cap,
)

WINDOW_ARGS = ("kernel", "kernel_h", "kernel_w", "dilation", "dilation_h", "dilation_w", "stride", "stride_h",
               "stride_w", "pad", "order")


def _nchw(x, order):
    return x if order == "NCHW" else x.transpose(0, 3, 1, 2)


def _taps(h, w, g):
    """(i, j, row slice, column slice) of each kernel tap over the padded image."""
    oh, ow = im2col_out(h, w, g)
    for i in range(g.kh):  # a loop over the kernel's taps (kh * kw, small)
        for j in range(g.kw):
            rows = slice(i * g.dh, i * g.dh + (oh - 1) * g.sh + 1, g.sh)
            cols = slice(j * g.dw, j * g.dw + (ow - 1) * g.sw + 1, g.sw)
            yield i, j, rows, cols


@register_cpu("Im2Col", args=WINDOW_ARGS)
def im2col(x, *, order, **window_args):
    g = window(window_args)
    within_cap("Y", col_shape(x.shape, order, g), x.dtype.itemsize)
    n, c, h, w = image_dims(x.shape, order)
    oh, ow = im2col_out(h, w, g)
    p = g.pad
    padded = np.pad(_nchw(x, order), ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((n, c, g.kh, g.kw, oh, ow), x.dtype)
    for i, j, rows, cs in _taps(h, w, g):
        cols[:, :, i, j] = padded[:, :, rows, cs]
    if order == "NCHW":
        return cols.reshape(n, c * g.kh * g.kw, oh, ow)
    return np.ascontiguousarray(cols.transpose(0, 4, 5, 2, 3, 1)).reshape(n, oh, ow, g.kh * g.kw * c)


@register_cpu("Col2Im", args=WINDOW_ARGS)
def col2im(x, z, *, order, **window_args):
    g = window(window_args)
    expected = col_shape(z.shape, order, g)
    col_matches(x.shape, expected)
    n, c, h, w = image_dims(z.shape, order)
    oh, ow = im2col_out(h, w, g)
    if order == "NCHW":
        cols = x.reshape(n, c, g.kh, g.kw, oh, ow)
    else:
        cols = x.reshape(n, oh, ow, g.kh, g.kw, c).transpose(0, 5, 3, 4, 1, 2)
    p = g.pad
    within_cap("the padded image", (n, c, h + 2 * p, w + 2 * p), x.dtype.itemsize)
    padded = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
    for i, j, rows, cs in _taps(h, w, g):
        padded[:, :, rows, cs] += cols[:, :, i, j]
    image = padded[:, :, p:p + h, p:p + w]
    return np.ascontiguousarray(image if order == "NCHW" else image.transpose(0, 2, 3, 1))


@register_cpu("SpaceToBatch")
def space_to_batch(x, *, pad, pad_t, block_size, order):
    float_image("X", x.shape, x.dtype)
    top, left, bottom, right = pads = space_pads({"pad": pad, "pad_t": pad_t})
    out_n, c, oh, ow = space_to_batch_shape(x.shape, block_size, pads)
    within_cap("Y", (out_n, c, oh, ow), x.dtype.itemsize)
    b = block_size
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    blocks = padded.reshape(x.shape[0], c, oh, b, ow, b).transpose(3, 5, 0, 1, 2, 4)
    return np.ascontiguousarray(blocks).reshape(out_n, c, oh, ow)


@register_cpu("BatchToSpace")
def batch_to_space(x, *, pad, pad_t, block_size, order):
    float_image("X", x.shape, x.dtype)
    top, left, _, _ = pads = space_pads({"pad": pad, "pad_t": pad_t})
    out_n, c, oh, ow = batch_to_space_shape(x.shape, block_size, pads)
    b, (_, _, h, w) = block_size, x.shape
    space = x.reshape(b, b, out_n, c, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(out_n, c, h * b, w * b)
    return np.ascontiguousarray(space[:, :, top:top + oh, left:left + ow])


@register_cpu("IntegralImage")
def integral_image(x):
    float_image("X", x.shape, x.dtype)
    n, c, h, w = x.shape
    y = np.zeros((n, c, h + 1, w + 1), x.dtype)
    y[:, :, 1:, 1:] = x.cumsum(2).cumsum(3)
    return y


@register_cpu("IntegralImageGradient")
def integral_image_gradient(x, dy):
    integral_gradient_shapes(x.shape, dy.shape)
    _, _, h, w = x.shape
    return np.ascontiguousarray(dy[:, :, :h, :w].cumsum(3).cumsum(2))


@register_cpu("RMACRegions")
def rmac_regions_op(x, *, scales, overlap):
    if x.ndim != 4:
        raise ValueError(f"X must be 4-D NCHW, got {list(x.shape)}")
    if x.size == 0:
        return np.zeros((0, 5), np.float32)
    n, _, h, w = x.shape
    regions = np.array(rmac_regions(h, w, scales, overlap), np.float32).reshape(-1, 4)
    batch = np.repeat(np.arange(n, dtype=np.float32), regions.shape[0])[:, None]
    return np.concatenate([batch, np.tile(regions, (n, 1))], axis=1)


gradient_op("Im2Col", "GO0 I0", gradient_type="Col2Im")
gradient_op("Col2Im", "GO0", gradient_type="Im2Col")
gradient_op("SpaceToBatch", "GO0", gradient_type="BatchToSpace")
gradient_op("BatchToSpace", "GO0", gradient_type="SpaceToBatch")
gradient_op("IntegralImage", "I0 GO0")
