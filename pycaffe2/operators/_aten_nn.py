"""The ATen op's nn functions (softmax, layer_norm, embedding and embedding_bag,
grid_sampler, upsample_nearest2d / upsample_bilinear2d, adaptive_avg_pool2d,
constant_pad_nd), its casts and fills, and erf: KERNELS maps a form's name to
its NumPy function; `aten` registers its own forms into the same table. The arithmetic
follows ATen's CPU kernels (the source-pixel formulas of UpSample.h and
GridSampler.h).
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators._indices import check_in_range

KERNELS: dict = {}


def kernel(*keys: str):
    def register(function):
        for key in keys:
            KERNELS[key] = function
        return function
    return register


def erf(x):
    """erf to about 1e-7: a series near 0, Numerical Recipes' erfc fit elsewhere."""
    x = np.asarray(x)
    a = np.abs(x)
    t = 1 / (1 + 0.5 * a)
    poly = (-1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    tail = 1 - t * np.exp(-a * a + poly)
    small = np.minimum(a, 0.5)
    series, term = np.zeros_like(small), small.copy()
    for n in range(12):  # x * sum (-x^2)^n / (n! (2n + 1)); |x| <= 0.5 converges in a dozen terms
        series = series + term / (2 * n + 1)
        term = term * -(small * small) / (n + 1)
    near = 2 / math.sqrt(math.pi) * series
    return np.sign(x) * np.where(a < 0.5, near, tail).astype(x.dtype)


# -- softmax and layer_norm -------------------------------------------------------------------------
@kernel("softmax")
def softmax(x, *, dim):
    shifted = x - np.max(x, axis=dim, keepdims=True, initial=-np.inf)  # initial: empty is fine
    e = np.exp(shifted)
    return e / np.sum(e, axis=dim, keepdims=True)


@kernel("log_softmax")
def log_softmax(x, *, dim):
    shifted = x - np.max(x, axis=dim, keepdims=True, initial=-np.inf)  # initial: empty is fine
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


@kernel("layer_norm", "layer_norm.affine")
def layer_norm(x, weight=None, bias=None, *, normalized_shape, eps, cudnn_enable):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(np.var(x, axis=axes, keepdims=True) + eps)
    return y if weight is None else y * weight + bias


# -- embeddings -------------------------------------------------------------------------------------
def _rows(indices, count: int) -> np.ndarray:
    rows = indices.astype(np.int64)
    check_in_range(rows, count, span=f"for a weight of {count} rows")
    return rows


@kernel("embedding")
def embedding(weight, indices, *, padding_idx, scale_grad_by_freq, sparse):
    return weight[_rows(indices, weight.shape[0])]


def _bags(indices, offsets, include_last_offset: bool) -> tuple[np.ndarray, np.ndarray]:
    """(each index's bag, each bag's [start, end) pair) from offsets, checked."""
    n, starts = indices.shape[0], offsets.astype(np.int64)
    if starts.size and (starts[0] != 0 or np.any(np.diff(starts) < 0) or starts[-1] > n):
        raise ValueError(f"offsets must start at 0 and rise to at most {n} (the number of indices), "
                         f"got {starts.tolist()[:8]}")
    ends = np.append(starts[1:], n)
    if include_last_offset:
        starts, ends = starts[:-1], starts[1:]
    bag = np.searchsorted(starts, np.arange(n), side="right") - 1 if starts.size else np.zeros(n, np.int64)
    return bag, np.stack([starts, ends], axis=1)


@kernel("embedding_bag", "embedding_bag.weighted")
def embedding_bag(weight, indices, offsets, per_sample_weights=None, *, scale_grad_by_freq, mode, sparse,
                  include_last_offset, padding_idx):
    rows = _rows(indices, weight.shape[0])
    bag, spans = _bags(indices, offsets, include_last_offset)
    count, dim = spans.shape[0], weight.shape[1]
    used = (rows != padding_idx) if padding_idx >= 0 else np.ones(rows.shape, bool)
    used &= (bag >= 0) & (bag < count)  # indices past the last offset belong to no bag
    bag_size = np.bincount(bag[used], minlength=count)[:count].astype(np.int64)
    out, max_indices = np.zeros((count, dim), weight.dtype), np.zeros((count, dim), np.int64)
    picked = weight[rows[used]]
    if per_sample_weights is not None:
        picked = picked * per_sample_weights[used][:, None]
    if mode in (0, 1):
        np.add.at(out, bag[used], picked)
        if mode == 1:
            out = out / np.maximum(bag_size, 1)[:, None]
    else:
        for b in range(count):  # one bag at a time: the count is the net's batch of bags
            mine = used & (bag == b)
            if mine.any():
                candidates = weight[rows[mine]]
                out[b] = candidates.max(axis=0)
                max_indices[b] = rows[mine][candidates.argmax(axis=0)]
    return out, bag.astype(np.int64), bag_size, max_indices


# -- grid_sampler -----------------------------------------------------------------------------------
def _unnormalize(coord, size: int, align_corners: bool):
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, twice_low: int, twice_high: int):
    if twice_low == twice_high:
        return np.zeros_like(coord)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    coord = np.abs(coord - low)
    extra, flips = np.fmod(coord, span), np.floor(coord / span)
    return np.where(flips % 2 == 0, extra + low, span - extra + low)


def _source(coord, size: int, padding_mode: int, align_corners: bool):
    coord = _unnormalize(coord, size, align_corners)
    if padding_mode == 2:  # reflection, then clipped like border
        coord = _reflect(coord, 0, 2 * (size - 1)) if align_corners else _reflect(coord, -1, 2 * size - 1)
    if padding_mode in (1, 2):
        coord = np.clip(coord, 0, size - 1)
    return coord


def _taps(x, ys, xs):
    """x[n, :, ys, xs] as [N, Ho, Wo, C], zero where (ys, xs) is outside the image."""
    n, _, height, width = x.shape
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    batch = np.arange(n).reshape(n, 1, 1)
    picked = x[batch, :, np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)]
    return picked * inside[..., None]


@kernel("grid_sampler")
def grid_sampler(x, grid, *, interpolation_mode, padding_mode, align_corners):
    grid = grid.astype(x.dtype, copy=False)
    ix = _source(grid[..., 0], x.shape[3], padding_mode, align_corners)
    iy = _source(grid[..., 1], x.shape[2], padding_mode, align_corners)
    if interpolation_mode == 1:  # nearest: round half to even, as nearbyint does
        out = _taps(x, np.rint(iy).astype(np.int64), np.rint(ix).astype(np.int64))
    else:
        x0, y0 = np.floor(ix), np.floor(iy)
        wx, wy = (ix - x0)[..., None], (iy - y0)[..., None]
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        out = (_taps(x, y0, x0) * (1 - wx) * (1 - wy) + _taps(x, y0, x0 + 1) * wx * (1 - wy)
               + _taps(x, y0 + 1, x0) * (1 - wx) * wy + _taps(x, y0 + 1, x0 + 1) * wx * wy)
    return np.moveaxis(out, -1, 1).astype(x.dtype)


# -- upsampling and pooling -------------------------------------------------------------------------
def _scale(size_in: int, size_out: int, align_corners: bool, scale) -> float:
    """ATen's area_pixel_compute_scale."""
    if align_corners:
        return (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    return 1 / scale if scale is not None and scale > 0 else size_in / size_out


def _nearest(size_in: int, size_out: int, scale) -> np.ndarray:
    """ATen's nearest_idx: the same size and twice the size ignore `scale`; otherwise
    floor(index * scale) in float32, as ATen computes it."""
    out = np.arange(size_out)
    if size_out in (size_in, 2 * size_in):
        return out * size_in // size_out
    step = np.float32(1 / scale) if scale is not None and scale > 0 else np.float32(size_in) / np.float32(size_out)
    return np.minimum(np.floor(out.astype(np.float32) * step).astype(np.int64), size_in - 1)


@kernel("upsample_nearest2d")
def upsample_nearest2d(x, *, output_size, scales_h, scales_w):
    rows = _nearest(x.shape[2], output_size[0], scales_h)
    cols = _nearest(x.shape[3], output_size[1], scales_w)
    return x[:, :, rows][:, :, :, cols]


@kernel("upsample_nearest2d.scale_factor")
def upsample_nearest2d_by(x, *, scale_factor):
    return np.repeat(np.repeat(x, scale_factor, axis=2), scale_factor, axis=3)


def _linear(size_in: int, size_out: int, align_corners: bool, scale):
    """(lower source index, upper source index, weight of the upper) per output index."""
    step = _scale(size_in, size_out, align_corners, scale)
    out = np.arange(size_out)
    source = out * step if align_corners else np.maximum(step * (out + 0.5) - 0.5, 0)
    low = np.minimum(source.astype(np.int64), size_in - 1)
    high = low + (low < size_in - 1)
    return low, high, source - low


@kernel("upsample_bilinear2d")
def upsample_bilinear2d(x, *, output_size, align_corners, scales_h, scales_w):
    h0, h1, wh = _linear(x.shape[2], output_size[0], align_corners, scales_h)
    w0, w1, ww = _linear(x.shape[3], output_size[1], align_corners, scales_w)
    wh, ww = wh.reshape(-1, 1).astype(x.dtype), ww.astype(x.dtype)
    top = x[:, :, h0][..., w0] * (1 - ww) + x[:, :, h0][..., w1] * ww
    bottom = x[:, :, h1][..., w0] * (1 - ww) + x[:, :, h1][..., w1] * ww
    return top * (1 - wh) + bottom * wh


@kernel("adaptive_avg_pool2d")
def adaptive_avg_pool2d(x, *, output_size):
    height, width = x.shape[-2:]
    h_start, h_end = _windows(height, output_size[0])
    w_start, w_end = _windows(width, output_size[1])
    # sums of each window from the summed-area table
    table = np.zeros(x.shape[:-2] + (height + 1, width + 1), np.float64)
    table[..., 1:, 1:] = np.cumsum(np.cumsum(x, axis=-2, dtype=np.float64), axis=-1)
    hs, he, ws, we = h_start[:, None], h_end[:, None], w_start[None, :], w_end[None, :]
    sums = table[..., he, we] - table[..., hs, we] - table[..., he, ws] + table[..., hs, ws]
    return (sums / ((he - hs) * (we - ws))).astype(x.dtype)


def _windows(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.arange(size_out)
    return (out * size_in) // size_out, -((-(out + 1) * size_in) // size_out)


@kernel("constant_pad_nd")
def constant_pad_nd(x, *, pad, value):
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    crop = tuple(slice(max(-before, 0), x.shape[d] - max(-after, 0)) for d, (before, after) in enumerate(widths))
    grow = [(max(before, 0), max(after, 0)) for before, after in widths]
    return np.pad(x[crop], grow, constant_values=np.asarray(value).astype(x.dtype))


# -- casts and fills (the op gives the result its dtype) ------------------------------------------
KERNELS.update({
    "type_as": lambda x, other: x.copy(),
    "_cast": lambda x, *, non_blocking: x.copy(),
    "to": lambda x, *, dtype, non_blocking, copy: x.copy(),
    "ones": lambda *, size, type: np.ones(size),
    "zeros": lambda *, size, type: np.zeros(size),
})
