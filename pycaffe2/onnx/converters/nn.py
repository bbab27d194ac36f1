"""Converters of ONNX's convolutions, softmaxes and Dropout to pycaffe2 ops (NCHW, as
ONNX), and the window helpers nn_pool.py shares: ONNX's auto_pad becomes explicit
pads when X's spatial shape is known (SAME_UPPER falls back on Caffe2's legacy_pad 2,
the same rule, when it is not)."""
from __future__ import annotations

from pycaffe2.onnx.registry import NeedValue, Unsupported, converter

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def outputs(node) -> list:
    """The node's outputs up to the last one given (an omitted one in between is an error)."""
    names = list(node.outputs)
    while names and not names[-1]:
        names.pop()
    if "" in names:
        raise Unsupported(f"outputs {names}: an omitted output before a given one")
    return names


def spatial(ctx, name: str, nd: int):
    """X's spatial dims when all are known, else None."""
    shape = ctx.shape(name)
    if shape is None or len(shape) != nd + 2 or any(d is None for d in shape[2:]):
        return None
    return tuple(shape[2:])


def known_spatial(ctx, name: str, nd: int, what: str):
    """X's spatial dims; unknown ones send the backend to the traced translation."""
    sizes = spatial(ctx, name, nd)
    if sizes is None:
        raise NeedValue(f"{what} needs the spatial size of '{name}', known only when the model runs")
    return sizes


def same_pads(auto_pad: str, sizes, kernel, strides, dilations) -> list:
    """ONNX's SAME padding ([heads..., tails...]): ceil(in / stride) outputs, the odd cell at
    the tail (SAME_UPPER) or head (SAME_LOWER)."""
    heads, tails = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        heads.append(small if auto_pad == "SAME_UPPER" else big)
        tails.append(big if auto_pad == "SAME_UPPER" else small)
    return heads + tails


def window_args(node, ctx, kernel, x: str, pool_dilation_in_same: bool = True) -> dict:
    """kernels/strides/dilations/pads of pycaffe2's conv_pool group from ONNX's attributes."""
    nd = len(kernel)
    strides = list(node.attr("strides", [1] * nd))
    dilations = list(node.attr("dilations", [1] * nd))
    if len(strides) != nd or len(dilations) != nd:
        raise Unsupported(f"strides {strides} / dilations {dilations} for a {nd}-D kernel")
    args = {"kernels": list(kernel), "strides": strides, "dilations": dilations}
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise Unsupported(f"auto_pad {auto_pad!r}")
    if auto_pad == "VALID":
        args["pads"] = [0] * (2 * nd)
    elif auto_pad.startswith("SAME"):
        sizes = spatial(ctx, x, nd)
        # Caffe2's SAME (legacy_pad 2) is SAME_UPPER with the dilated kernel, as Conv's;
        # pooling's SAME ignores the dilation
        if sizes is None and auto_pad == "SAME_UPPER" and (pool_dilation_in_same or max(dilations) == 1):
            args["legacy_pad"] = 2
        elif sizes is None:
            known_spatial(ctx, x, nd, f"auto_pad {auto_pad}")
        else:
            same_dilations = dilations if pool_dilation_in_same else [1] * nd
            args["pads"] = same_pads(auto_pad, sizes, kernel, strides, same_dilations)
    else:
        pads = list(node.attr("pads", [0] * (2 * nd)))
        if len(pads) != 2 * nd or min(pads) < 0:
            raise Unsupported(f"pads {pads} for a {nd}-D kernel")
        args["pads"] = pads
    return args


def _filter_kernel(node, ctx, w: str) -> list:
    shape = ctx.shape(w)
    if shape is not None and None not in shape[2:]:
        kernel = list(shape[2:])
    else:
        kernel = node.attr("kernel_shape")
    if kernel is None:
        raise Unsupported("the filter's shape is unknown and there is no kernel_shape")
    return list(kernel)


@converter("Conv")
def _conv(node, ctx):
    kernel = _filter_kernel(node, ctx, node.input(1))
    args = window_args(node, ctx, kernel, node.input(0))
    inputs = [n for n in node.inputs if n]
    ctx.op("Conv", inputs, outputs(node), group=node.attr("group", 1), **args)


def _transpose_pads(node, ctx, x: str, kernel, strides, dilations, out_pad):
    """ConvTranspose's (head, tail) pads: given, or from output_shape / SAME (the odd one
    at the head unless SAME_UPPER, ONNX's rule)."""
    nd = len(kernel)
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd) if auto_pad == "VALID" else list(node.attr("pads", [0] * (2 * nd)))
        return pads[:nd], pads[nd:]
    sizes = known_spatial(ctx, x, nd, "output_shape / auto_pad SAME")
    output_shape = list(output_shape)[-nd:] if output_shape is not None else [n * s for n, s in zip(sizes, strides)]
    total = [s * (n - 1) + p + (k - 1) * d + 1 - o for n, s, p, k, d, o
             in zip(sizes, strides, out_pad, kernel, dilations, output_shape)]
    heads = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
    if min(heads) < 0:
        raise Unsupported(f"output_shape {output_shape} needs a negative head pad")
    return heads, [t - h for t, h in zip(total, heads)]


@converter("ConvTranspose")
def _conv_transpose(node, ctx):
    kernel = _filter_kernel(node, ctx, node.input(1))
    nd = len(kernel)
    strides = list(node.attr("strides", [1] * nd))
    dilations = list(node.attr("dilations", [1] * nd))
    out_pad = list(node.attr("output_padding", [0] * nd))
    heads, tails = _transpose_pads(node, ctx, node.input(0), kernel, strides, dilations, out_pad)
    # pycaffe2's adj extends the tail as ONNX's output_padding does, and stands for a
    # negative tail pad too: ONNX's tail t - p becomes tail max(0, t - p) and adj the rest
    net_tails = [t - p for t, p in zip(tails, out_pad)]
    tails = [max(0, t) for t in net_tails]
    adjs = [t - n for t, n in zip(tails, net_tails)]
    if any(a > s for a, s in zip(adjs, strides)):
        raise Unsupported(f"output padding {adjs} past the strides {strides}")
    ctx.op("ConvTranspose", [n for n in node.inputs if n], outputs(node), kernels=kernel, strides=strides,
           dilations=dilations, pads=list(heads) + tails, adjs=adjs, group=node.attr("group", 1))


def _along_axis(node, ctx, op_type: str, **args):
    """Softmax-like ops over one axis (opset 13): pycaffe2's coerce at the last axis is
    exactly that axis; another axis is first swapped with the last."""
    x, y = node.input(0), node.output(0)
    rank = ctx.rank(x)
    axis = node.attr("axis", -1)
    if not -rank <= axis < rank:
        raise Unsupported(f"axis {axis} for rank {rank}")
    axis %= rank
    if axis == rank - 1 or rank == 0:
        ctx.op(op_type, [x], [y], axis=max(rank - 1, 0), **args)
        return
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    a, b = ctx.fresh("swapped"), ctx.fresh(op_type.lower())
    ctx.op("Transpose", [x], [a], axes=perm)
    ctx.op(op_type, [a], [b], axis=rank - 1, **args)
    ctx.op("Transpose", [b], [y], axes=perm)


def _coerced(node, ctx, op_type: str, **args):
    """Before opset 13: X coerced to 2-D at axis (default 1), pycaffe2's own semantics."""
    x, y = node.input(0), node.output(0)
    rank = ctx.rank(x)
    axis = node.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if op_type != "Hardmax":
        ctx.op(op_type, [x], [y], axis=axis, **args)
        return
    flat, hard, shape = ctx.fresh("flat"), ctx.fresh("hard"), ctx.fresh("shape")
    ctx.op("Flatten", [x], [flat], axis=axis)
    ctx.op("Hardmax", [flat], [hard], axis=1)
    ctx.op("Shape", [x], [shape])
    ctx.op("Reshape", [hard, shape], [y, ctx.fresh("old_shape")])


@converter("Softmax", "LogSoftmax", "Hardmax", since=13)
def _softmax13(node, ctx):
    if node.op_type == "Hardmax":
        ctx.op("Hardmax", [node.input(0)], [node.output(0)], axis=node.attr("axis", -1))
    else:
        _along_axis(node, ctx, node.op_type)


@converter("Softmax", "LogSoftmax", "Hardmax")
def _softmax1(node, ctx):
    _coerced(node, ctx, node.op_type)


@converter("Dropout")
def _dropout(node, ctx):
    """Inference: Y = X and a mask of all true (training with ratio > 0 is random)."""
    ratio = node.attr("ratio", 0.5)
    if node.input(1):
        ratio = float(ctx.require(node.input(1), "Dropout's ratio"))
    training = node.input(2) and bool(ctx.require(node.input(2), "Dropout's training_mode"))
    if training and ratio != 0:
        raise Unsupported(f"training-mode Dropout (ratio {ratio}) is random")
    # before opset 7 an is_test=0 Dropout is run for inference too, as ONNX Runtime does
    ctx.op("Dropout", [node.input(0)], outputs(node), is_test=1, ratio=min(max(ratio, 0.0), 1.0))
