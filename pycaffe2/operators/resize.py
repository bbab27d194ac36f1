"""Resize family kernels: ResizeNearest (NCHW or NHWC) and UpsampleBilinear (NCHW,
aligned corners), their gradient ops, and CUDA launchers for all four (resize.cu).

Source positions are computed in float32 as Caffe2 does (int(o / scale) for
nearest, int(ratio * o) with ratio = (H - 1) / (OH - 1) for bilinear), so the
CPU and CUDA kernels pick the same pixels. Sources grow with output positions, so
the CPU gradients sum runs of dY along each spatial axis (np.add.reduceat); the
CUDA gradients gather per dX element. Shape checks are the schema's
(schema/inference/resize.py), shared with `validate`.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._resample import axis_weights, source_coordinates
from pycaffe2.operators.registry import ALL_SCHEMA_ARGS, register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference.resize import (
    check_gradient_shape,
    gradient_inputs,
    image,
    output_shape,
    resize_plan,
    scale_pair,
    scales_input,
    spatial_axes,
)

_SOURCE = "resize.cu"


def _scales(scales, height_scale, width_scale):
    """(height_scale, width_scale) as float32: the scales input's when given, else the args'."""
    if not scales:
        return scale_pair(height_scale, width_scale)
    values = cuda.copy_to_cpu(scales[0])
    scales_input(values.shape, values.dtype.name)
    return scale_pair(*values.tolist())


def _nearest(out: int, scale, size: int) -> np.ndarray:
    """ResizeNearest's source index of each of `out` output positions."""
    source = np.minimum(np.arange(out, dtype=np.float32) / np.float32(scale), np.float32(2**31))
    return np.minimum(source.astype(np.int64), size - 1)  # clamped first: the conversion could overflow


def _segment_sum(values, targets, size: int, axis: int) -> np.ndarray:
    """`values` summed along `axis` into `size` slots: slice o goes to slot targets[o]. The
    targets are non-decreasing (source positions grow with output positions), so each
    slot's slices are one run and np.add.reduceat sums them; no [out, size] matrix."""
    shape = list(values.shape)
    shape[axis] = size
    out = np.zeros(shape, values.dtype)
    if targets.size == 0 or size == 0:
        return out
    starts = np.flatnonzero(np.concatenate([[True], targets[1:] != targets[:-1]]))
    where = [slice(None)] * values.ndim
    where[axis] = targets[starts]
    out[tuple(where)] = np.add.reduceat(values, starts, axis=axis)
    return out


def _bilinear_ratio(size: int, out: int) -> np.float32:
    """(size - 1) / (out - 1) in float32, 0 for out <= 1."""
    return np.float32(size - 1) / np.float32(out - 1) if out > 1 else np.float32(0)


def _bilinear(out: int, size: int):
    """Lower source index, its step to the next one (0 at the edge) and the two weights
    of each of `out` output positions."""
    r = _bilinear_ratio(size, out) * np.arange(out, dtype=np.float32)
    low = r.astype(np.int64)
    step = (low < size - 1).astype(np.int64)
    lambda1 = r - low.astype(np.float32)
    return low, step, np.float32(1) - lambda1, lambda1


def _bilinear_sum(values, size: int, axis: int) -> np.ndarray:
    """The transpose of bilinear sampling along `axis`: each slice goes to its two
    sources with their weights."""
    low, step, lambda0, lambda1 = _bilinear(values.shape[axis], size)
    weights = [1] * values.ndim
    weights[axis] = -1
    return (_segment_sum(values * lambda0.reshape(weights).astype(values.dtype), low, size, axis)
            + _segment_sum(values * lambda1.reshape(weights).astype(values.dtype), low + step, size, axis))


def _nchw(shape, order):
    """(N, C, H, W) of a 4-D shape in `order`."""
    n, a, b, c = shape
    return (n, c, a, b) if order == "NHWC" else (n, a, b, c)


# ---- ResizeNearest -------------------------------------------------------------------------

@register_cpu("ResizeNearest")
def resize_nearest(x, *scales, order, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    image("X", x.shape, x.dtype.name)
    shape = output_shape(x.shape, order, hs, ws)
    if 0 in x.shape or 0 in shape:
        return np.zeros(shape, x.dtype)
    h_axis, w_axis = spatial_axes(order)
    rows = _nearest(shape[h_axis], hs, x.shape[h_axis])[:, None]
    cols = _nearest(shape[w_axis], ws, x.shape[w_axis])[None, :]
    return x[:, rows, cols, :] if order == "NHWC" else x[:, :, rows, cols]


@register_gradient("ResizeNearest", "UpsampleBilinear")
def make_resize_gradient(g):
    inputs = [g.GO(0), g.I(0)] + ([g.I(1)] if len(g.op.input) == 2 else [])
    return [g.Op(f"{g.op.type}Gradient", inputs, [g.GI(0)])]


def _check_gradient(dy, x, order):
    image("dY", dy.shape, dy.dtype.name)
    gradient_inputs(dy.shape, x.shape, order)


@register_cpu("ResizeNearestGradient")
def resize_nearest_gradient(dy, x, *scales, order, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    _check_gradient(dy, x, order)
    h_axis, w_axis = spatial_axes(order)
    (_, _, h, w), (_, _, oh, ow) = _nchw(x.shape, order), _nchw(dy.shape, order)
    rows = _segment_sum(dy, _nearest(oh, hs, h), h, h_axis)
    return _segment_sum(rows, _nearest(ow, ws, w), w, w_axis)


# ---- UpsampleBilinear ----------------------------------------------------------------------

@register_cpu("UpsampleBilinear")
def upsample_bilinear(x, *scales, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    image("X", x.shape, x.dtype.name)
    shape = output_shape(x.shape, "NCHW", hs, ws)
    if 0 in shape:
        return np.zeros(shape, x.dtype)
    h1, hp, h0l, h1l = (v[:, None] for v in _bilinear(shape[2], x.shape[2]))
    w1, wp, w0l, w1l = _bilinear(shape[3], x.shape[3])
    top = w0l * x[:, :, h1, w1] + w1l * x[:, :, h1, w1 + wp]
    bottom = w0l * x[:, :, h1 + hp, w1] + w1l * x[:, :, h1 + hp, w1 + wp]
    return (h0l * top + h1l * bottom).astype(x.dtype, copy=False)


@register_cpu("UpsampleBilinearGradient")
def upsample_bilinear_gradient(dy, x, *scales, height_scale, width_scale):
    _scales(scales, height_scale, width_scale)  # checked; the ratios come from the shapes
    _check_gradient(dy, x, "NCHW")
    return _bilinear_sum(_bilinear_sum(dy, x.shape[2], 2), x.shape[3], 3)


# ---- CUDA launchers (resize.cu) ------------------------------------------------------------
# One thread per output element; the gradients one per dX element, summing the dY run
# that reads it (no atomics, so the sums are deterministic).

def _sizes(*values):
    return [np.int64(v) for v in values]


@register_cuda("ResizeNearest")
def resize_nearest_cuda(x, *scales, order, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    (x,) = cuda.float32_inputs(x)
    image("X", x.shape, x.dtype.name)
    shape = output_shape(x.shape, order, hs, ws)
    y = cuda.empty(shape)
    n, c, h, w = _nchw(x.shape, order)
    _, _, oh, ow = _nchw(shape, order)
    cuda.launch(_SOURCE, "resize_nearest", y.size, x, y, *_sizes(n, c, h, w, oh, ow), hs, ws,
                np.int64(order == "NHWC"))
    return y


@register_cuda("ResizeNearestGradient")
def resize_nearest_gradient_cuda(dy, x, *scales, order, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    (dy,) = cuda.float32_inputs(dy)
    _check_gradient(dy, x, order)
    if dy.size == 0:
        return cuda.CUDADevice.put(np.zeros(x.shape, np.float32))
    dx = cuda.empty(x.shape)
    n, c, h, w = _nchw(x.shape, order)
    _, _, oh, ow = _nchw(dy.shape, order)
    cuda.launch(_SOURCE, "resize_nearest_gradient", dx.size, dy, dx, *_sizes(n, c, h, w, oh, ow), hs, ws,
                np.int64(order == "NHWC"))
    return dx


@register_cuda("UpsampleBilinear")
def upsample_bilinear_cuda(x, *scales, height_scale, width_scale):
    hs, ws = _scales(scales, height_scale, width_scale)
    (x,) = cuda.float32_inputs(x)
    image("X", x.shape, x.dtype.name)
    shape = output_shape(x.shape, "NCHW", hs, ws)
    y = cuda.empty(shape)
    n, c, h, w = x.shape
    oh, ow = shape[2:]
    cuda.launch(_SOURCE, "upsample_bilinear", y.size, x, y, *_sizes(n * c, h, w, oh, ow),
                _bilinear_ratio(h, oh), _bilinear_ratio(w, ow))
    return y


@register_cuda("UpsampleBilinearGradient")
def upsample_bilinear_gradient_cuda(dy, x, *scales, height_scale, width_scale):
    _scales(scales, height_scale, width_scale)
    (dy,) = cuda.float32_inputs(dy)
    _check_gradient(dy, x, "NCHW")
    if dy.size == 0:
        return cuda.CUDADevice.put(np.zeros(x.shape, np.float32))
    dx = cuda.empty(x.shape)
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    cuda.launch(_SOURCE, "upsample_bilinear_gradient", dx.size, dy, dx, *_sizes(n * c, h, w, oh, ow),
                _bilinear_ratio(h, oh), _bilinear_ratio(w, ow))
    return dx


# ---- Resize (ONNX's) ------------------------------------------------------------------------

def _axis_steps(shape, args: dict):
    """Per resized axis (in order): (axis, [out, in] weights, rows reading outside X or None)."""
    out_shape, factors, rois = resize_plan(shape, args)
    mode = args["coordinate_transformation_mode"]
    steps = []
    for axis, (n_in, n_out, scale, span) in enumerate(zip(shape, out_shape, factors, rois)):
        if np.isclose(scale, 1.0) and n_out == n_in and np.allclose(span, (0.0, 1.0)):
            continue  # identity along this axis
        x = source_coordinates(mode, n_in, n_out, scale, span)
        outside = (x < 0) | (x > n_in - 1) if mode == "tf_crop_and_resize" else None
        steps.append((axis, axis_weights(x, n_in, scale, args), outside))
    return steps


def _along(matrix: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(np.tensordot(matrix, y, axes=([1], [axis])), 0, axis)


def _rows(mask: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    return mask.reshape((-1,) + (1,) * (ndim - axis - 1))


@register_cpu("Resize", args=ALL_SCHEMA_ARGS)
def resize(x, **args):
    """One axis after another; tf_crop_and_resize's sources outside X get
    extrapolation_value before the next axis reads them, as ONNX's reference does."""
    y = x.astype(np.float64)
    for axis, weights, outside in _axis_steps(x.shape, args):
        y = _along(weights, y, axis)
        if outside is not None:
            y = np.where(_rows(outside, y.ndim, axis), args["extrapolation_value"], y)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        y = np.clip(np.rint(y), info.min, info.max)
    return y.astype(x.dtype)


@register_gradient("Resize")
def make_onnx_resize_gradient(g):
    return [g.Op("ResizeGradient", [g.GO(0), g.I(0)], [g.GI(0)])]


@register_cpu("ResizeGradient", args=ALL_SCHEMA_ARGS)
def resize_gradient(dy, x, **args):
    """The steps' adjoints in reverse: rows set to extrapolation_value pass nothing back."""
    check_gradient_shape(dy.shape, resize_plan(x.shape, args)[0])
    g = dy.astype(np.float64)
    for axis, weights, outside in reversed(_axis_steps(x.shape, args)):
        if outside is not None:
            g = np.where(_rows(outside, g.ndim, axis), 0.0, g)
        g = _along(weights.T, g, axis)
    return g.astype(dy.dtype)
