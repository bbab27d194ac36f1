"""The CPU convolution algorithms behind conv.py's kernels (not a family: load_kernels
skips it), on channels-first arrays: `correlate` (Conv), `input_gradient` (Conv's dX,
and ConvTranspose) and `filter_gradient` (dfilter), each choosing per shape:

- im2col + GEMM, a few images at a time: the columns of one slice stay in cache
  between the copy and the product (ResNet's 3x3 block 8x64x56x56: 20 ms vs 25 ms
  with all images at once) and bound the memory (COLUMNS_LIMIT);
- a pointwise window (1x1, stride 1, no pad) reads X as its own columns;
- Winograd F(4x4, 3x3) for float32 3x3 stride-1 windows with many channels and
  enough 4x4 tiles of Y to pay for the filter's transform: 4x fewer
  multiplies in the GEMMs, the tile transforms as small GEMMs too (1.4x faster than
  im2col on ResNet's 3x3 block, 1.75x on 32x256x14x14);
- depthwise (one input and one output channel per group): a multiply-add per kernel
  offset, on shifted rows of a flattened padded image at stride 1 (no columns);
- dX at stride 1 as the Conv of dY with the flipped filter (so it gets the same
  choices, and no col2im adds); otherwise col2im, the columns' adjoint, slice by slice.

Timings: benchmarks/conv_vs_torch.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pycaffe2.operators._conv_pool import inner, offset_slices, padded, padded_shape, windows
from pycaffe2.schema.inference.conv import Window

# im2col copies each input cell prod(kernel) times; a slice of the batch keeps its
# columns under this many elements (4 MiB of float32), or one image at a time.
COLUMNS_LIMIT = 1 << 20


def _batch_slices(n: int, per_image: int) -> list[slice]:
    step = max(1, COLUMNS_LIMIT // max(1, per_image))
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


def _columns(x: np.ndarray, g: Window, group: int) -> np.ndarray:
    """im2col: [group, C/group * prod(kernel), N * prod(out)] from X [N, C, spatial...]."""
    nd = len(g.kernel)
    spatial = tuple(range(2, 2 + nd))
    view = windows(x, g)  # [N, C, out..., kernel...]
    view = view.transpose((1, *range(2 + nd, 2 + 2 * nd), 0, *spatial))  # [C, kernel..., N, out...]
    rows = x.shape[1] // group * math.prod(g.kernel)  # explicit: -1 is ambiguous for an empty batch
    return np.ascontiguousarray(view).reshape(group, rows, x.shape[0] * math.prod(g.out))


def _col2im(columns: np.ndarray, shape, g: Window) -> np.ndarray:
    """The adjoint of _columns: [N, C, spatial...] of `shape` (a view), each cell the sum of
    the column entries that read it."""
    n, c = shape[:2]
    out = np.zeros((c, n) + padded_shape(shape, g)[2:], columns.dtype)
    columns = columns.reshape((c,) + g.kernel + (n,) + g.out)
    for offset in np.ndindex(*g.kernel):
        out[offset_slices(g, offset)] += columns[(slice(None),) + offset]
    return np.moveaxis(out[inner(shape, g)], 0, 1)


def _channel_major(a: np.ndarray, group: int) -> np.ndarray:
    """[N, C, spatial...] as [group, C/group, N * prod(spatial)] (one copy)."""
    positions = a.shape[0] * math.prod(a.shape[2:])
    return np.ascontiguousarray(np.moveaxis(a, 1, 0)).reshape(group, a.shape[1] // group, positions)


def _pointwise(g: Window) -> bool:
    """A 1x1 window at stride 1 without padding: X is its own columns."""
    return all(k == 1 and s == 1 for k, s in zip(g.kernel, g.stride)) and not any(g.head + g.tail)


def _is_depthwise(channels: int, m: int, group: int) -> bool:
    return group > 1 and group == channels == m


def _image_columns(x, g: Window, group: int) -> np.ndarray:
    """[N, group, C/group * prod(kernel), prod(out)]: each image's columns, as matrices
    BLAS takes in place (a view of X for a pointwise window)."""
    n, c = x.shape[:2]
    if _pointwise(g):
        return x.reshape(n, group, c // group, -1)
    columns = _columns(x, g, group)
    return columns.reshape(columns.shape[:2] + (n, -1)).transpose(2, 0, 1, 3)


def correlate(x, w, g: Window, group: int, bias=None) -> np.ndarray:
    """Conv of channels-first X with filter [M, C/group, kernel...]: [N, M, out...].
    The columns are read image by image, so Y comes out in NCHW without a transpose."""
    n, m, positions = x.shape[0], w.shape[0], math.prod(g.out)
    if _is_depthwise(x.shape[1], m, group):
        y = _depthwise_correlate(x, w, g)
    elif _winograd_fits(x, w, m, g, group):
        y = _winograd(x, w, g, group)
    else:
        y = np.empty((n, m) + g.out, np.result_type(x, w))
        weights = w.reshape(group, m // group, -1)
        for part in _batch_slices(n, x.shape[1] * math.prod(g.kernel) * positions):
            columns = _image_columns(x[part], g, group)
            np.matmul(weights, columns, out=y[part].reshape(columns.shape[0], group, m // group, positions))
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * len(g.out))
    return y


def filter_gradient(x, dy, g: Window, group: int, w_shape) -> np.ndarray:
    """d(filter) of a Conv from its input X and its output gradient dY (channels-first):
    per image dY's channels times the columns, summed."""
    if _is_depthwise(x.shape[1], w_shape[0], group):
        return _depthwise_filter_gradient(x, dy, g).reshape(w_shape)
    if _winograd_fits(x, dy, dy.shape[1], g, group):
        return _winograd_filter_gradient(x, dy, g, group)
    n, m = dy.shape[:2]
    dw = np.zeros((group, m // group, x.shape[1] // group * math.prod(g.kernel)), np.result_type(x, dy))
    for part in _batch_slices(n, x.shape[1] * math.prod(g.kernel) * math.prod(g.out)):
        images = dy[part].reshape(-1, group, m // group, math.prod(g.out))
        dw += np.matmul(images, _image_columns(x[part], g, group).swapaxes(-1, -2)).sum(axis=0)
    return dw.reshape(w_shape)


def input_gradient(dy, w, g: Window, group: int, x_shape) -> np.ndarray:
    """d(X) of a Conv from its output gradient dY and filter [M, C/group, kernel...] (a view).
    At stride 1 the flipped Conv, unless M is so much larger than C that the columns of
    dY would outgrow col2im's (LeNet's first conv: C 1, M 20)."""
    m, c = w.shape[0], x_shape[1]
    if all(s == 1 for s in g.stride) and (m <= 2 * c or _pointwise(g) or _is_depthwise(c, m, group)):
        return correlate(*_flipped_conv(dy, w, g, group, x_shape[2:]), group)
    weights = w.reshape(group, m // group, -1).swapaxes(-1, -2)
    dx = np.empty(x_shape, np.result_type(dy, w))
    for part in _batch_slices(x_shape[0], c * math.prod(g.kernel) * math.prod(g.out)):
        columns = np.matmul(weights, _channel_major(dy[part], group))
        dx[part] = _col2im(columns, dx[part].shape, g)
    return dx


def _flipped_conv(dy, w, g: Window, group: int, spatial):
    """(dY, filter, window) of the stride-1 Conv whose output is d(X): dY padded so each
    X position sees every output that read it, the filter flipped with its channel axes
    swapped within each group. A pad wider than the kernel's reach crops dY instead."""
    m, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    flipped = w.reshape((group, m // group, cg) + kernel).swapaxes(1, 2)
    flipped = np.ascontiguousarray(flipped[(Ellipsis,) + (slice(None, None, -1),) * len(kernel)])
    head = [e - 1 - h for e, h in zip(g.dilated, g.head)]
    tail = [s + e - 1 - o - h for s, e, o, h in zip(spatial, g.dilated, g.out, head)]
    crop = tuple(slice(max(0, -h), o - max(0, -t)) for h, t, o in zip(head, tail, g.out))
    dy = dy[(slice(None), slice(None)) + crop]
    head, tail = tuple(max(0, h) for h in head), tuple(max(0, t) for t in tail)
    window = Window(g.kernel, g.stride, g.dilation, head, tail, tuple(spatial))
    return dy, flipped.reshape((group * cg, m // group) + kernel), window


# Winograd F(4x4, 3x3) (Lavin and Gray, 2015): each 6x6 tile d of padded X gives a 4x4
# tile of Y as A^T [(G g G^T) * (B^T d B)] A, 36 products per channel pair where im2col
# spends 144. The 2-D transforms are Kronecker products of the 1-D ones, applied as
# GEMMs; the per-element products summed over channels are 36 GEMMs. Float32 only:
# its rounding error is ~10x im2col's (relative ~1e-5), and float64 or integer sums
# (Int8Conv) keep the exact path.
_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
_KB, _KG, _KA = (np.kron(a, a).astype(np.float32) for a in (_BT, _G, _AT))
# Below this many channels per group (in and out) im2col is as fast (measured: 32 per
# group ties, 64 is 1.4x faster with Winograd; 32 mixed again on SqueezeNet's layers).
WINOGRAD_CHANNELS = 64
# Winograd transforms the filter (or, for dfilter, its gradient) on every call and its
# 36 GEMMs are thin with few tiles, so it also needs this many 4x4 tiles of Y in the
# batch (ResNet-50's 512x7x7 at batch 1, 4 tiles: the Conv 4-5x slower than im2col,
# its gradient 1.3x; 256x14x14, 16 tiles: a tie with OpenBLAS's Haswell kernels, 2x
# slower with its SkylakeX ones; the whole ResNet-50 at batch 1 went from 2.8x ONNX
# Runtime's time to 2.4x, SkylakeX 1.55x).
WINOGRAD_TILES = 32


def _winograd_fits(x, other, m: int, g: Window, group: int) -> bool:
    """Whether Winograd takes the Conv of X with M output channels (`other`: the filter,
    or dY for dfilter)."""
    return (x.dtype == other.dtype == np.float32 and g.kernel == (3, 3) and g.stride == (1, 1)
            and g.dilation == (1, 1) and min(x.shape[1], m) // group >= WINOGRAD_CHANNELS
            and x.shape[0] * math.prod(-(-o // 4) for o in g.out) >= WINOGRAD_TILES)


def _winograd_inputs(x, g: Window, m: int):
    """Per slice of the batch: (its slice, B^T d B of every 6x6 tile d [36, C, images * tiles])."""
    n, c = x.shape[:2]
    rows, cols = (-(-o // 4) for o in g.out)  # tiles per axis
    parts = _batch_slices(n, 36 * max(c, m) * rows * cols)
    # X padded to whole tiles: zeros past the image and its pads (the rows past them are unread)
    xp = np.zeros((parts[0].stop if parts else 0, c, 4 * rows + 2, 4 * cols + 2), np.float32)
    extent = [min(s, e - h) for s, e, h in zip(x.shape[2:], xp.shape[2:], g.head)]
    image = (slice(None), slice(None)) + tuple(slice(h, h + e) for h, e in zip(g.head, extent))
    for part in parts:
        k = part.stop - part.start
        xp[:k][image] = x[part][(slice(None), slice(None)) + tuple(slice(e) for e in extent)]
        d = sliding_window_view(xp[:k], (6, 6), axis=(2, 3))[:, :, ::4, ::4]  # [k, C, rows, cols, 6, 6]
        d = np.ascontiguousarray(d.transpose(4, 5, 1, 0, 2, 3)).reshape(36, -1)
        yield part, np.matmul(_KB, d).reshape(36, c, -1)


def _winograd(x, w, g: Window, group: int) -> np.ndarray:
    m, cg = w.shape[:2]
    rows, cols = (-(-o // 4) for o in g.out)
    u = np.matmul(_KG, w.reshape(m * cg, 9).T).reshape(36, group, m // group, cg)
    y = np.empty((x.shape[0], m) + g.out, np.float32)
    for part, v in _winograd_inputs(x, g, m):
        products = np.matmul(u, v.reshape(36, group, cg, -1)).reshape(36, -1)
        out = np.matmul(_KA, products).reshape(4, 4, m, -1, rows, cols)  # [4, 4, M, images, rows, cols]
        out = out.transpose(3, 2, 4, 0, 5, 1).reshape(-1, m, 4 * rows, 4 * cols)
        y[part] = out[:, :, :g.out[0], :g.out[1]]
    return y


def _winograd_filter_gradient(x, dy, g: Window, group: int) -> np.ndarray:
    """The adjoint of _winograd in the filter: [M, C/group, 3, 3]. dY's 4x4 tiles go back
    through A^T (zeros past Y's edge), meet X's transformed tiles in 36 GEMMs over all
    tiles, and return through G."""
    c, m = x.shape[1], dy.shape[1]
    rows, cols = (-(-o // 4) for o in g.out)
    du = np.zeros((36, group, m // group, c // group), np.float32)
    dyt = np.zeros((0, m, 4 * rows, 4 * cols), np.float32)
    for part, v in _winograd_inputs(x, g, m):
        k = part.stop - part.start
        if len(dyt) != k:
            dyt = np.zeros((k, m, 4 * rows, 4 * cols), np.float32)
        dyt[:, :, :g.out[0], :g.out[1]] = dy[part]
        tiles = dyt.reshape(k, m, rows, 4, cols, 4).transpose(3, 5, 1, 0, 2, 4).reshape(16, -1)
        dproducts = np.matmul(_KA.T, tiles).reshape(36, group, m // group, -1)
        du += np.matmul(dproducts, v.reshape(36, group, c // group, -1).swapaxes(-1, -2))
    return np.matmul(_KG.T, du.reshape(36, -1)).reshape(3, 3, m, c // group).transpose(2, 3, 0, 1)


class _Flat(NamedTuple):
    """One padded image [C, padded spatial...] as rows [C, positions] with zeros after
    them, so that at stride 1 each kernel offset reads one shifted slice of the rows
    (long contiguous runs for NumPy's loops). Outputs share the grid: `length`
    positions from the first, whose grid [C, out[0], padded[1:]...] cropped to
    [:, :out[0], :out[1], ...] is Y (the rest read past a row's end into padding)."""

    buffer: np.ndarray  # [C, positions + margin], zero outside the image
    image: np.ndarray  # the view of `buffer` an image is copied into
    shifts: list  # per kernel offset, where its slice starts
    length: int
    outputs: tuple  # (the grid's output shape, the crop to Y)


def _flat(c: int, spatial, g: Window, dtype) -> _Flat:
    grid = tuple(h + s + t for h, s, t in zip(g.head, spatial, g.tail))
    steps = [math.prod(grid[a + 1:]) for a in range(len(grid))]
    shifts = [sum(o * d * st for o, d, st in zip(offset, g.dilation, steps)) for offset in np.ndindex(*g.kernel)]
    length = g.out[0] * steps[0]
    buffer = np.zeros((c, max(shifts) + length), dtype)
    image = buffer[:, :math.prod(grid)].reshape((c,) + grid)[inner((1, c) + tuple(spatial), g)[1:]]
    crop = (slice(None),) + tuple(slice(o) for o in g.out)
    return _Flat(buffer, image, shifts, length, ((c, g.out[0]) + grid[1:], crop))


def _depthwise_taps(x, g: Window):
    """For each kernel offset, the [N, C, out...] view of padded X it reads."""
    xp = padded(x, g)
    return [xp[offset_slices(g, offset)] for offset in np.ndindex(*g.kernel)]


def _depthwise_correlate(x, w, g: Window) -> np.ndarray:
    """Depthwise Conv: Y = sum over offsets of filter[c, offset] * X[shifted], image by
    image so the running sum stays in cache; at stride 1 on _Flat rows."""
    n, c = x.shape[:2]
    y = np.empty((n, c) + g.out, np.result_type(x, w))
    strided = any(s != 1 for s in g.stride)
    if strided:
        taps, size = _depthwise_taps(x, g), g.out
    else:
        flat = _flat(c, x.shape[2:], g, y.dtype)
        (grid, crop), size = flat.outputs, (flat.length,)
    weights = w.reshape((c, -1) + (1,) * len(size))
    total, product = np.empty((2, c) + size, y.dtype)
    for i in range(n):
        if strided:
            rows = [tap[i] for tap in taps]
        else:
            flat.image[...] = x[i]
            rows = [flat.buffer[:, s:s + flat.length] for s in flat.shifts]
        np.multiply(rows[0], weights[:, 0], out=total)
        for k in range(1, len(rows)):
            total += np.multiply(rows[k], weights[:, k], out=product)
        y[i] = total if strided else total.reshape(grid)[crop]
    return y


def _depthwise_filter_gradient(x, dy, g: Window) -> np.ndarray:
    """d(filter) [C, prod(kernel)]: per offset and channel, dY's dot product with X[shifted]."""
    n, c = x.shape[:2]
    dw = np.zeros((c, math.prod(g.kernel)), np.result_type(x, dy))
    if any(s != 1 for s in g.stride):
        taps = _depthwise_taps(x, g)
        axes = "".join(chr(ord("a") + a) for a in range(len(g.out)))
        for i in range(n):
            for k, tap in enumerate(taps):
                dw[:, k] += np.einsum(f"z{axes},z{axes}->z", dy[i], tap[i])
        return dw
    flat = _flat(c, x.shape[2:], g, dw.dtype)
    grid, crop = flat.outputs
    on_grid = np.zeros((c, 1, flat.length), dw.dtype)  # dY, zero where the grid's outputs are not Y's
    for i in range(n):
        flat.image[...] = x[i]
        on_grid.reshape(grid)[crop] = dy[i]
        for k, s in enumerate(flat.shifts):
            dw[:, k] += np.matmul(on_grid, flat.buffer[:, s:s + flat.length, None])[:, 0, 0]
    return dw
