"""Convolution kernels (NumPy): Conv and ConvTranspose over 1 to 3 (CPU: any number
of) spatial dims, with their gradient ops.

Everything runs channels-first: NHWC images and filters are viewed as NCHW
(np.moveaxis, no copy) and the results moved back. Conv is im2col: a
sliding_window_view of the padded X, copied once into columns
[N, group, C/group * prod(kernel), prod(out)], then one batched matmul with
the filter. Its gradients and ConvTranspose reuse the columns and their
adjoint, col2im (the columns added back over the kernel offsets), since
ConvTranspose is the input gradient of a Conv with the same filter. The
window (kernel, stride, dilation, padding, output size) and every shape check
come from the schema's inference.conv, so kernels and checker agree on every
size and error. On CUDA (conv.cu) the convolutions are im2col / col2im kernels
around linalg's `gemm`. Pooling and LRN live in pooling.py; what both share, in
_conv_pool.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
from pycaffe2.operators.linalg import gemm
from pycaffe2.operators.registry import register_gradient
from pycaffe2.schema.inference.conv import (
    Window,
    channel_axis,
    check_bias,
    check_dy,
    check_gradient_outputs,
    conv_window,
    image_shape,
    spatial_shape,
)

# The CPU convolutions pick an algorithm per shape (measured against PyTorch in
# benchmarks/conv_vs_torch.py):
# - im2col + GEMM, a few images at a time: the columns of one slice stay in cache
#   between the copy and the product (ResNet's 3x3 block: 20 ms vs 25 ms with all
#   images at once) and the memory stays bounded;
# - depthwise (one input and one output channel per group): a multiply-add per
#   kernel offset on strided views, no columns (a batched matmul of 1-row matrices
#   is 2x slower, and its columns 9x the input);
# - dX at stride 1: a Conv of dY with the flipped filter (the same im2col GEMM, no
#   col2im adds); at other strides the columns' adjoint, col2im, slice by slice.

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
    view = sliding_window_view(padded(x, g), g.dilated, axis=spatial)  # [N, C, windows..., extent...]
    view = view[(slice(None), slice(None))
                + tuple(slice(0, s * (n - 1) + 1, s) for s, n in zip(g.stride, g.out))
                + tuple(slice(None, None, d) for d in g.dilation)]
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


def _correlate(x, w, g: Window, group: int, bias=None) -> np.ndarray:
    """Conv of channels-first X with filter [M, C/group, kernel...]: [N, M, out...].
    The columns are read image by image, so Y comes out in NCHW without a transpose."""
    n, m, positions = x.shape[0], w.shape[0], math.prod(g.out)
    if _is_depthwise(x.shape[1], m, group):
        y = _depthwise_correlate(x, w, g)
    else:
        y = np.empty((n, m) + g.out, np.result_type(x, w))
        weights = w.reshape(group, m // group, -1)
        for part in _batch_slices(n, x.shape[1] * math.prod(g.kernel) * positions):
            columns = _image_columns(x[part], g, group)
            np.matmul(weights, columns, out=y[part].reshape(columns.shape[0], group, m // group, positions))
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * len(g.out))
    return y


def _filter_gradient(x, dy, g: Window, group: int, w_shape) -> np.ndarray:
    """d(filter) of a Conv from its input X and its output gradient dY (channels-first):
    per image dY's channels times the columns, summed."""
    if _is_depthwise(x.shape[1], w_shape[0], group):
        return _depthwise_filter_gradient(x, dy, g).reshape(w_shape)
    n, m = dy.shape[:2]
    dw = np.zeros((group, m // group, x.shape[1] // group * math.prod(g.kernel)), np.result_type(x, dy))
    for part in _batch_slices(n, x.shape[1] * math.prod(g.kernel) * math.prod(g.out)):
        images = dy[part].reshape(-1, group, m // group, math.prod(g.out))
        dw += np.matmul(images, _image_columns(x[part], g, group).swapaxes(-1, -2)).sum(axis=0)
    return dw.reshape(w_shape)


def _input_gradient(dy, w, g: Window, group: int, x_shape) -> np.ndarray:
    """d(X) of a Conv from its output gradient dY and filter [M, C/group, kernel...] (a view).
    At stride 1 the flipped Conv, unless M is so much larger than C that the columns of
    dY would outgrow col2im's (LeNet's first conv: C 1, M 20)."""
    m, c = w.shape[0], x_shape[1]
    if all(s == 1 for s in g.stride) and (m <= 2 * c or _pointwise(g) or _is_depthwise(c, m, group)):
        return _correlate(*_flipped_conv(dy, w, g, group, x_shape[2:]), group)
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


def _geometry(args: dict, x, w, transposed: bool):
    """(channels-first X, filter, window, M) after checking the filter against X."""
    g, m = conv_window(args, x.shape, w.shape, transposed)
    return channels_first(x, args["order"]), channels_first(w, args["order"]), g, m


def _gradient_outputs(args, num_outputs, dfilter, dbias, dx_function):
    """Caffe2's order: dfilter, dbias (unless no_bias), then dX (from dx_function) when asked for."""
    check_gradient_outputs(args["no_bias"], num_outputs)
    outputs = [dfilter] + ([] if args["no_bias"] else [dbias])
    if num_outputs > len(outputs):
        outputs.append(dx_function())
    return tuple(outputs)


@register_factory("Conv")
def conv(**args):
    def run(x, w, bias=None):
        xc, wc, g, m = _geometry(args, x, w, transposed=False)
        if bias is not None:
            check_bias(bias.shape, w.shape, m)
        y = _correlate(xc, wc, g, args["group"], bias)
        return channels_back(y.astype(x.dtype, copy=False), args["order"])
    return run


def conv_maker(gradient_type: str):
    """Caffe2's Conv/ConvTranspose maker: {X, filter, dY} -> {dfilter, dbias, dX}; without
    a bias {dfilter, dX} and no_bias=1; no dX with no_gradient_to_input=1."""
    def maker(g):
        has_bias = len(g.op.input) == 3
        outputs = [g.GI(1)] + ([g.GI(2)] if has_bias else [])
        if not g.arg("no_gradient_to_input"):
            outputs.append(g.GI(0))
        extra = {} if has_bias else {"no_bias": 1}
        return [g.Op(gradient_type, [g.I(0), g.I(1), g.GO(0)], outputs, **extra)]
    return maker


register_gradient("Conv")(conv_maker("ConvGradient"))


@register_factory("ConvGradient")
def conv_gradient(*, num_outputs, **args):
    def run(x, w, dy):
        xc, wc, g, m = _geometry(args, x, w, transposed=False)
        group, order = args["group"], args["order"]
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        dyc = channels_first(dy, order)
        dfilter = _filter_gradient(xc, dyc, g, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(_input_gradient(dyc, wc, g, group, xc.shape).astype(x.dtype), order)
        return _gradient_outputs(args, num_outputs, channels_back(dfilter, order), dbias, dx)
    return run


def _as_conv(xc: np.ndarray, g: Window) -> Window:
    """A transposed window read as the Conv that maps Y back onto X: its outputs are X's positions."""
    return g._replace(out=xc.shape[2:])


@register_factory("ConvTranspose")
def conv_transpose(**args):
    def run(x, w, bias=None):
        xc, wc, g, m = _geometry(args, x, w, transposed=True)
        if bias is not None:
            check_bias(bias.shape, w.shape, m)
        y = _input_gradient(xc, wc, _as_conv(xc, g), args["group"], (x.shape[0], m) + g.out)
        if bias is not None:
            y += bias.reshape((-1,) + (1,) * len(g.out))
        return channels_back(y.astype(x.dtype, copy=False), args["order"])
    return run


register_gradient("ConvTranspose")(conv_maker("ConvTransposeGradient"))


@register_factory("ConvTransposeGradient")
def conv_transpose_gradient(*, num_outputs, **args):
    def run(x, w, dy):
        xc, wc, g, m = _geometry(args, x, w, transposed=True)
        group, order, conv_view = args["group"], args["order"], _as_conv(xc, g)
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        dyc = channels_first(dy, order)
        dfilter = _filter_gradient(dyc, xc, conv_view, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(_correlate(dyc, wc, conv_view, group).astype(x.dtype), order)
        return _gradient_outputs(args, num_outputs, channels_back(dfilter, order), dbias, dx)
    return run


# The convolutions on CUDA: im2col / col2im (conv.cu) around linalg's `gemm`, one batched
# product over the groups. Columns are [group, C/group * prod(kernel), N * prod(out)], their
# rows in the filter's own order, so the filter read as [group, rows of its group, columns]
# is a factor as stored and dfilter comes out in its layout. Images move to and from
# channel-major [C, N * positions] (a product's rows) in one kernel each. Shapes are checked
# by the same schema functions as on the CPU.

def _cuda_im2col(image, g: Window, order: str, group: int):
    n, c = image.shape[0], image.shape[channel_axis(len(image.shape), order)]
    columns = cuda.empty((group, c // group * math.prod(g.kernel), n * math.prod(g.out)))
    cuda.launch("conv.cu", "im2col", columns.size, image, columns,
                *window_params(image.shape, order, g), np.int32(group), np.int64(n),
                np.int64(columns.size))
    return columns


def _cuda_col2im(columns, shape, g: Window, order: str, group: int, bias=None):
    """The image of `shape` that window g reads, each cell the sum of the column entries
    that read it (plus the bias of its channel)."""
    image = cuda.empty(shape)
    cuda.launch("conv.cu", "col2im", image.size, columns, image, cuda.NULL if bias is None else bias,
                *window_params(shape, order, g), np.int32(group), np.int64(shape[0]),
                np.int64(image.size))
    return image


def _cuda_layout(shape, order: str) -> list:
    """[nhwc, N, C, positions] of an image, as the layout kernels take them."""
    c = shape[channel_axis(len(shape), order)]
    positions = math.prod(spatial_shape(shape, order))
    return [np.int32(order == "NHWC"), np.int64(shape[0]), np.int64(c), np.int64(positions)]


def _cuda_to_channel_major(image, order: str, group: int):
    """[group, C/group, N * positions]."""
    layout = _cuda_layout(image.shape, order)
    _, n, c, positions = (int(v) for v in layout)
    cm = cuda.empty((group, c // group, n * positions))
    cuda.launch("conv.cu", "to_channel_major", cm.size, image, cm, *layout, np.int64(cm.size))
    return cm


def _cuda_from_channel_major(cm, shape, order: str, bias=None):
    image = cuda.empty(shape)
    cuda.launch("conv.cu", "from_channel_major", image.size, cm, image, cuda.NULL if bias is None else bias,
                *_cuda_layout(shape, order), np.int64(image.size))
    return image


def _cuda_channel_sums(image, order: str):
    """dbias: per channel, the sum over images and positions."""
    layout = _cuda_layout(image.shape, order)
    sums = cuda.empty((int(layout[2]),))
    cuda.launch_rows("conv.cu", "channel_sums", sums.size, image, sums, *layout)
    return sums


def _cuda_filter_matrices(w, group: int):
    """The filter as [group, its first dim / group, the rest]."""
    return cuda.reshape(w, (group, w.shape[0] // group, math.prod(w.shape[1:])))


def _cuda_inputs(op_type: str, *values) -> list:
    """float32 GPUArrays, None where an optional input is absent."""
    return [None if v is None else cuda.float32_inputs(v)[0] for v in values]


@register_cuda_factory("Conv")
def conv_cuda(**args):
    order, group = args["order"], args["group"]

    def run(x, w, bias=None):
        x, w, bias = _cuda_inputs("Conv", x, w, bias)
        g, m = conv_window(args, x.shape, w.shape, transposed=False)
        if bias is not None:
            check_bias(bias.shape, w.shape, m)
        y = gemm(_cuda_filter_matrices(w, group), _cuda_im2col(x, g, order, group), False, False)
        return _cuda_from_channel_major(y, image_shape(x.shape[0], m, g.out, order), order, bias)
    return run


@register_cuda_factory("ConvGradient")
def conv_gradient_cuda(*, num_outputs, **args):
    order, group = args["order"], args["group"]

    def run(x, w, dy):
        x, w, dy = cuda.float32_inputs(x, w, dy)
        g, m = conv_window(args, x.shape, w.shape, transposed=False)
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        dy_cm, weights = _cuda_to_channel_major(dy, order, group), _cuda_filter_matrices(w, group)
        dfilter = gemm(dy_cm, _cuda_im2col(x, g, order, group), False, True)
        dx = lambda: _cuda_col2im(gemm(weights, dy_cm, True, False), x.shape, g, order, group)
        return _gradient_outputs(args, num_outputs, cuda.reshape(dfilter, w.shape),
                                 _cuda_channel_sums(dy, order), dx)
    return run


@register_cuda_factory("ConvTranspose")
def conv_transpose_cuda(**args):
    order, group = args["order"], args["group"]

    def run(x, w, bias=None):
        x, w, bias = _cuda_inputs("ConvTranspose", x, w, bias)
        g, m = conv_window(args, x.shape, w.shape, transposed=True)
        if bias is not None:
            check_bias(bias.shape, w.shape, m)
        columns = gemm(_cuda_filter_matrices(w, group), _cuda_to_channel_major(x, order, group), True, False)
        return _cuda_col2im(columns, image_shape(x.shape[0], m, g.out, order),
                            g._replace(out=spatial_shape(x.shape, order)), order, group, bias)
    return run


@register_cuda_factory("ConvTransposeGradient")
def conv_transpose_gradient_cuda(*, num_outputs, **args):
    """Y = ConvTranspose(X) is read as the Conv that maps Y onto X's positions: dY's
    columns give dfilter (with X) and dX (with the filter)."""
    order, group = args["order"], args["group"]

    def run(x, w, dy):
        x, w, dy = cuda.float32_inputs(x, w, dy)
        g, m = conv_window(args, x.shape, w.shape, transposed=True)
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        conv_view, weights = g._replace(out=spatial_shape(x.shape, order)), _cuda_filter_matrices(w, group)
        columns = _cuda_im2col(dy, conv_view, order, group)
        dfilter = gemm(_cuda_to_channel_major(x, order, group), columns, False, True)
        dx = lambda: _cuda_from_channel_major(gemm(weights, columns, False, False), x.shape, order)
        return _gradient_outputs(args, num_outputs, cuda.reshape(dfilter, w.shape),
                                 _cuda_channel_sums(dy, order), dx)
    return run
