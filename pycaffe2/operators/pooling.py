"""Pooling and LRN kernels (NumPy): MaxPool and AveragePool over 1 to 3 (CPU: any
number of) spatial dims, LpPool (CPU only), LRN across channels, with their gradient ops.

Everything runs channels-first, as in conv.py (helpers shared in _conv_pool.py).
Pooling reduces strided slices of X one spatial axis at a time (a 3x3
window in 2 + 2 passes, not 8); max pooling's gradient compares each kernel offset's
slice with Y. LRN sums squares over neighbouring channels. The window and every shape
check come from the schema (inference.conv's `window`, inference.pooling's
checks), so kernels and checker agree. On CUDA (pooling.cu) pooling and LRN run
one thread per output element (gradients: per input element).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._conv_pool import (
    channels_back,
    channels_first,
    inner,
    offset_slices,
    padded,
    padded_shape,
    register_cuda_factory,
    register_factory,
    window_params,
)
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema.inference.conv import Window, channel_axis
from pycaffe2.schema.inference.pooling import (
    check_channels,
    check_lp_norm,
    check_one_shape,
    check_pooled,
    pooled,
)


@functools.lru_cache(maxsize=16)
def _lowest(dtype) -> float:
    """Padding for max pooling: it never wins (Caffe2 pads with the lowest value too)."""
    return np.finfo(dtype).min if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _whole(xc: np.ndarray, g: Window) -> bool:
    """True when the only window is all of X (global pooling without padding)."""
    return g.kernel == xc.shape[2:] and not any(g.head + g.tail)


def _along(a: np.ndarray, axis: int, offset: int, step: int, n: int) -> tuple:
    """The index of `n` cells of `a` along `axis`, from `offset` every `step`."""
    return (slice(None),) * axis + (slice(offset, offset + step * (n - 1) + 1, step),)


@functools.lru_cache(maxsize=256)
def _covered(size: int, k: int, s: int, d: int, h: int, n: int, any_order: bool) -> tuple:
    """The kernel offsets along one axis as (offset, first, last): outputs first..last-1 have
    that offset's cell inside X (the others read padding); offsets wholly in padding left
    out. `any_order` puts the offsets covering the most outputs first."""
    ranges = []
    for o in range(k):
        first = max(0, -((o * d - h) // s))  # ceil((h - o d) / s)
        last = min(n, (size - 1 - o * d + h) // s + 1)
        if last > first:
            ranges.append((o, first, last))
    if any_order:
        ranges.sort(key=lambda r: r[1] - r[2])
    return tuple(ranges)


def _reduce_axis(x: np.ndarray, axis: int, k, s, d, h, n, combine, fill) -> np.ndarray:
    """`x` reduced along `axis` over each window with `combine` as if padded with `fill`,
    without the padded copy: each kernel offset combines only the outputs whose cell is
    inside X. np.maximum takes the offsets covering every output first (it is order-free);
    np.add keeps the offsets' order, so sums match the padded ones bit for bit."""
    ranges = _covered(x.shape[axis], k, s, d, h, n, combine is np.maximum)
    lead = (slice(None),) * axis

    def cells(o, first, last):
        return x[_along(x, axis, o * d + s * first - h, s, last - first)]

    if ranges and ranges[0][1:] == (0, n):  # no padding in the first offset's outputs
        if len(ranges) > 1 and ranges[1][1:] == (0, n):
            y, rest = combine(cells(*ranges[0]), cells(*ranges[1])), ranges[2:]
        else:
            y, rest = cells(*ranges[0]).copy(), ranges[1:]
    else:
        y, rest = np.full(x.shape[:axis] + (n,) + x.shape[axis + 1:], fill, x.dtype), ranges[1:]
        if ranges:
            o, first, last = ranges[0]
            y[lead + (slice(first, last),)] = cells(o, first, last)
    for o, first, last in rest:
        part = y[lead + (slice(first, last),)]
        combine(part, cells(o, first, last), out=part)
    return y


CHUNK = 1 << 19  # cells of X per block past 1 << 22 cells: a block's passes stay in cache


def _separable(xc: np.ndarray, g: Window, combine, fill) -> np.ndarray:
    """Each window of channels-first X reduced with `combine` (np.maximum or np.add), padding
    read as `fill`, one spatial axis at a time: a 3x3 window costs 2 + 2 passes where one per
    offset costs 8. Big X goes in blocks of images and channels, so each block's
    intermediate stays in cache."""
    def reduce(block):
        y = block
        for axis, (size, k, s, d, h, n) in enumerate(zip(block.shape[2:], *g[:4], g.out), start=2):
            if (k, s, h, n) != (1, 1, 0, size):  # else this axis is already reduced
                y = _reduce_axis(y, axis, k, s, d, h, n, combine, fill)
        return y.copy() if y is block else y

    if xc.size <= 8 * CHUNK:
        return reduce(xc)
    n, c = xc.shape[:2]
    plane = math.prod(xc.shape[2:])
    step = max(1, CHUNK // plane)
    out = np.empty((n, c) + g.out, xc.dtype)
    for i in range(n):
        for j in range(0, c, step):
            out[i:i + 1, j:j + step] = reduce(xc[i:i + 1, j:j + step])
    return out


def _separable_spread(share: np.ndarray, shape, g: Window) -> np.ndarray:
    """dX of `shape` for window sums: each window's share added to all its cells, one
    axis at a time (the transpose of _separable with np.add)."""
    dx = share
    full = padded_shape(shape, g)
    for axis, (k, s, d, n) in reversed(list(enumerate(zip(g.kernel, g.stride, g.dilation, g.out), start=2))):
        spread = np.zeros(dx.shape[:axis] + (full[axis],) + dx.shape[axis + 1:], dx.dtype)
        for o in range(k):
            spread[_along(spread, axis, o * d, s, n)] += dx
        dx = spread
    return np.ascontiguousarray(dx[inner(shape, g)])


def window_sums(xc: np.ndarray, g: Window) -> np.ndarray:
    """The sum of each window of channels-first X (padding adds 0); exact for integers."""
    return _separable(xc, g, np.add, 0)


def _window_counts(xc: np.ndarray, g: Window, count_include_pad: bool):
    """How many cells each window averages, shaped to broadcast over [N, C, out...]."""
    if count_include_pad:  # windows never reach past the padded X, so every one is full
        return math.prod(g.kernel)
    counts = np.ones((), xc.dtype)
    for axis, (size, k, s, d, h, n) in enumerate(zip(xc.shape[2:], *g[:4], g.out)):
        cells = (np.arange(n) * s - h)[:, None] + np.arange(k) * d
        inside = ((cells >= 0) & (cells < size)).sum(axis=1)
        counts = counts * inside.reshape((-1,) + (1,) * (len(g.out) - axis - 1))
    return np.maximum(counts, 1).astype(xc.dtype)  # a window wholly in padding averages to 0


def _max_pool(xc: np.ndarray, g: Window) -> np.ndarray:
    if _whole(xc, g):
        return xc.max(axis=tuple(range(2, xc.ndim)), keepdims=True)
    return _separable(xc, g, np.maximum, _lowest(xc.dtype))


def _column_phases(a: np.ndarray, g: Window, value) -> list:
    """Channels-first `a` padded and split by column (last spatial axis) modulo the stride s:
    phase r holds padded columns r, r + s, r + 2s, ... contiguously. Each kernel offset then
    reads (or adds to) whole runs of one phase instead of every s-th element of a row,
    which NumPy does 4-7x slower."""
    s, head, size = g.stride[-1], g.head[-1], a.shape[-1]
    rows = tuple(slice(h, h + n) for h, n in zip(g.head[:-1], a.shape[2:-1]))
    width = -(-(head + size + g.tail[-1]) // s)
    shape = a.shape[:2] + tuple(h + n + t for h, n, t in zip(g.head[:-1], a.shape[2:-1], g.tail[:-1])) + (width,)
    phases = []
    for r in range(s):
        phase = np.full(shape, value, a.dtype)
        first = (r - head) % s  # the first column of `a` in phase r
        cells = range(first, size, s)
        at = (first + head) // s
        phase[(slice(None), slice(None)) + rows + (slice(at, at + len(cells)),)] = a[..., first::s]
        phases.append(phase)
    return phases


def _from_column_phases(phases: list, shape, g: Window) -> np.ndarray:
    """`shape`d array from _column_phases' layout (the inverse, less the padding)."""
    s, head, size = g.stride[-1], g.head[-1], shape[-1]
    rows = tuple(slice(h, h + n) for h, n in zip(g.head[:-1], shape[2:-1]))
    out = np.empty(shape, phases[0].dtype)
    for r, phase in enumerate(phases):
        first = (r - head) % s
        at = (first + head) // s
        out[..., first::s] = phase[(slice(None), slice(None)) + rows + (slice(at, at + len(range(first, size, s))),)]
    return out


def _phase_cells(g: Window, offset) -> tuple:
    """(phase, index) of the cells kernel offset `offset` reads in _column_phases' layout."""
    *lead, last = offset
    p = last * g.dilation[-1]
    index = (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(lead, g.dilation, g.stride, g.out)) + (
        slice(p // g.stride[-1], p // g.stride[-1] + g.out[-1]),)
    return p % g.stride[-1], index


PHASED_SIZE = 1 << 20  # from this many cells of X, strided max gradients work in column phases


def _max_pool_gradient(xc, yc, dyc, g: Window) -> np.ndarray:
    """Every cell equal to its window's max gets the window's dY (ties all do, as in
    Caffe2), summed over the windows holding it: per kernel offset, one compare into a
    bool mask, dY times the mask into a buffer, one add into dX (padded)."""
    dtype = dyc.dtype
    if _whole(xc, g):
        dx = np.equal(xc, yc).astype(dtype)
        dx *= dyc
        return dx
    phased = g.stride[-1] > 1 and xc.size >= PHASED_SIZE
    if phased:  # measured: faster on a ResNet stem, slower on LeNet's small maps
        sources, cells = _column_phases(xc, g, _lowest(xc.dtype)), _phase_cells
    else:
        sources, cells = [padded(xc, g, _lowest(xc.dtype))], lambda g, offset: (0, offset_slices(g, offset))
    grads = [np.zeros(source.shape, dtype) for source in sources]
    mask, share = np.empty(yc.shape, bool), np.empty(yc.shape, dtype)
    for offset in np.ndindex(*g.kernel):
        phase, index = cells(g, offset)
        np.equal(sources[phase][index], yc, out=mask)
        np.multiply(dyc, mask, out=share)
        grads[phase][index] += share
    if phased:
        return _from_column_phases(grads, xc.shape, g)
    return np.ascontiguousarray(grads[0][inner(xc.shape, g)])


def _average_pool(xc: np.ndarray, g: Window, count_include_pad: bool) -> np.ndarray:
    if _whole(xc, g):
        return xc.mean(axis=tuple(range(2, xc.ndim)), keepdims=True, dtype=xc.dtype)
    y = window_sums(xc, g)
    y /= _window_counts(xc, g, count_include_pad)
    return y


def _average_pool_gradient(xc, dyc, g: Window, count_include_pad: bool) -> np.ndarray:
    share = dyc / _window_counts(xc, g, count_include_pad)
    if _whole(xc, g):
        return np.broadcast_to(share, xc.shape).copy()
    return _separable_spread(share, xc.shape, g)


def _pool_inputs(args: dict, x, y, dy):
    """Channels-first X, Y, dY and the window, checking that Y and dY have the pooled shape."""
    g, expected = pooled(args, x.shape)
    check_pooled(x.shape, expected, Y=y.shape, dY=dy.shape)
    order = args["order"]
    return channels_first(x, order), channels_first(y, order), channels_first(dy, order), g


def _windows(args: dict):
    """pooled(args, shape), remembered per shape of X: args are fixed once the net is created,
    and resolving the window costs more than pooling LeNet's maps."""
    return functools.lru_cache(maxsize=8)(lambda shape: pooled(args, shape))


@register_factory("MaxPool")
def max_pool(**args):
    window_of = _windows(args)

    def run(x):
        g, _ = window_of(x.shape)
        return channels_back(_max_pool(channels_first(x, args["order"]), g), args["order"])
    return run


gradient_op("MaxPool", "I0 O0 GO0")


@register_factory("MaxPoolGradient")
def max_pool_gradient(**args):
    def run(x, y, dy):
        xc, yc, dyc, g = _pool_inputs(args, x, y, dy)
        return channels_back(_max_pool_gradient(xc, yc, dyc, g), args["order"])
    return run


@register_factory("AveragePool")
def average_pool(**args):
    window_of = _windows(args)

    def run(x):
        g, _ = window_of(x.shape)
        y = _average_pool(channels_first(x, args["order"]), g, args["count_include_pad"])
        return channels_back(y, args["order"])
    return run


gradient_op("AveragePool", "I0 O0 GO0")


@register_factory("AveragePoolGradient")
def average_pool_gradient(**args):
    def run(x, y, dy):
        xc, _, dyc, g = _pool_inputs(args, x, y, dy)
        dx = _average_pool_gradient(xc, dyc, g, args["count_include_pad"])
        return channels_back(dx.astype(dy.dtype, copy=False), args["order"])
    return run


def _lp_pool(xc: np.ndarray, g: Window, p: float) -> np.ndarray:
    """(sum of |X|^p over each window)^(1/p); padding adds 0, as Caffe2 clips windows to X."""
    powered = np.abs(xc) ** p
    if _whole(xc, g):
        total = powered.sum(axis=tuple(range(2, xc.ndim)), keepdims=True)
    else:
        total = window_sums(powered, g)
    return (total ** (1.0 / p)).astype(xc.dtype, copy=False)


@register_factory("LpPool")
def lp_pool(**args):
    check_lp_norm(args["p"])  # args are fixed once the net is created: checked once
    window_of = _windows(args)

    def run(x):
        g, _ = window_of(x.shape)
        return channels_back(_lp_pool(channels_first(x, args["order"]), g, args["p"]), args["order"])
    return run


gradient_op("LpPool", "I0 O0 GO0")


@register_factory("LpPoolGradient")
def lp_pool_gradient(**args):
    p = args["p"]
    check_lp_norm(p)

    def run(x, y, dy):
        xc, yc, dyc, g = _pool_inputs(args, x, y, dy)
        # d|x|_p / dx_j = sign(x_j) |x_j|^(p-1) / Y^(p-1): a per-window factor spread over its cells
        # times a per-cell one. A window of zeros (Y = 0) passes no gradient, where Caffe2 gives NaN.
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(yc > 0, dyc / yc ** (p - 1), 0)
        if _whole(xc, g):
            spread = np.broadcast_to(share, xc.shape)
        else:
            spread = _separable_spread(share, xc.shape, g)
        dx = spread * np.sign(xc) * np.abs(xc) ** (p - 1)
        return channels_back(dx.astype(dy.dtype, copy=False), args["order"])
    return run


def _channel_sums(v: np.ndarray, size: int, lead: int) -> np.ndarray:
    """Per channel c, the sum of v over channels c - lead ... c - lead + size - 1 (zero past the ends)."""
    c = v.shape[1]
    extended = np.zeros((v.shape[0], c + size - 1) + v.shape[2:], v.dtype)
    extended[:, lead:lead + c] = v
    total = extended[:, :c].copy()
    for i in range(1, size):
        total += extended[:, i:i + c]
    return total


def _lrn_scale(xc: np.ndarray, size: int, alpha: float, bias: float) -> np.ndarray:
    return bias + (alpha / size) * _channel_sums(xc * xc, size, (size - 1) // 2)


@register_cpu("LRN")
def lrn(x, *, size, alpha, beta, bias, order):
    check_channels(x.shape)
    xc = channels_first(x, order)
    scale = _lrn_scale(xc, size, alpha, bias)
    return channels_back(xc * scale ** -beta, order), channels_back(scale, order)


gradient_op("LRN", "I0 O0 GO0")


@register_cpu("LRNGradient")
def lrn_gradient(x, y, dy, *, size, alpha, beta, bias, order):
    check_one_shape(x.shape, y.shape, dy.shape)
    check_channels(x.shape)
    xc, yc, dyc = (channels_first(a, order) for a in (x, y, dy))
    scale = _lrn_scale(xc, size, alpha, bias)
    # X_c feeds the scale of every channel whose window holds c: those from c - (size - 1 - pre) to c + pre.
    feedback = _channel_sums(dyc * yc / scale, size, size - 1 - (size - 1) // 2)
    dx = dyc * scale ** -beta - (2 * alpha * beta / size) * xc * feedback
    return channels_back(dx.astype(dy.dtype, copy=False), order)


# CUDA launchers (pooling.cu): pooling over 1 to 3 spatial dims, and LRN. The host resolves
# the window with the schema's `window` and passes it as ints (conv_pool.cuh's POOL_PARAMS).

def _pool_params(args: dict, x) -> tuple[tuple, list]:
    """(Y's shape, the ints of POOL_PARAMS) for pooling X."""
    g, shape = pooled(args, x.shape)
    return shape, window_params(x.shape, args["order"], g)


def _average_extra(op_type: str, args: dict) -> list:
    return [np.int32(bool(args["count_include_pad"]))] if op_type.startswith("Average") else []


def _cuda_pool(op_type: str, kernel: str):
    def factory(**args):
        def run(x):
            (x,) = cuda.float32_inputs(x)
            shape, params = _pool_params(args, x)
            y = cuda.empty(shape)
            cuda.launch("pooling.cu", kernel, y.size, x, y, *params,
                        *_average_extra(op_type, args), np.int64(y.size))
            return y
        return run
    factory.__name__ = f"{kernel}_cuda"
    return factory


def _cuda_pool_gradient(op_type: str, kernel: str):
    """One thread per cell of X, looping over the windows that hold it."""
    def factory(**args):
        def run(x, y, dy):
            x, y, dy = cuda.float32_inputs(x, y, dy)
            expected, params = _pool_params(args, x)
            check_pooled(x.shape, expected, Y=y.shape, dY=dy.shape)
            dx = cuda.empty_like(x)
            arrays = [x, y, dy] if kernel == "max_pool_gradient" else [dy]
            cuda.launch("pooling.cu", kernel, dx.size, *arrays, dx, *params,
                        *_average_extra(op_type, args), np.int64(dx.size))
            return dx
        return run
    factory.__name__ = f"{kernel}_cuda"
    return factory


for _type, _kernel in (("MaxPool", "max_pool"), ("AveragePool", "average_pool")):
    register_cuda_factory(_type)(_cuda_pool(_type, _kernel))
    register_cuda_factory(f"{_type}Gradient")(_cuda_pool_gradient(f"{_type}Gradient", f"{_kernel}_gradient"))


def _lrn_layout(x, order: str) -> list:
    """[C, distance between neighbouring channels] of X as the LRN kernels take them."""
    check_channels(x.shape)
    axis = channel_axis(len(x.shape), order)
    return [np.int32(x.shape[axis]), np.int64(math.prod(x.shape[axis + 1:]))]


@register_cuda("LRN")
def lrn_cuda(x, *, size, alpha, beta, bias, order):
    (x,) = cuda.float32_inputs(x)
    layout = _lrn_layout(x, order)
    y, scale = cuda.empty_like(x), cuda.empty_like(x)
    cuda.launch("pooling.cu", "lrn", x.size, x, y, scale, *layout, np.int32(size),
                np.int32((size - 1) // 2), np.float32(alpha / size), np.float32(bias), np.float32(-beta),
                np.int64(x.size))
    return y, scale


@register_cuda("LRNGradient")
def lrn_gradient_cuda(x, y, dy, *, size, alpha, beta, bias, order):
    x, y, dy = cuda.float32_inputs(x, y, dy)
    check_one_shape(x.shape, y.shape, dy.shape)
    layout = _lrn_layout(x, order)
    scale, dx = cuda.empty_like(x), cuda.empty_like(x)
    cuda.launch("pooling.cu", "lrn_scale", x.size, x, scale, *layout, np.int32(size),
                np.int32((size - 1) // 2), np.float32(alpha / size), np.float32(bias), np.int64(x.size))
    cuda.launch("pooling.cu", "lrn_gradient", x.size, x, y, dy, scale,
                dx, *layout, np.int32(size), np.int32(size - 1 - (size - 1) // 2),
                np.float32(-beta), np.float32(2 * alpha * beta / size), np.int64(x.size))
    return dx
