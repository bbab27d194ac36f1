"""NetDef -> ONNX converters for the neural-net ops: convolutions, pooling,
normalizations, FC and the matrix products, Softmax, LRN, ChannelShuffle, resizing.

Windows go through the same `window()` arithmetic the kernels use, so every Caffe2
padding spelling, `legacy_pad` (VALID, SAME, Caffe's ceil-mode pooling) included,
becomes explicit ONNX pads; a tail pad that Caffe's ceil mode adds past the last
window is cut to what that window reaches (ONNX Runtime refuses pads as large as
the kernel, and nothing past the last window is read). Caffe2's Softmax coerces its
input to 2-D at `axis`, which ONNX's (opset 13 on) does not: Flatten, Softmax on the
last axis, Reshape back. FC is Flatten + Gemm (+ Reshape when `axis` leaves more
than one leading dim).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from pycaffe2.onnx.export_graph import Unexportable, Value, canonical_axis, exports


def channels_first(*filters: int):
    """Run a channels-first converter on an NHWC op: X (and the `filters` inputs, laid out
    [M, k..., C]) transposed to channels first, Y transposed back."""
    def wrap(convert):
        @functools.wraps(convert)
        def converter(op, g):
            if op.order() == "NCHW":
                return convert(op, g)
            if op.order() != "NHWC":
                op.nchw_only()  # raises: an order ONNX has no counterpart for
            rank = op.inputs[0].rank
            first, last = [0, rank - 1, *range(1, rank - 1)], [0, *range(2, rank), 1]

            def permuted(v):
                shape = tuple(v.shape[p] for p in first)
                if v.value is not None:
                    value = np.transpose(v.value, first)
                    return Value(g.constant(value, "nchw"), shape, v.dtype, value)
                return Value(g.one("Transpose", [v.name], perm=first), shape, v.dtype)

            inputs = [permuted(v) if i == 0 or i in filters else v for i, v in enumerate(op.inputs)]
            y = op.outputs[0]
            y_first = Value(g.fresh("nchw"), tuple(y.shape[p] for p in first), y.dtype)
            convert(dataclasses.replace(op, args={**op.args, "order": "NCHW"}, inputs=inputs,
                                        outputs=[y_first, *op.outputs[1:]]), g)
            g.one("Transpose", [y_first.name], op.y(0), perm=last)
        return converter
    return wrap


def _window(op, kernel=None):
    from pycaffe2.errors import ShapeError
    from pycaffe2.schema.inference.conv import transposed_window, window
    try:
        if op.type == "ConvTranspose":
            return transposed_window(op.args, op.inputs[0].shape, kernel)
        return window(op.args, op.inputs[0].shape, kernel)
    except ShapeError as exc:
        raise Unexportable(str(exc)) from None


def _pads(win, x_shape) -> list[int]:
    """Head pads, then tail pads cut to what the last window reaches."""
    reached = [(out - 1) * stride + dilated - size - head for out, stride, dilated, size, head
               in zip(win.out, win.stride, win.dilated, x_shape[2:], win.head)]
    return [*win.head, *(max(0, min(tail, need)) for tail, need in zip(win.tail, reached))]


def _window_attrs(win, x_shape, dilations: bool = True) -> dict:
    attrs = {"kernel_shape": list(win.kernel), "strides": list(win.stride), "pads": _pads(win, x_shape)}
    if dilations:
        attrs["dilations"] = list(win.dilation)
    return attrs


@exports("Conv")
@channels_first(1)
def _conv(op, g):
    w = op.inputs[1]
    win = _window(op, w.shape[2:])
    inputs = [op.x(0), op.x(1)] + ([op.x(2)] if len(op.inputs) > 2 else [])
    g.one("Conv", inputs, op.y(0), group=op.args["group"], **_window_attrs(win, op.inputs[0].shape))


@exports("ConvTranspose")
@channels_first(1)
def _conv_transpose(op, g):
    w = op.inputs[1]
    win = _window(op, w.shape[2:])
    if op.args.get("group", 1) != 1 and w.shape[0] != op.inputs[0].shape[1]:
        raise Unexportable(f"filter {list(w.shape)} does not match ONNX's [C, M/group, k...] layout")
    x_spatial = op.inputs[0].shape[2:]
    adj = [out - ((size - 1) * s + d * (k - 1) + 1 - h - t) for out, size, k, s, d, h, t
           in zip(win.out, x_spatial, win.kernel, win.stride, win.dilation, win.head, win.tail)]
    inputs = [op.x(0), op.x(1)] + ([op.x(2)] if len(op.inputs) > 2 else [])
    g.one("ConvTranspose", inputs, op.y(0), group=op.args["group"], kernel_shape=list(win.kernel),
          strides=list(win.stride), dilations=list(win.dilation), pads=[*win.head, *win.tail],
          output_padding=adj if any(adj) else None)


@exports("MaxPool", "AveragePool", "LpPool")
@channels_first()
def _pool(op, g):
    if op.args.get("global_pooling"):
        attrs = {"p": _lp_order(op)} if op.type == "LpPool" else {}
        g.one(f"Global{op.type}", [op.x(0)], op.y(0), **attrs)
        return
    win = _window(op)
    dilated = any(d != 1 for d in win.dilation)
    with_dilations = op.type == "MaxPool" or g.opset >= (19 if op.type == "AveragePool" else 18)
    if dilated and not with_dilations:
        raise Unexportable(f"dilation {list(win.dilation)}: ONNX's {op.type} takes dilations from "
                           f"opset {19 if op.type == 'AveragePool' else 18} on (--opset)")
    attrs = _window_attrs(win, op.inputs[0].shape, dilations=with_dilations)
    if op.type == "AveragePool":
        attrs["count_include_pad"] = int(bool(op.args["count_include_pad"]))
    if op.type == "LpPool":
        attrs["p"] = _lp_order(op)
    g.one(op.type, [op.x(0)], op.y(0), **attrs)


def _lp_order(op) -> int:
    p = float(op.args["p"])
    if p != int(p) or p < 1:
        raise Unexportable(f"p {p}: ONNX's LpPool takes a positive integer p")
    return int(p)


@exports("SpatialBN")
@channels_first()
def _spatial_bn(op, g):
    if not op.args["is_test"]:
        raise Unexportable("training mode (is_test=0): export the test-mode net")
    g.one("BatchNormalization", [v.name for v in op.inputs[:5]], op.y(0), epsilon=float(op.args["epsilon"]))


@exports("InstanceNorm")
def _instance_norm(op, g):
    op.nchw_only()
    g.one("InstanceNormalization", [op.x(0), op.x(1), op.x(2)], op.y(0), epsilon=float(op.args["epsilon"]))


@exports("GroupNorm")
@channels_first()
def _group_norm(op, g):
    """InstanceNormalization over [N, group, -1] (ones and zeros as its scale and bias),
    back to X's shape, then gamma and beta per channel: any opset, unlike GroupNormalization."""
    x, group = op.inputs[0], op.args["group"]
    channels = x.shape[1]
    if channels % group:
        raise Unexportable(f"{channels} channels do not split into {group} groups")
    ones, zeros = (g.constant(np.full(group, v, x.dtype), hint) for v, hint in ((1, "ones"), (0, "zeros")))
    grouped = g.one("InstanceNormalization", [g.reshape(x.name, [0, group, -1]), ones, zeros],
                    epsilon=float(op.args["epsilon"]))
    normalized = g.one("Reshape", [grouped, g.one("Shape", [x.name])])
    lined = (channels,) + (1,) * (x.rank - 2)
    gamma, beta = (g.constant(v.value.reshape(lined), "gn") if v.value is not None else g.reshape(v.name, lined)
                   for v in op.inputs[1:3])
    g.one("Add", [g.one("Mul", [normalized, gamma]), beta], op.y(0))


@exports("LayerNorm")
def _layer_norm(op, g):
    x = op.inputs[0]
    axis = canonical_axis(op.args["axis"], x.rank)
    inner, eps = x.shape[axis:], float(op.args["epsilon"])
    if op.args.get("elementwise_affine") and len(op.inputs) >= 3:
        scale, bias = op.x(1), op.x(2)
    else:
        scale, bias = g.constant(np.ones(inner, x.dtype), "ones"), g.constant(np.zeros(inner, x.dtype), "zeros")
    want = [len(op.outputs) > i and op.used[i] for i in (1, 2)]
    stat_shape = list(x.shape[:axis]) + [1]  # Caffe2's mean and std: [X's dims before axis, 1]
    if g.opset < 17:  # LayerNormalization's formula, spelled out
        axes = list(range(axis, x.rank))
        mean = g.reduce("ReduceMean", x.name, axes, 1)
        centered = g.one("Sub", [x.name, mean])
        variance = g.reduce("ReduceMean", g.one("Mul", [centered, centered]), axes, 1)
        std = g.one("Sqrt", [g.one("Add", [variance, g.scalar(eps, x.dtype, "eps")])])
        normalized = g.one("Div", [centered, std])
        g.one("Add", [g.one("Mul", [normalized, scale]), bias], op.y(0))
        stats = (mean, std)
    else:
        outs = [op.y(0)] + ([g.fresh("mean"), g.fresh("inv_std")] if any(want) else [])
        g.node("LayerNormalization", [x.name, scale, bias], outs, axis=axis, epsilon=eps)
        stats = (outs[1], g.one("Reciprocal", [outs[2]]) if want[1] else None) if any(want) else (None, None)
    for i, (wanted, stat) in enumerate(zip(want, stats), 1):
        if wanted:
            g.reshape(stat, stat_shape, op.y(i))


def _flat2d(g, value, axis: int) -> str:
    return value.name if value.rank == 2 and axis == 1 else g.one("Flatten", [value.name], axis=axis)


@exports("FC", "FCTransposed")
def _fc(op, g):
    x, w = op.inputs[0], op.inputs[1]
    axis = canonical_axis(op.args["axis"], x.rank)
    axis_w = canonical_axis(op.args["axis_w"], w.rank)
    if w.value is not None and (w.rank != 2 or axis_w != 1):
        split = math.prod(w.shape[:axis_w])
        w_name = g.constant(w.value.reshape(split, -1), "w2d")
    else:
        w_name = _flat2d(g, w, axis_w)
    inputs = [_flat2d(g, x, axis), w_name] + ([op.x(2)] if len(op.inputs) > 2 else [])
    out = op.outputs[0]
    two_d = out.rank == 2
    y = g.one("Gemm", inputs, op.y(0) if two_d else None, transB=int(op.type == "FC"))
    if not two_d:
        g.reshape(y, list(x.shape[:axis]) + [-1], op.y(0))


@exports("MatMul")
def _matmul(op, g):
    a, b = op.inputs[0], op.inputs[1]
    if len(op.inputs) > 2:
        raise Unexportable("the shape_like input")
    a2 = _flat2d(g, a, canonical_axis(op.args["axis_a"], a.rank))
    b2 = _flat2d(g, b, canonical_axis(op.args["axis_b"], b.rank))
    if a.dtype.kind == "f":
        g.one("Gemm", [a2, b2], op.y(0), transA=op.args["trans_a"], transB=op.args["trans_b"])
        return
    a2 = g.one("Transpose", [a2], perm=[1, 0]) if op.args["trans_a"] else a2
    b2 = g.one("Transpose", [b2], perm=[1, 0]) if op.args["trans_b"] else b2
    g.one("MatMul", [a2, b2], op.y(0))


@exports("BatchMatMul")
def _batch_matmul(op, g):
    names = []
    for value, trans in zip(op.inputs[:2], (op.args["trans_a"], op.args["trans_b"])):
        if trans and value.rank >= 2:
            perm = list(range(value.rank - 2)) + [value.rank - 1, value.rank - 2]
            names.append(g.one("Transpose", [value.name], perm=perm))
        else:
            names.append(value.name)
    g.one("MatMul", names, op.y(0))


@exports("Softmax", "LogSoftmax")
def _softmax(op, g):
    x = op.inputs[0]
    axis = canonical_axis(op.args["axis"], max(x.rank, 1))
    if axis == x.rank - 1:
        g.one(op.type, [x.name], op.y(0), axis=-1)
        return
    flat = g.one("Flatten", [x.name], axis=axis)  # Caffe2 coerces X to 2-D at axis
    result = g.one(op.type, [flat], axis=-1)
    g.one("Reshape", [result, g.one("Shape", [x.name])], op.y(0))


@exports("LRN")
@channels_first()
def _lrn(op, g):
    g.one("LRN", [op.x(0)], op.y(0), size=op.args["size"], alpha=float(op.args["alpha"]),
          beta=float(op.args["beta"]), bias=float(op.args["bias"]))


@exports("ChannelShuffle")
@channels_first()
def _channel_shuffle(op, g):
    x, group = op.inputs[0], op.args["group"]
    channels = x.shape[1]
    if channels % group:
        raise Unexportable(f"{channels} channels do not split into {group} groups")
    grouped = g.reshape(x.name, [0, group, channels // group, -1])
    swapped = g.one("Transpose", [grouped], perm=[0, 2, 1, 3])
    g.one("Reshape", [swapped, g.one("Shape", [x.name])], op.y(0))


def _scales(op) -> tuple[float, float]:
    if len(op.inputs) > 1:
        height, width = op.require(1, "scales").reshape(-1).tolist()
        return float(height), float(width)
    return float(op.args["height_scale"]), float(op.args["width_scale"])


@exports("ResizeNearest", "UpsampleBilinear")
@channels_first()
def _resize(op, g):
    x, y = op.inputs[0], op.outputs[0]
    height, width = _scales(op)
    if tuple(y.shape[2:]) != (int(x.shape[2] * height), int(x.shape[3] * width)):
        raise Unexportable("the output size is not int(size * scale)")
    if op.type == "ResizeNearest":  # source = floor(o / scale), Caffe2's float arithmetic
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        scales = g.constant(np.asarray([1, 1, height, width], np.float32), "scales")
        g.one("Resize", [x.name, "", scales], op.y(0), **attrs)
        return
    attrs = {"mode": "linear", "coordinate_transformation_mode": "align_corners"}
    sizes = g.ints(y.shape, "sizes")  # exact output sizes: no float rounding between runtimes
    g.one("Resize", [x.name, "", "", sizes], op.y(0), **attrs)


@exports("Normalize")
def _normalize(op, g):
    x = op.inputs[0]
    axis = canonical_axis(op.args["axis"], x.rank)
    square_sum = g.reduce("ReduceSumSquare", x.name, [axis], 1)
    norm = g.one("Max", [g.one("Sqrt", [square_sum]), g.scalar(1e-12, x.dtype, "eps")])  # Caffe2's least norm
    g.one("Div", [x.name, norm], op.y(0))


@exports("ConvRelu")
def _conv_relu(op, g):
    """`pycaffe2 optimize --conv-relu`'s fused op: Conv, then Relu."""
    y = op.outputs[0]
    conv = Value(g.fresh("conv"), y.shape, y.dtype)
    _conv(dataclasses.replace(op, outputs=[conv]), g)
    g.one("Relu", [conv.name], op.y(0))


@exports("PadImage")
@channels_first()
def _pad_image(op, g):
    if op.args.get("legacy_pad"):
        raise Unexportable("legacy_pad (its padding depends on a kernel this op does not apply)")
    given = {"pads": op.args.get("pads"), "pad": op.args.get("pad"),
             "sides": [op.args.get(s) for s in ("pad_t", "pad_l", "pad_b", "pad_r")]}
    if given["pads"] is not None:
        t, left, b, r = given["pads"]
    elif any(v is not None for v in given["sides"]):
        t, left, b, r = (v or 0 for v in given["sides"])
    else:
        t = left = b = r = given["pad"] or 0
    x = op.inputs[0]
    pads = g.ints([0, 0, t, left, 0, 0, b, r], "pads")
    mode = op.args["mode"]
    inputs = [x.name, pads] + ([g.scalar(op.args["value"], x.dtype, "value")] if mode == "constant" else [])
    g.one("Pad", inputs, op.y(0), mode=mode)
