"""Convolution kernels (NumPy): Conv and ConvTranspose over 1 to 3 (CPU: any number
of) spatial dims, with their gradient ops.

Everything runs channels-first: NHWC images and filters are viewed as NCHW
(np.moveaxis, no copy) and the results moved back. The CPU algorithms (im2col,
Winograd, depthwise, col2im, chosen per shape) live in _conv_cpu.py; ConvTranspose
is the input gradient of a Conv with the same filter. The window (kernel, stride,
dilation, padding, output size) and every shape check come from the schema's
inference.conv, so kernels and checker agree on every size and error. On CUDA (conv.cu) the convolutions are im2col / col2im kernels
around linalg's `gemm`. Pooling and LRN live in pooling.py; what both share, in
_conv_pool.py.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._conv_cpu import correlate, filter_gradient, input_gradient
from pycaffe2.operators._conv_pool import (
    channels_back,
    channels_first,
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
        if x.dtype == np.float16:  # sums in float32, rounded once (as ONNX Runtime and GPUs do)
            xc, wc = xc.astype(np.float32), wc.astype(np.float32)
            bias = None if bias is None else bias.astype(np.float32)
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
        xc, wc, g, m = _geometry(args, x, w, transposed=False)
        group, order = args["group"], args["order"]
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        dyc = channels_first(dy, order)
        dfilter = filter_gradient(xc, dyc, g, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(input_gradient(dyc, wc, g, group, xc.shape).astype(x.dtype, copy=False), order)
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
        y = input_gradient(xc, wc, _as_conv(xc, g), args["group"], (x.shape[0], m) + g.out)
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
        dfilter = filter_gradient(dyc, xc, conv_view, group, wc.shape).astype(w.dtype, copy=False)
        dbias = dyc.sum(axis=(0, *range(2, dyc.ndim))).astype(dy.dtype, copy=False)
        dx = lambda: channels_back(correlate(dyc, wc, conv_view, group).astype(x.dtype, copy=False), order)
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
