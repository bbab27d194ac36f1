"""RoI detection kernels (NumPy, and CUDA in detection_roi.cu): RoIAlign, RoIPool and
BatchPermutation, RoIAlignRotated, with their gradient ops.

Each RoI's geometry (batch index, start, bin size and sampling grid; RoIPool's clipped
bin bounds) is resolved once on the host, in float32 as Caffe2 does, by the functions
here; the CPU kernels and the CUDA launchers share it, so both devices sample alike and
refuse the same RoIs in the same words. RoIAlign's bilinear sampling is separable: per
RoI, one [pooled_h, H] matrix of row weights and one [pooled_w, W] of column weights
(each bin's samples summed) turn the pooled map into two small matrix products over the
part of X the RoI touches, and its gradient into their transposes. A rotated RoI's samples
are not separable: they gather their four cells each. The loops run over RoIs, which the
inputs bound.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from pycaffe2.errors import GradientError
from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._conv_pool import channels_back, channels_first
from pycaffe2.operators.registry import (
    ALL_SCHEMA_ARGS,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.detection_roi import (
    check_average_mode,
    check_batch_indices,
    check_finite,
    check_gradient_shape,
    check_indices_in_range,
    check_int_indices,
    check_permutation_shapes,
    check_sampling_grid,
    roi_output_shape,
)

F32 = np.float32


def _nchw_dims(x_shape, order: str) -> tuple:
    n, a, b, c = x_shape
    return (n, a, b, c) if order == "NCHW" else (n, c, a, b)


def _split_rois(rois: np.ndarray, images: int, columns: int, name: str = "RoIs"):
    """(batch indices as ints, the box columns as float32) of RoIs with or without column 0."""
    r = np.asarray(rois, F32).reshape(-1, rois.shape[-1] if rois.size else columns)
    if r.shape[1] == columns + 1:
        batch, boxes = r[:, 0], r[:, 1:]
    else:
        batch, boxes = np.zeros(len(r), F32), r
    check_finite(boxes, name)
    check_batch_indices(batch, images, name)
    return batch.astype(np.int64), boxes


# -- RoIAlign -----------------------------------------------------------------------------------

def align_geometry(rois: np.ndarray, images: int, args: dict) -> np.ndarray:
    """float32 [R, 7]: batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w per RoI."""
    batch, boxes = _split_rois(rois, images, 4)
    offset = F32(0.5 if args["aligned"] else 0.0)
    scale = F32(args["spatial_scale"])
    start_w, start_h, end_w, end_h = (boxes[:, k] * scale - offset for k in range(4))
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if args["aligned"]:
        negative = (roi_w < 0) | (roi_h < 0)
        if negative.any():
            raise ShapeError(f"RoI row {int(np.flatnonzero(negative)[0])} has a negative size "
                             "(aligned=1 takes RoIs as they are)")
    else:  # legacy: every RoI at least 1x1
        roi_w, roi_h = np.maximum(roi_w, F32(1)), np.maximum(roi_h, F32(1))
    ph, pw, ratio = args["pooled_h"], args["pooled_w"], args["sampling_ratio"]
    if ratio > 0:
        grid_h = grid_w = np.full(len(boxes), ratio, np.float64)
    else:
        grid_h, grid_w = np.ceil(roi_h / F32(ph)).astype(np.float64), np.ceil(roi_w / F32(pw)).astype(np.float64)
    check_sampling_grid(grid_h, grid_w, args)
    return np.stack([batch.astype(F32), start_h, start_w, roi_h / F32(ph), roi_w / F32(pw),
                     grid_h.astype(F32), grid_w.astype(F32)], axis=1).astype(F32)


def _corners(v: np.ndarray, size: int):
    """Bilinear sampling along one axis at float32 coordinates v over [0, size): (valid, low
    cell, high cell, weight of the high cell). Invalid: more than one cell outside."""
    valid = (v >= -1) & (v <= size)
    v = np.clip(v, F32(0), F32(size))
    low = np.minimum(v.astype(np.int64), size - 1)
    edge = low >= size - 1  # the last cell: clamped onto it
    high = np.where(edge, low, low + 1)
    frac = np.where(edge, 0.0, v - low).astype(np.float64)
    return valid, low, high, frac


def _sample_coordinates(start, bin_size, grid: int, bins: int):
    """float32 coordinates of `grid` samples in each of `bins` bins, in Caffe2's order of
    operations: start + p * bin + (i + 0.5) * bin / grid; [bins, grid]."""
    p, i = np.arange(bins, dtype=F32)[:, None], np.arange(grid, dtype=F32)[None, :]
    return (F32(start) + p * F32(bin_size)) + (i + F32(0.5)) * F32(bin_size) / F32(grid)


def _axis_weights(start, bin_size, grid: int, bins: int, size: int) -> tuple:
    """[bins, size] weights of each cell in each bin's bilinear samples along one axis,
    and the [lo, hi) cells they touch."""
    weights = np.zeros((bins, size))
    if grid == 0 or size == 0:
        return weights, (0, 0)
    valid, low, high, frac = _corners(_sample_coordinates(start, bin_size, grid, bins).ravel(), size)
    p = np.repeat(np.arange(bins), grid)
    np.add.at(weights, (p, low), np.where(valid, 1.0 - frac, 0.0))
    np.add.at(weights, (p, high), np.where(valid, frac, 0.0))
    if not valid.any():
        return weights, (0, 0)
    return weights, (int(low[valid].min()), int(high[valid].max()) + 1)


def _roi_matrices(g: np.ndarray, args: dict, height: int, width: int):
    """RoI g's row and column weights (cropped to the cells it touches), their crops, and 1/count."""
    rows, (h0, h1) = _axis_weights(g[1], g[3], int(g[5]), args["pooled_h"], height)
    cols, (w0, w1) = _axis_weights(g[2], g[4], int(g[6]), args["pooled_w"], width)
    return rows[:, h0:h1], cols[:, w0:w1], slice(h0, h1), slice(w0, w1), 1.0 / max(int(g[5]) * int(g[6]), 1)


def _max_bins(plane: np.ndarray, g: np.ndarray, args: dict) -> np.ndarray:
    """ONNX's RoIAlign mode max for one RoI on plane [C, H, W]: per bin, the largest over
    its samples of the largest of the four weighted corners (0 for a sample outside)."""
    axes = []
    for start, size, grid, bins, extent in ((g[1], g[3], int(g[5]), args["pooled_h"], plane.shape[1]),
                                            (g[2], g[4], int(g[6]), args["pooled_w"], plane.shape[2])):
        valid, low, high, frac = _corners(_sample_coordinates(start, size, grid, bins), extent)
        axes.append(((low, np.where(valid, 1.0 - frac, 0.0)), (high, np.where(valid, frac, 0.0))))
    best = np.maximum.reduce([plane[:, rows[:, :, None, None], cols[None, None]] * (wy[:, :, None, None] * wx[None, None])
                              for (rows, wy), (cols, wx) in itertools.product(*axes)])  # [C, ph, gh, pw, gw]
    return best.max(axis=(2, 4)) if best.size else np.zeros(best.shape[:2] + best.shape[3:4])


@register_cpu("RoIAlign", args=ALL_SCHEMA_ARGS)
def roi_align(x, rois, **args):
    order, pooled_h, pooled_w = args["order"], args["pooled_h"], args["pooled_w"]
    shape = roi_output_shape(args, x.shape, rois.shape)
    n, c, height, width = _nchw_dims(x.shape, order)
    xc = channels_first(x, order)
    y = np.zeros((shape[0], c, pooled_h, pooled_w), x.dtype)
    if args["mode"] == "max":
        for r, g in enumerate(align_geometry(rois, n, args)):
            y[r] = _max_bins(xc[int(g[0])], g, args)
        return channels_back(y, order)
    for r, g in enumerate(align_geometry(rois, n, args)):
        rows, cols, hs, ws, inv_count = _roi_matrices(g, args, height, width)
        if rows.size and cols.size:
            y[r] = (rows @ xc[int(g[0]), :, hs, ws] @ cols.T) * inv_count
    return channels_back(y, order)


gradient_op("RoIAlign", "I0 I1 GO0")


@register_cpu("RoIAlignGradient", args=ALL_SCHEMA_ARGS)
def roi_align_gradient(x, rois, dy, **args):
    order = args["order"]
    check_average_mode(args.get("mode") or "avg", "gradient")
    check_gradient_shape(dy.shape, roi_output_shape(args, x.shape, rois.shape))
    n, c, height, width = _nchw_dims(x.shape, order)
    dyc = channels_first(dy, order)
    dx = np.zeros((n, c, height, width), np.result_type(dy.dtype, np.float32))
    for r, g in enumerate(align_geometry(rois, n, args)):
        rows, cols, hs, ws, inv_count = _roi_matrices(g, args, height, width)
        if rows.size and cols.size:
            dx[int(g[0]), :, hs, ws] += (rows.T @ dyc[r] @ cols) * inv_count
    return channels_back(dx, order)


# -- RoIAlignRotated ------------------------------------------------------------------------------

def rotated_geometry(rois: np.ndarray, images: int, args: dict) -> np.ndarray:
    """float32 [R, 11]: batch, centre_h, centre_w, bin_h, bin_w, grid_h, grid_w, cos, sin, and the
    grid's start (-h / 2, -w / 2, about the centre) per RoI."""
    batch, boxes = _split_rois(rois, images, 5)
    offset = F32(0.5 if args["aligned"] else 0.0)
    scale = F32(args["spatial_scale"])
    centre_w, centre_h = boxes[:, 0] * scale - offset, boxes[:, 1] * scale - offset
    roi_w, roi_h = boxes[:, 2] * scale, boxes[:, 3] * scale
    theta = (boxes[:, 4].astype(np.float64) * np.pi / 180.0).astype(F32)
    if args["aligned"]:
        negative = (roi_w < 0) | (roi_h < 0)
        if negative.any():
            raise ShapeError(f"RoI row {int(np.flatnonzero(negative)[0])} has a negative size "
                             "(aligned=1 takes RoIs as they are)")
    else:
        roi_w, roi_h = np.maximum(roi_w, F32(1)), np.maximum(roi_h, F32(1))
    ph, pw, ratio = args["pooled_h"], args["pooled_w"], args["sampling_ratio"]
    if ratio > 0:
        grid_h = grid_w = np.full(len(boxes), ratio, np.float64)
    else:
        grid_h, grid_w = np.ceil(roi_h / F32(ph)).astype(np.float64), np.ceil(roi_w / F32(pw)).astype(np.float64)
    check_sampling_grid(grid_h, grid_w, args)
    return np.stack([batch.astype(F32), centre_h, centre_w, roi_h / F32(ph), roi_w / F32(pw), grid_h.astype(F32),
                     grid_w.astype(F32), np.cos(theta), np.sin(theta), -roi_h / F32(2), -roi_w / F32(2)],
                    axis=1).astype(F32)


def _rotated_samples(g: np.ndarray, args: dict, height: int, width: int):
    """RoI g's bilinear samples, bin by bin: flat cells [P, Q, G, 4] of the H x W plane and
    their weights (0 for samples outside); the grid is rotated about the RoI's centre."""
    ph, pw, gh, gw = args["pooled_h"], args["pooled_w"], int(g[5]), int(g[6])
    yy = _sample_coordinates(g[9], g[3], gh, ph)[:, None, :, None]
    xx = _sample_coordinates(g[10], g[4], gw, pw)[None, :, None, :]
    cos, sin = g[7], g[8]
    x = (xx * cos + yy * sin + g[2]).reshape(ph, pw, gh * gw)
    y = (yy * cos - xx * sin + g[1]).reshape(ph, pw, gh * gw)
    valid_y, y0, y1, ly = _corners(y, height)
    valid_x, x0, x1, lx = _corners(x, width)
    cells = np.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1], axis=-1)
    weights = np.stack([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], axis=-1)
    return cells, weights * (valid_y & valid_x)[..., None]


@register_cpu("RoIAlignRotated", args=ALL_SCHEMA_ARGS)
def roi_align_rotated(x, rois, **args):
    order, pooled_h, pooled_w = args["order"], args["pooled_h"], args["pooled_w"]
    shape = roi_output_shape(args, x.shape, rois.shape, (5, 6))
    n, c, height, width = _nchw_dims(x.shape, order)
    planes = channels_first(x, order).reshape(n, c, height * width)
    y = np.zeros((shape[0], c, pooled_h, pooled_w), x.dtype)
    for r, g in enumerate(rotated_geometry(rois, n, args)):
        if g[5] * g[6] > 0 and height * width > 0:
            cells, weights = _rotated_samples(g, args, height, width)
            y[r] = (planes[int(g[0])][:, cells] * weights).sum(axis=(-2, -1)) / (g[5] * g[6])
    return channels_back(y, order)


gradient_op("RoIAlignRotated", "I0 I1 GO0")


@register_cpu("RoIAlignRotatedGradient", args=ALL_SCHEMA_ARGS)
def roi_align_rotated_gradient(x, rois, dy, **args):
    order = args["order"]
    check_gradient_shape(dy.shape, roi_output_shape(args, x.shape, rois.shape, (5, 6)))
    n, c, height, width = _nchw_dims(x.shape, order)
    dyc = channels_first(dy, order)
    dx = np.zeros((n, c, height * width), np.result_type(dy.dtype, np.float32))
    for r, g in enumerate(rotated_geometry(rois, n, args)):
        if g[5] * g[6] > 0 and height * width > 0:
            cells, weights = _rotated_samples(g, args, height, width)
            shares = dyc[r][:, :, :, None, None] * weights / (g[5] * g[6])  # [C, P, Q, G, 4]
            np.add.at(dx[int(g[0])], (slice(None), cells.ravel()), shares.reshape(c, -1))
    return channels_back(dx.reshape(n, c, height, width), order)


# -- RoIPool ------------------------------------------------------------------------------------

def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _bin_bounds(start: np.ndarray, length: np.ndarray, bins: int, size: int) -> np.ndarray:
    """int32 [R, bins, 2]: each bin's [start, end) cells, floor/ceil of the RoI's share, clipped."""
    bin_size = (length.astype(F32) / F32(bins))[:, None]
    p = np.arange(bins, dtype=F32)[None, :]
    lo = np.floor(p * bin_size).astype(np.float64) + start[:, None]
    hi = np.ceil((p + F32(1)) * bin_size).astype(np.float64) + start[:, None]
    return np.stack([np.clip(lo, 0, size), np.clip(hi, 0, size)], axis=-1).astype(np.int32)


def pool_geometry(rois: np.ndarray, images: int, height: int, width: int, args: dict):
    """(batch [R] int32, row bounds [R, pooled_h, 2], column bounds [R, pooled_w, 2])."""
    batch, boxes = _split_rois(rois, images, 4, "rois")
    corners = _round_half_away(boxes * F32(args["spatial_scale"])).astype(np.float64)
    start_w, start_h, end_w, end_h = corners.T
    roi_h = np.maximum(end_h - start_h + 1, 1)
    roi_w = np.maximum(end_w - start_w + 1, 1)
    return (batch.astype(np.int32), _bin_bounds(start_h, roi_h, args["pooled_h"], height),
            _bin_bounds(start_w, roi_w, args["pooled_w"], width))


def _pool_one(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, width: int):
    """Max and argmax (h * W + w, first in row-major order) of each bin of one RoI over [C, H, W]."""
    c = plane.shape[0]
    y = np.zeros((c, len(rows), len(cols)), plane.dtype)
    where = np.full(y.shape, -1, np.int32)
    for q, (w0, w1) in enumerate(cols):
        if w1 <= w0:
            continue
        strip = plane[:, :, w0:w1]
        col_max, col_arg = strip.max(axis=2), strip.argmax(axis=2) + w0  # per row: its max, first column
        for p, (h0, h1) in enumerate(rows):
            if h1 <= h0:
                continue
            best = col_max[:, h0:h1].argmax(axis=1)  # first row holding the bin's max
            y[:, p, q] = col_max[np.arange(c), h0 + best]
            where[:, p, q] = (h0 + best) * width + col_arg[np.arange(c), h0 + best]
    return y, where


@register_cpu("RoIPool", args=ALL_SCHEMA_ARGS)
def roi_pool(x, rois, **args):
    order, pooled_h, pooled_w = args["order"], args["pooled_h"], args["pooled_w"]
    shape = roi_output_shape(args, x.shape, rois.shape, (5,), "rois")
    n, c, height, width = _nchw_dims(x.shape, order)
    xc = channels_first(x, order)
    y = np.zeros((shape[0], c, pooled_h, pooled_w), x.dtype)
    argmaxes = np.full(y.shape, -1, np.int32)
    for r, (b, rows, cols) in enumerate(zip(*pool_geometry(rois, n, height, width, args))):
        y[r], argmaxes[r] = _pool_one(xc[b], rows, cols, width)
    return channels_back(y, order), channels_back(argmaxes, order)


@register_gradient("RoIPool")
def make_roi_pool_gradient(g) -> list:
    """RoIPoolGradient reads the forward op's argmaxes: a RoIPool without them cannot train."""
    if len(g.op.output) < 2:
        raise GradientError("RoIPool's gradient needs its argmaxes output: give the op a second output "
                            "(and is_test=0)")
    return [g.Op("RoIPoolGradient", [g.I(0), g.I(1), g.O(1), g.GO(0)], [g.GI(0)])]


def _check_argmaxes(argmaxes: np.ndarray, plane: int) -> None:
    bad = (argmaxes < -1) | (argmaxes >= plane)
    if bad.any():
        raise ShapeError(f"argmaxes holds {argmaxes.flat[int(np.flatnonzero(bad)[0])]} but must lie in "
                         f"[-1, {plane}) (a cell of X's H x W plane, or -1)")


@register_cpu("RoIPoolGradient", args=ALL_SCHEMA_ARGS)
def roi_pool_gradient(x, rois, argmaxes, dy, **args):
    order = args["order"]
    expected = roi_output_shape(args, x.shape, rois.shape, (5,), "rois")
    check_gradient_shape(dy.shape, expected)
    check_gradient_shape(argmaxes.shape, expected)
    n, c, height, width = _nchw_dims(x.shape, order)
    batch, _ = _split_rois(rois, n, 4, "rois")
    where = channels_first(argmaxes, order).astype(np.int64)
    _check_argmaxes(where, height * width)
    dyc = channels_first(dy, order)
    # flat index of each argmax in [N, C, H, W]
    flat = (batch[:, None, None, None] * c + np.arange(c)[None, :, None, None]) * (height * width) + where
    taken = where >= 0
    dx = np.bincount(flat[taken], weights=dyc[taken].astype(np.float64), minlength=n * c * height * width)
    return channels_back(dx.reshape(n, c, height, width).astype(np.result_type(dy.dtype, np.float32)), order)


# -- BatchPermutation ---------------------------------------------------------------------------

def _permutation_indices(x_shape, indices) -> np.ndarray:
    indices = np.asarray(indices)
    check_int_indices(indices.dtype.name)
    check_permutation_shapes(x_shape, indices.shape)
    check_indices_in_range(indices, x_shape[0])
    return indices.astype(np.int64)


@register_cpu("BatchPermutation")
def batch_permutation(x, indices):
    return x[_permutation_indices(x.shape, indices)]


gradient_op("BatchPermutation", "I1 GO0")


@register_cpu("BatchPermutationGradient")
def batch_permutation_gradient(indices, dy):
    rows = _permutation_indices(dy.shape, indices)
    dx = np.zeros_like(dy)
    np.add.at(dx, rows, dy)
    return dx


# -- CUDA launchers (detection_roi.cu) -------------------------------------------------------------

def _layout(x_shape, order: str) -> list:
    _, c, height, width = _nchw_dims(x_shape, order)
    return [np.int32(order == "NHWC"), np.int32(c), np.int32(height), np.int32(width)]


# RoIAlign and RoIAlignRotated share their launchers: (geometry function, RoI columns) per op.
_ALIGN = {"roi_align": (align_geometry, (4, 5)), "roi_align_rotated": (rotated_geometry, (5, 6))}


def _align_launch(kernel: str, source, target, geometry, x_shape, args, count: int) -> None:
    """One thread per pooled element (count: Y's size forward, dY's backward)."""
    cuda.launch("detection_roi.cu", kernel, count, source, cuda.as_gpu(geometry), target,
                *_layout(x_shape, args["order"]), np.int32(args["pooled_h"]), np.int32(args["pooled_w"]),
                np.int64(count))


def _align_forward_cuda(kernel: str, x, rois, args):
    geometry_of, columns = _ALIGN[kernel]
    (x,) = cuda.float32_inputs(x)
    y = cuda.empty(roi_output_shape(args, x.shape, rois.shape, columns))
    geometry = geometry_of(cuda.copy_to_cpu(rois), x.shape[0], args)
    if y.size:
        _align_launch(kernel, x, y, geometry, x.shape, args, y.size)
    return y


def _align_gradient_cuda(kernel: str, x, rois, dy, args):
    geometry_of, columns = _ALIGN[kernel]
    (dy,) = cuda.float32_inputs(dy)
    check_gradient_shape(dy.shape, roi_output_shape(args, x.shape, rois.shape, columns))
    geometry = geometry_of(cuda.copy_to_cpu(rois), x.shape[0], args)
    dx = _zeros(x.shape)
    if dy.size:
        _align_launch(kernel + "_gradient", dy, dx, geometry, x.shape, args, dy.size)
    return dx


@register_cuda("RoIAlign", args=ALL_SCHEMA_ARGS)
def roi_align_cuda(x, rois, **args):
    check_average_mode(args["mode"], "CUDA kernel")
    return _align_forward_cuda("roi_align", x, rois, args)


@register_cuda("RoIAlignGradient", args=ALL_SCHEMA_ARGS)
def roi_align_gradient_cuda(x, rois, dy, **args):
    return _align_gradient_cuda("roi_align", x, rois, dy, args)


@register_cuda("RoIAlignRotated", args=ALL_SCHEMA_ARGS)
def roi_align_rotated_cuda(x, rois, **args):
    return _align_forward_cuda("roi_align_rotated", x, rois, args)


@register_cuda("RoIAlignRotatedGradient", args=ALL_SCHEMA_ARGS)
def roi_align_rotated_gradient_cuda(x, rois, dy, **args):
    return _align_gradient_cuda("roi_align_rotated", x, rois, dy, args)


def _zeros(shape):
    out = cuda.empty(shape)
    cuda.launch("detection_roi.cu", "fill_zero", out.size, out, np.int64(out.size))
    return out


@register_cuda("RoIPool", args=ALL_SCHEMA_ARGS)
def roi_pool_cuda(x, rois, **args):
    order, pooled_h, pooled_w = args["order"], args["pooled_h"], args["pooled_w"]
    (x,) = cuda.float32_inputs(x)
    shape = roi_output_shape(args, x.shape, rois.shape, (5,), "rois")
    n, _, height, width = _nchw_dims(x.shape, order)
    batch, rows, cols = pool_geometry(cuda.copy_to_cpu(rois), n, height, width, args)
    y, argmaxes = cuda.empty(shape), cuda.empty(shape, np.int32)
    if y.size == 0:
        return y, argmaxes
    cuda.launch("detection_roi.cu", "roi_pool", y.size, x, cuda.as_gpu(batch), cuda.as_gpu(rows),
                cuda.as_gpu(cols), y, argmaxes, *_layout(x.shape, order), np.int32(pooled_h), np.int32(pooled_w),
                np.int64(y.size))
    return y, argmaxes


@register_cuda("RoIPoolGradient", args=ALL_SCHEMA_ARGS)
def roi_pool_gradient_cuda(x, rois, argmaxes, dy, **args):
    order, pooled_h, pooled_w = args["order"], args["pooled_h"], args["pooled_w"]
    (dy,) = cuda.float32_inputs(dy)
    expected = roi_output_shape(args, x.shape, rois.shape, (5,), "rois")
    check_gradient_shape(dy.shape, expected)
    check_gradient_shape(argmaxes.shape, expected)
    n, _, height, width = _nchw_dims(x.shape, order)
    where = cuda.copy_to_cpu(argmaxes)
    _check_argmaxes(where, height * width)
    batch, _ = _split_rois(cuda.copy_to_cpu(rois), n, 4, "rois")
    dx = _zeros(x.shape)
    if dy.size == 0:
        return dx
    cuda.launch("detection_roi.cu", "roi_pool_gradient", dy.size, dy, cuda.as_gpu(batch.astype(np.int32)),
                cuda.as_gpu(where.astype(np.int32)), dx, *_layout(x.shape, order), np.int32(pooled_h),
                np.int32(pooled_w), np.int64(dy.size))
    return dx


def _row_length(shape) -> int:
    return math.prod(shape[1:])


@register_cuda("BatchPermutation")
def batch_permutation_cuda(x, indices):
    (x,) = cuda.float32_inputs(x)
    rows = _permutation_indices(x.shape, cuda.copy_to_cpu(indices))
    y = cuda.empty(x.shape)
    if y.size == 0:
        return y
    cuda.launch("detection_roi.cu", "batch_permutation", y.size, x, cuda.as_gpu(rows.astype(np.int32)), y,
                np.int64(_row_length(x.shape)), np.int64(y.size))
    return y


@register_cuda("BatchPermutationGradient")
def batch_permutation_gradient_cuda(indices, dy):
    (dy,) = cuda.float32_inputs(dy)
    rows = _permutation_indices(dy.shape, cuda.copy_to_cpu(indices))
    dx = _zeros(dy.shape)
    if dx.size == 0:
        return dx
    cuda.launch("detection_roi.cu", "batch_permutation_gradient", dy.size, dy, cuda.as_gpu(rows.astype(np.int32)),
                dx, np.int64(_row_length(dy.shape)), np.int64(dy.size))
    return dx
