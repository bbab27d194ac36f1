"""Convolution, pooling and LRN kernels (NumPy), with their gradient ops.

Everything runs channels-first: NHWC images and filters are viewed as NCHW
(np.moveaxis, no copy) and the results moved back. Conv is im2col: a
sliding_window_view of the padded X, copied once into columns
[N, group, C/group * prod(kernel), prod(out)], then one batched matmul with
the filter. Its gradients and ConvTranspose reuse the columns and their
adjoint, col2im (the columns added back over the kernel offsets), since
ConvTranspose is the input gradient of a Conv with the same filter. The
window (kernel, stride, dilation, padding, output size) comes from the schema
package's `window`, so kernels and checker agree on every size and error.
Pooling reduces strided slices of the padded X, one per kernel offset; LRN
sums squares over neighbouring channels the same way. On CUDA (conv.cu) the
convolutions are im2col / col2im kernels around linalg's `gemm`; pooling and LRN
run one thread per output element (gradients: per input element).
"""
from __future__ import annotations

import inspect
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.linalg import gemm
from pycaffe2.operators.registry import (
    CONTEXT_PARAMS,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema import get_schema
from pycaffe2.schema.inference.conv import (
    Window,
    channel_axis,
    filter_channels,
    image_shape,
    spatial_shape,
    transposed_window,
    window,
)


def register_factory(op_type: str):
    """register_cpu(specialize=True) for `op_type` and its aliases, for a factory
    taking the schema's args as **args (the conv_pool group has ~20 spellings):
    its signature is built from the schema, engine args left out."""
    schema = get_schema(op_type)

    def register(factory):
        accepted = set(inspect.signature(factory).parameters)
        names = [name for name, spec in schema.args.items() if spec.group != "engine"]
        names += [name for name in CONTEXT_PARAMS if name in accepted]
        factory.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in names])
        return register_cpu(op_type, *schema.aliases, specialize=True)(factory)
    return register


def channels_first(array: np.ndarray, order: str) -> np.ndarray:
    return array if order == "NCHW" else np.moveaxis(array, -1, 1)


def channels_back(array: np.ndarray, order: str) -> np.ndarray:
    """A channels-first array (maybe a view) back in `order`, contiguous."""
    return np.ascontiguousarray(array if order == "NCHW" else np.moveaxis(array, 1, -1))


def padded(x: np.ndarray, g: Window, value=0) -> np.ndarray:
    """X [N, C, spatial...] padded by the window's head and tail pads (X itself if none)."""
    if not any(g.head) and not any(g.tail):
        return x
    out = np.full(padded_shape(x.shape, g), value, dtype=x.dtype)
    out[inner(x.shape, g)] = x
    return out


def padded_shape(shape, g: Window) -> tuple:
    return tuple(shape[:2]) + tuple(s + h + t for s, h, t in zip(shape[2:], g.head, g.tail))


def inner(shape, g: Window) -> tuple:
    """The slices of a padded array that hold the unpadded one of `shape`."""
    return (slice(None), slice(None)) + tuple(slice(h, h + s) for h, s in zip(g.head, shape[2:]))


def offset_slices(g: Window, offset) -> tuple:
    """The cells of the padded input that kernel offset `offset` reads, one per output position."""
    return (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offset, g.dilation, g.stride, g.out))


# The matmuls run on channel-major matrices, [group, channels/group, N * positions],
# so each group is one GEMM over the whole batch (faster than one GEMM per image).

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


def _correlate(x, w, g: Window, group: int, bias=None) -> np.ndarray:
    """Conv of channels-first X with filter [M, C/group, kernel...]: [N, M, out...].
    The columns are read image by image (strided views BLAS takes in place), so Y
    comes out in NCHW without a transpose."""
    n, m = x.shape[0], w.shape[0]
    columns = _columns(x, g, group)
    columns = columns.reshape(columns.shape[:2] + (n, math.prod(g.out))).transpose(2, 0, 1, 3)
    y = np.matmul(w.reshape(group, m // group, -1), columns)  # [N, group, M/group, out]
    if bias is not None:
        y += bias.reshape(group, -1, 1)
    return y.reshape((n, m) + g.out)


def _shifted_correlate(x, w, g: Window, group: int, bias=None) -> np.ndarray:
    """_correlate for stride 1 without im2col. Padded X is laid out channel-major and
    flattened, so each kernel offset reads it shifted by a fixed amount: a strided view
    that BLAS takes in place. Y over the whole padded grid is the sum of one GEMM per
    offset (per group), and its valid corner is cut out at the end."""
    (n, c), m = x.shape[:2], w.shape[0]
    grid = padded_shape(x.shape, g)[2:]
    total = n * math.prod(grid)
    steps = [math.prod(grid[a + 1:]) for a in range(len(grid))]
    shifts = [sum(o * d * step for o, d, step in zip(offset, g.dilation, steps))
              for offset in np.ndindex(*g.kernel)]
    flat = np.zeros((c, total + shifts[-1]), x.dtype)
    flat[:, :total].reshape((c, n) + grid)[inner(x.shape, g)] = np.moveaxis(x, 1, 0)
    flat = flat.reshape(group, c // group, -1)
    weights = np.ascontiguousarray(np.moveaxis(w.reshape(group, m // group, c // group, -1), -1, 0))
    y = np.matmul(weights[0], flat[:, :, :total])
    part = np.empty_like(y)
    for weight, shift in zip(weights[1:], shifts[1:]):
        y += np.matmul(weight, flat[:, :, shift:shift + total], out=part)
    if bias is not None:
        y += bias.reshape(group, -1, 1)
    y = y.reshape((m, n) + grid)[(slice(None), slice(None)) + tuple(slice(0, size) for size in g.out)]
    return np.moveaxis(y, 0, 1)


def _filter_gradient(x, dy, g: Window, group: int, w_shape) -> np.ndarray:
    """d(filter) of a Conv from its input X and its output gradient dY (channels-first)."""
    columns = _columns(x, g, group)
    return np.matmul(_channel_major(dy, group), columns.swapaxes(-1, -2)).reshape(w_shape)


def _input_gradient(dy, w, g: Window, group: int, x_shape) -> np.ndarray:
    """d(X) of a Conv from its output gradient dY and filter [M, C/group, kernel...] (a view)."""
    m = w.shape[0]
    columns = np.matmul(w.reshape(group, m // group, -1).swapaxes(-1, -2), _channel_major(dy, group))
    return _col2im(columns, x_shape, g)


def _check_bias(op_type: str, bias, m: int) -> None:
    if bias is not None and bias.shape != (m,):
        raise ValueError(f"{op_type}: bias is {list(bias.shape)} but the filter gives M = {m} output channels")


def _window_of(op_type: str, args: dict, x_shape, w_shape, transposed: bool) -> tuple[Window, int]:
    """(window, M output channels) after checking the filter against X (shapes only)."""
    kernel, m = filter_channels(op_type, x_shape, w_shape, args["order"], args["group"], transposed)
    return (transposed_window if transposed else window)(op_type, args, x_shape, kernel), m


def _geometry(op_type: str, args: dict, x, w, transposed: bool):
    """(channels-first X, filter, window) after checking the filter against X."""
    g, _ = _window_of(op_type, args, x.shape, w.shape, transposed)
    return channels_first(x, args["order"]), channels_first(w, args["order"]), g


def _wrong_dy(op_type: str, dy, expected) -> None:
    raise ValueError(f"{op_type}: dY is {list(dy.shape)} but Y is {list(expected)}")


def _gradient_outputs(op_type, args, num_outputs, dfilter, dbias, dx_function):
    """Caffe2's order: dfilter, dbias (unless no_bias), then dX (from dx_function) when asked for."""
    if args["no_bias"] and num_outputs > 2:
        raise ValueError(f"{op_type}: with no_bias=1 the outputs are dfilter and dX, got {num_outputs}")
    outputs = [dfilter] + ([] if args["no_bias"] else [dbias])
    if num_outputs > len(outputs):
        outputs.append(dx_function())
    return tuple(outputs)


@register_factory("Conv")
def conv(**args):
    def run(x, w, bias=None):
        xc, wc, g = _geometry("Conv", args, x, w, transposed=False)
        _check_bias("Conv", bias, w.shape[0])
        correlate = _shifted_correlate if set(g.stride) == {1} else _correlate
        y = correlate(xc, wc, g, args["group"], bias)
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
        xc, wc, g = _geometry("ConvGradient", args, x, w, transposed=False)
        dyc = channels_first(dy, args["order"])
        if dyc.shape != (x.shape[0], w.shape[0]) + g.out:
            _wrong_dy("ConvGradient", dy, image_shape(x.shape[0], w.shape[0], g.out, args["order"]))
        group, order = args["group"], args["order"]
        dfilter = _filter_gradient(xc, dyc, g, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(_input_gradient(dyc, wc, g, group, xc.shape).astype(x.dtype), order)
        return _gradient_outputs("ConvGradient", args, num_outputs, channels_back(dfilter, order), dbias, dx)
    return run


def _as_conv(xc: np.ndarray, g: Window) -> Window:
    """A transposed window read as the Conv that maps Y back onto X: its outputs are X's positions."""
    return g._replace(out=xc.shape[2:])


@register_factory("ConvTranspose")
def conv_transpose(**args):
    def run(x, w, bias=None):
        xc, wc, g = _geometry("ConvTranspose", args, x, w, transposed=True)
        m = wc.shape[1] * args["group"]
        _check_bias("ConvTranspose", bias, m)
        y = _input_gradient(xc, wc, _as_conv(xc, g), args["group"], (x.shape[0], m) + g.out)
        if bias is not None:
            y += bias.reshape((-1,) + (1,) * len(g.out))
        return channels_back(y.astype(x.dtype, copy=False), args["order"])
    return run


register_gradient("ConvTranspose")(conv_maker("ConvTransposeGradient"))


@register_factory("ConvTransposeGradient")
def conv_transpose_gradient(*, num_outputs, **args):
    def run(x, w, dy):
        xc, wc, g = _geometry("ConvTransposeGradient", args, x, w, transposed=True)
        dyc = channels_first(dy, args["order"])
        m = wc.shape[1] * args["group"]
        if dyc.shape != (x.shape[0], m) + g.out:
            _wrong_dy("ConvTransposeGradient", dy, image_shape(x.shape[0], m, g.out, args["order"]))
        group, order, conv_view = args["group"], args["order"], _as_conv(xc, g)
        dfilter = _filter_gradient(dyc, xc, conv_view, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(_correlate(dyc, wc, conv_view, group).astype(x.dtype), order)
        return _gradient_outputs("ConvTransposeGradient", args, num_outputs, channels_back(dfilter, order),
                                 dbias, dx)
    return run


def _lowest(dtype) -> float:
    """Padding for max pooling: it never wins (Caffe2 pads with the lowest value too)."""
    return np.finfo(dtype).min if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _whole(xc: np.ndarray, g: Window) -> bool:
    """True when the only window is all of X (global pooling without padding)."""
    return g.kernel == xc.shape[2:] and not any(g.head + g.tail)


def _pool_windows(xc: np.ndarray, g: Window, value):
    """For each kernel offset, the cells of the padded X it reads (one per output position)."""
    xp = padded(xc, g, value)
    return (xp[offset_slices(g, offset)] for offset in np.ndindex(*g.kernel))


def _scatter(shares, shape, g: Window, dtype) -> np.ndarray:
    """dX of `shape` from one array of contributions per kernel offset (in _pool_windows' order)."""
    dxp = np.zeros(padded_shape(shape, g), dtype)
    for offset, share in zip(np.ndindex(*g.kernel), shares):
        dxp[offset_slices(g, offset)] += share
    return np.ascontiguousarray(dxp[inner(shape, g)])


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
    windows = _pool_windows(xc, g, _lowest(xc.dtype))
    y = next(windows).copy()
    for cells in windows:
        np.maximum(y, cells, out=y)
    return y


def _average_pool(xc: np.ndarray, g: Window, count_include_pad: bool) -> np.ndarray:
    if _whole(xc, g):
        return xc.mean(axis=tuple(range(2, xc.ndim)), keepdims=True, dtype=xc.dtype)
    windows = _pool_windows(xc, g, 0)
    y = next(windows).copy()
    for cells in windows:
        y += cells
    return y / _window_counts(xc, g, count_include_pad)


def _pool_inputs(op_type: str, args: dict, x, y, dy):
    """Channels-first X, Y, dY and the window, checking that Y and dY have the pooled shape."""
    g = window(op_type, args, x.shape)
    order = args["order"]
    expected = image_shape(x.shape[0], x.shape[channel_axis(x.ndim, order)], g.out, order)
    for name, array in (("Y", y), ("dY", dy)):
        if array.shape != expected:
            raise ValueError(f"{op_type}: {name} is {list(array.shape)} but pooling X {list(x.shape)} "
                             f"gives {list(expected)}")
    return channels_first(x, order), channels_first(y, order), channels_first(dy, order), g


@register_factory("MaxPool")
def max_pool(**args):
    def run(x):
        g = window("MaxPool", args, x.shape)
        return channels_back(_max_pool(channels_first(x, args["order"]), g), args["order"])
    return run


gradient_op("MaxPool", "I0 O0 GO0")


@register_factory("MaxPoolGradient")
def max_pool_gradient(**args):
    def run(x, y, dy):
        xc, yc, dyc, g = _pool_inputs("MaxPoolGradient", args, x, y, dy)
        if _whole(xc, g):
            dx = np.where(xc == yc, dyc, 0).astype(dy.dtype, copy=False)
        else:  # every cell equal to its window's max gets the window's dY (ties all do)
            shares = (np.where(cells == yc, dyc, 0) for cells in _pool_windows(xc, g, _lowest(x.dtype)))
            dx = _scatter(shares, xc.shape, g, dy.dtype)
        return channels_back(dx, args["order"])
    return run


@register_factory("AveragePool")
def average_pool(**args):
    def run(x):
        g = window("AveragePool", args, x.shape)
        y = _average_pool(channels_first(x, args["order"]), g, args["count_include_pad"])
        return channels_back(y, args["order"])
    return run


gradient_op("AveragePool", "I0 O0 GO0")


@register_factory("AveragePoolGradient")
def average_pool_gradient(**args):
    def run(x, y, dy):
        xc, _, dyc, g = _pool_inputs("AveragePoolGradient", args, x, y, dy)
        share = dyc / _window_counts(xc, g, args["count_include_pad"])
        if _whole(xc, g):
            dx = np.broadcast_to(share, xc.shape).copy()
        else:
            dx = _scatter((share for _ in np.ndindex(*g.kernel)), xc.shape, g, dy.dtype)
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


def _lrn_channels_first(op_type: str, x: np.ndarray, order: str) -> np.ndarray:
    if x.ndim < 2:
        raise ValueError(f"{op_type}: X {list(x.shape)} needs a channel axis (rank 2 or more)")
    return channels_first(x, order)


@register_cpu("LRN")
def lrn(x, *, size, alpha, beta, bias, order):
    xc = _lrn_channels_first("LRN", x, order)
    scale = _lrn_scale(xc, size, alpha, bias)
    return channels_back(xc * scale ** -beta, order), channels_back(scale, order)


gradient_op("LRN", "I0 O0 GO0")


@register_cpu("LRNGradient")
def lrn_gradient(x, y, dy, *, size, alpha, beta, bias, order):
    if not x.shape == y.shape == dy.shape:
        raise ValueError(f"LRNGradient: X {list(x.shape)}, Y {list(y.shape)} and dY {list(dy.shape)} "
                         "must have one shape")
    xc, yc, dyc = (_lrn_channels_first("LRNGradient", a, order) for a in (x, y, dy))
    scale = _lrn_scale(xc, size, alpha, bias)
    # X_c feeds the scale of every channel whose window holds c: those from c - (size - 1 - pre) to c + pre.
    feedback = _channel_sums(dyc * yc / scale, size, size - 1 - (size - 1) // 2)
    dx = dyc * scale ** -beta - (2 * alpha * beta / size) * xc * feedback
    return channels_back(dx.astype(dy.dtype, copy=False), order)


# CUDA launchers (conv.cu): convolutions, pooling over 1 to 3 spatial dims, and LRN.
# The host resolves the window with the CPU kernel's `window` and passes it as ints;
# conv.cu sees every image as 3-D, so 1-D and 2-D windows get leading axes of
# size 1 (kernel 1, stride 1, no padding).

def _window_params(op_type: str, shape, order: str, g: Window) -> list:
    """The ints of conv.cu's POOL_PARAMS for the image of `shape` that window g reads."""
    nd = len(g.kernel)
    if nd > 3:
        raise ValueError(f"{op_type}: the CUDA kernels take 1 to 3 spatial dims; X {list(shape)} has {nd}")
    ones, zeros = (1,) * (3 - nd), (0,) * (3 - nd)
    values = [order == "NHWC", shape[channel_axis(len(shape), order)], *ones, *spatial_shape(shape, order),
              *ones, *g.out, *ones, *g.kernel, *ones, *g.stride, *ones, *g.dilation, *zeros, *g.head]
    return [np.int32(v) for v in values]


def _pool_params(op_type: str, args: dict, x) -> tuple[tuple, list]:
    """(Y's shape, the ints of conv.cu's POOL_PARAMS) for pooling X."""
    g, order = window(op_type, args, x.shape), args["order"]
    params = _window_params(op_type, x.shape, order, g)
    return image_shape(x.shape[0], x.shape[channel_axis(len(x.shape), order)], g.out, order), params


def register_cuda_factory(op_type: str):
    """register_cuda(specialize=True) for `op_type` and its aliases, taking register_factory's args."""
    schema = get_schema(op_type)
    names = tuple(name for name, spec in schema.args.items() if spec.group != "engine")
    return register_cuda(op_type, *schema.aliases, specialize=True, args=names)


def _average_extra(op_type: str, args: dict) -> list:
    return [np.int32(bool(args["count_include_pad"]))] if op_type.startswith("Average") else []


def _cuda_pool(op_type: str, kernel: str):
    def factory(**args):
        def run(x):
            (x,) = cuda.float32_inputs(op_type, x)
            shape, params = _pool_params(op_type, args, x)
            y = cuda.empty(shape)
            cuda.launch("conv.cu", kernel, y.size, x, y, *params,
                        *_average_extra(op_type, args), np.int64(y.size))
            return y
        return run
    factory.__name__ = f"{kernel}_cuda"
    return factory


def _cuda_pool_gradient(op_type: str, kernel: str):
    """One thread per cell of X, looping over the windows that hold it."""
    def factory(**args):
        def run(x, y, dy):
            x, y, dy = cuda.float32_inputs(op_type, x, y, dy)
            expected, params = _pool_params(op_type, args, x)
            for name, array in (("Y", y), ("dY", dy)):
                if tuple(array.shape) != expected:
                    raise ValueError(f"{op_type}: {name} is {list(array.shape)} but pooling X "
                                     f"{list(x.shape)} gives {list(expected)}")
            dx = cuda.empty_like(x)
            arrays = [x, y, dy] if kernel == "max_pool_gradient" else [dy]
            cuda.launch("conv.cu", kernel, dx.size, *arrays, dx, *params,
                        *_average_extra(op_type, args), np.int64(dx.size))
            return dx
        return run
    factory.__name__ = f"{kernel}_cuda"
    return factory


for _type, _kernel in (("MaxPool", "max_pool"), ("AveragePool", "average_pool")):
    register_cuda_factory(_type)(_cuda_pool(_type, _kernel))
    register_cuda_factory(f"{_type}Gradient")(_cuda_pool_gradient(f"{_type}Gradient", f"{_kernel}_gradient"))


# The convolutions on CUDA: im2col / col2im (conv.cu) around linalg's `gemm`, one batched
# product over the groups. Columns are [group, C/group * prod(kernel), N * prod(out)], their
# rows in the filter's own order, so the filter read as [group, rows of its group, columns]
# is a factor as stored and dfilter comes out in its layout. Images move to and from
# channel-major [C, N * positions] (a product's rows) in one kernel each.

def _cuda_im2col(op_type: str, image, g: Window, order: str, group: int):
    n, c = image.shape[0], image.shape[channel_axis(len(image.shape), order)]
    columns = cuda.empty((group, c // group * math.prod(g.kernel), n * math.prod(g.out)))
    cuda.launch("conv.cu", "im2col", columns.size, image, columns,
                *_window_params(op_type, image.shape, order, g), np.int32(group), np.int64(n),
                np.int64(columns.size))
    return columns


def _cuda_col2im(op_type: str, columns, shape, g: Window, order: str, group: int, bias=None):
    """The image of `shape` that window g reads, each cell the sum of the column entries
    that read it (plus the bias of its channel)."""
    image = cuda.empty(shape)
    cuda.launch("conv.cu", "col2im", image.size, columns, image, cuda.NULL if bias is None else bias,
                *_window_params(op_type, shape, order, g), np.int32(group), np.int64(shape[0]),
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
    return [None if v is None else cuda.float32_inputs(op_type, v)[0] for v in values]


def _check_dy(op_type: str, dy, expected) -> None:
    if tuple(dy.shape) != tuple(expected):
        _wrong_dy(op_type, dy, expected)


@register_cuda_factory("Conv")
def conv_cuda(**args):
    order, group = args["order"], args["group"]

    def run(x, w, bias=None):
        x, w, bias = _cuda_inputs("Conv", x, w, bias)
        g, m = _window_of("Conv", args, x.shape, w.shape, transposed=False)
        _check_bias("Conv", bias, m)
        y = gemm(_cuda_filter_matrices(w, group), _cuda_im2col("Conv", x, g, order, group), False, False)
        return _cuda_from_channel_major(y, image_shape(x.shape[0], m, g.out, order), order, bias)
    return run


@register_cuda_factory("ConvGradient")
def conv_gradient_cuda(*, num_outputs, **args):
    order, group = args["order"], args["group"]

    def run(x, w, dy):
        x, w, dy = cuda.float32_inputs("ConvGradient", x, w, dy)
        g, m = _window_of("ConvGradient", args, x.shape, w.shape, transposed=False)
        _check_dy("ConvGradient", dy, image_shape(x.shape[0], m, g.out, order))
        dy_cm, weights = _cuda_to_channel_major(dy, order, group), _cuda_filter_matrices(w, group)
        dfilter = gemm(dy_cm, _cuda_im2col("ConvGradient", x, g, order, group), False, True)
        dx = lambda: _cuda_col2im("ConvGradient", gemm(weights, dy_cm, True, False), x.shape, g, order, group)
        return _gradient_outputs("ConvGradient", args, num_outputs, cuda.reshape(dfilter, w.shape),
                                 _cuda_channel_sums(dy, order), dx)
    return run


@register_cuda_factory("ConvTranspose")
def conv_transpose_cuda(**args):
    order, group = args["order"], args["group"]

    def run(x, w, bias=None):
        x, w, bias = _cuda_inputs("ConvTranspose", x, w, bias)
        g, m = _window_of("ConvTranspose", args, x.shape, w.shape, transposed=True)
        _check_bias("ConvTranspose", bias, m)
        columns = gemm(_cuda_filter_matrices(w, group), _cuda_to_channel_major(x, order, group), True, False)
        return _cuda_col2im("ConvTranspose", columns, image_shape(x.shape[0], m, g.out, order),
                            g._replace(out=spatial_shape(x.shape, order)), order, group, bias)
    return run


@register_cuda_factory("ConvTransposeGradient")
def conv_transpose_gradient_cuda(*, num_outputs, **args):
    """Y = ConvTranspose(X) is read as the Conv that maps Y onto X's positions: dY's
    columns give dfilter (with X) and dX (with the filter)."""
    order, group = args["order"], args["group"]

    def run(x, w, dy):
        x, w, dy = cuda.float32_inputs("ConvTransposeGradient", x, w, dy)
        g, m = _window_of("ConvTransposeGradient", args, x.shape, w.shape, transposed=True)
        _check_dy("ConvTransposeGradient", dy, image_shape(x.shape[0], m, g.out, order))
        conv_view, weights = g._replace(out=spatial_shape(x.shape, order)), _cuda_filter_matrices(w, group)
        columns = _cuda_im2col("ConvTransposeGradient", dy, conv_view, order, group)
        dfilter = gemm(_cuda_to_channel_major(x, order, group), columns, False, True)
        dx = lambda: _cuda_from_channel_major(gemm(weights, columns, False, False), x.shape, order)
        return _gradient_outputs("ConvTransposeGradient", args, num_outputs, cuda.reshape(dfilter, w.shape),
                                 _cuda_channel_sums(dy, order), dx)
    return run


def _lrn_layout(op_type: str, x, order: str) -> list:
    """[C, distance between neighbouring channels] of X as the LRN kernels take them."""
    if len(x.shape) < 2:
        raise ValueError(f"{op_type}: X {list(x.shape)} needs a channel axis (rank 2 or more)")
    axis = channel_axis(len(x.shape), order)
    return [np.int32(x.shape[axis]), np.int64(math.prod(x.shape[axis + 1:]))]


@register_cuda("LRN")
def lrn_cuda(x, *, size, alpha, beta, bias, order):
    (x,) = cuda.float32_inputs("LRN", x)
    layout = _lrn_layout("LRN", x, order)
    y, scale = cuda.empty_like(x), cuda.empty_like(x)
    cuda.launch("conv.cu", "lrn", x.size, x, y, scale, *layout, np.int32(size),
                np.int32((size - 1) // 2), np.float32(alpha / size), np.float32(bias), np.float32(-beta),
                np.int64(x.size))
    return y, scale


@register_cuda("LRNGradient")
def lrn_gradient_cuda(x, y, dy, *, size, alpha, beta, bias, order):
    x, y, dy = cuda.float32_inputs("LRNGradient", x, y, dy)
    if not x.shape == y.shape == dy.shape:
        raise ValueError(f"LRNGradient: X {list(x.shape)}, Y {list(y.shape)} and dY {list(dy.shape)} "
                         "must have one shape")
    layout = _lrn_layout("LRNGradient", x, order)
    scale, dx = cuda.empty_like(x), cuda.empty_like(x)
    cuda.launch("conv.cu", "lrn_scale", x.size, x, scale, *layout, np.int32(size),
                np.int32((size - 1) // 2), np.float32(alpha / size), np.float32(bias), np.int64(x.size))
    cuda.launch("conv.cu", "lrn_gradient", x.size, x, y, dy, scale,
                dx, *layout, np.int32(size), np.int32(size - 1 - (size - 1) // 2),
                np.float32(-beta), np.float32(2 * alpha * beta / size), np.int64(x.size))
    return dx
