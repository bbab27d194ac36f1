"""Inference rules of the nn_extra family (Hardmax, MaxPoolWithArgmax, MaxUnpool,
MeanVarianceNormalization) and the checks its kernels share with them."""
from __future__ import annotations

import math

from pycaffe2.files import check_alloc
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.conv import Window, window


def one_axis(shape, axis: int) -> int:
    """`axis` of a tensor of `shape`, canonical."""
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(f"axis {axis} is out of range for X {list(shape)}")
    return axis % len(shape)


def axes_of(shape, axes) -> tuple[int, ...]:
    """Distinct canonical axes of a tensor of `shape`."""
    out = tuple(sorted({a % len(shape) for a in axes if -len(shape) <= a < len(shape)}))
    if len(out) != len(axes):
        raise ShapeError(f"axes {list(axes)} must be distinct axes of X {list(shape)}")
    return out


def argmax_window(args: dict, x_shape) -> Window:
    """MaxPoolWithArgmax's window (NCHW); storage_order 1 only for 2-D."""
    if args.get("order", "NCHW") != "NCHW":
        raise ShapeError("MaxPoolWithArgmax takes NCHW only")
    g = window(args, x_shape)
    if args.get("storage_order") == 1 and len(g.kernel) != 2:
        raise ShapeError(f"storage_order 1 is for 2-D pooling, X is {list(x_shape)}")
    return g


def unpooled_shape(x_shape, i_shape, kernels, strides, pads, output_shape) -> tuple[tuple, tuple]:
    """(the unpooled shape, Y's shape) of MaxUnpool."""
    nd = len(x_shape) - 2
    if nd < 1:
        raise ShapeError(f"X {list(x_shape)} must be [N, C, spatial...]")
    if tuple(i_shape) != tuple(x_shape):
        raise ShapeError(f"Indices {list(i_shape)} must have X's shape {list(x_shape)}")
    strides, pads = strides or [1] * nd, pads or [0] * (2 * nd)
    if len(kernels) != nd or len(strides) != nd or len(pads) != 2 * nd:
        raise ShapeError(f"kernels {list(kernels)}, strides {list(strides)} and pads {list(pads)} "
                         f"do not fit X's {nd} spatial dims")
    inferred = tuple(x_shape[:2]) + tuple((n - 1) * s - pads[a] - pads[nd + a] + k for a, (n, s, k)
                                          in enumerate(zip(x_shape[2:], strides, kernels)))
    if min(inferred) < 0:
        raise ShapeError(f"pads {list(pads)} leave a negative unpooled shape {list(inferred)}")
    out = tuple(output_shape) if output_shape else inferred
    if len(out) != len(inferred) or any(o < i for o, i in zip(out, inferred)):
        raise ShapeError(f"output_shape {list(out)} must hold the unpooled shape {list(inferred)}")
    check_alloc(out, "float64", "MaxUnpool's output")
    return inferred, out


@rule("nn_extra_hardmax")
def hardmax(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is not None:
        one_axis(x.shape, op.arg("axis"))
    return [x]


@rule("nn_extra_max_pool_with_argmax")
def max_pool_with_argmax(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None, None]
    shape = tuple(x.shape[:2]) + argmax_window(op.args, x.shape).out
    return [TensorInfo(shape, x.dtype), TensorInfo(shape, "int64")]


def check_argmax_gradient(x, indices, dy) -> None:
    if tuple(indices) != tuple(dy):
        raise ShapeError(f"Indices {list(indices)} and dY {list(dy)} must have one shape")
    if tuple(dy[:2]) != tuple(x[:2]):
        raise ShapeError(f"dY {list(dy)} and X {list(x)} must have the same N and C")


@rule("nn_extra_max_pool_with_argmax_gradient")
def max_pool_with_argmax_gradient(op: OpView, inputs: list) -> list:
    x, indices, dy = inputs
    if x is None:
        return [None]
    if indices is not None and dy is not None:
        check_argmax_gradient(x.shape, indices.shape, dy.shape)
    return [TensorInfo(tuple(x.shape), dy.dtype if dy is not None else x.dtype)]


@rule("nn_extra_max_unpool")
def max_unpool(op: OpView, inputs: list) -> list:
    x, i = inputs
    if x is None or i is None:
        return [None]
    _, out = unpooled_shape(x.shape, i.shape, op.arg("kernels"), op.arg("strides"), op.arg("pads"),
                            op.arg("output_shape"))
    return [TensorInfo(out, x.dtype)]


@rule("nn_extra_mean_variance_normalization")
def mean_variance_normalization(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is not None:
        if str(x.dtype) not in FLOAT_TYPES:
            raise ShapeError(f"X must be float, got {x.dtype}")
        axes_of(x.shape, op.arg("axes"))
    return [x]


def _window_lists(nd: int, dilations, pads, strides):
    dilations, strides = dilations or [1] * nd, strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    if len(dilations) != nd or len(strides) != nd or len(pads) != 2 * nd:
        raise ShapeError(f"dilations {list(dilations)}, strides {list(strides)} and pads {list(pads)} "
                         f"do not fit {nd} spatial dims")
    return list(dilations), list(pads), list(strides)


def sliding_out(image, block, dilations, pads, strides) -> tuple:
    """The number of windows along each spatial axis."""
    nd = len(image)
    out = tuple((i + pads[a] + pads[nd + a] - dilations[a] * (b - 1) - 1) // strides[a] + 1
                for a, (i, b) in enumerate(zip(image, block)))
    if min(out, default=1) < 1:
        raise ShapeError(f"the window {list(block)} does not fit the padded image {list(image)}")
    return out


def col2im_shape(x, image, block, dilations, pads, strides) -> tuple:
    """Y's shape of Col2ImND, X's shape checked against the windows."""
    if len(image) != len(block) or not image:
        raise ShapeError(f"image_shape {list(image)} and block_shape {list(block)} must have one length")
    dilations, pads, strides = _window_lists(len(image), dilations, pads, strides)
    per = math.prod(block)
    if len(x) != 3 or x[1] % per:
        raise ShapeError(f"X {list(x)} must be [N, C * {per}, L]")
    out = sliding_out(image, block, dilations, pads, strides)
    if x[2] != math.prod(out):
        raise ShapeError(f"X {list(x)} has {x[2]} columns but the windows number {math.prod(out)} ({list(out)})")
    shape = (x[0], x[1] // per, *image)
    check_alloc(shape, "float64", "Col2ImND's output")
    return shape


def deform_conv_shape(x, w, offset, bias, mask, group, offset_group, dilations, pads, strides) -> tuple:
    """Y's shape of DeformConv, every input checked."""
    nd = len(x) - 2
    if nd < 1 or len(w) != len(x):
        raise ShapeError(f"X {list(x)} and filter {list(w)} must be [N, C, spatial...] and [M, C/group, kernel...]")
    if x[1] % group or w[0] % group or w[1] * group != x[1] or x[1] % offset_group:
        raise ShapeError(f"X {list(x)}, filter {list(w)}, group {group} and offset_group {offset_group} "
                         "do not agree on the channels")
    dilations, pads, strides = _window_lists(nd, dilations, pads, strides)
    out = sliding_out(x[2:], w[2:], dilations, pads, strides)
    taps = offset_group * math.prod(w[2:])
    if tuple(offset) != (x[0], taps * nd, *out):
        raise ShapeError(f"offset {list(offset)} must be {[x[0], taps * nd, *out]}")
    if bias is not None and tuple(bias) != (w[0],):
        raise ShapeError(f"bias {list(bias)} must be [{w[0]}]")
    if mask is not None and tuple(mask) != (x[0], taps, *out):
        raise ShapeError(f"mask {list(mask)} must be {[x[0], taps, *out]}")
    return (x[0], w[0], *out)


@rule("nn_extra_col2im_nd")
def col2im_nd(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None]
    shape = col2im_shape(x.shape, op.arg("image_shape"), op.arg("block_shape"), op.arg("dilations"),
                         op.arg("pads"), op.arg("strides"))
    return [TensorInfo(shape, x.dtype)]


def im2col_shape(dy, image, block, dilations, pads, strides) -> tuple:
    """Col2ImNDGradient's dX shape [N, C * prod(block), L], dY checked against image_shape."""
    if tuple(dy[2:]) != tuple(image) or len(dy) != len(image) + 2:
        raise ShapeError(f"dY {list(dy)} must be [N, C, {', '.join(map(str, image))}]")
    dilations, pads, strides = _window_lists(len(image), dilations, pads, strides)
    return (dy[0], dy[1] * math.prod(block), math.prod(sliding_out(image, block, dilations, pads, strides)))


@rule("nn_extra_col2im_nd_gradient")
def col2im_nd_gradient(op: OpView, inputs: list) -> list:
    dy = inputs[0]
    if dy is None:
        return [None]
    shape = im2col_shape(dy.shape, op.arg("image_shape"), op.arg("block_shape"), op.arg("dilations"),
                         op.arg("pads"), op.arg("strides"))
    return [TensorInfo(shape, dy.dtype)]


@rule("nn_extra_deform_conv")
def deform_conv(op: OpView, inputs: list) -> list:
    x, w, offset = inputs[:3]
    rest = [i.shape if i is not None else None for i in inputs[3:]] + [None, None]
    if x is None or w is None or offset is None:
        return [None]
    shape = deform_conv_shape(x.shape, w.shape, offset.shape, rest[0], rest[1], op.arg("group"),
                              op.arg("offset_group"), op.arg("dilations"), op.arg("pads"), op.arg("strides"))
    return [TensorInfo(shape, x.dtype)]
