"""Converters of ONNX's pooling ops (MaxPool, AveragePool, LpPool, their Global forms,
MaxUnpool) and LRN. ceil_mode becomes extra tail padding (ONNX's rule: the last window
starts inside X or its head pad), which pycaffe2's pooling leaves out of every window."""
from __future__ import annotations

from pycaffe2.onnx.converters.nn import known_spatial, outputs, window_args
from pycaffe2.onnx.registry import Unsupported, converter


def _ceil_tails(args: dict, sizes, nd: int) -> None:
    """Grow the tail pads so floor-mode output sizes equal ONNX's ceil-mode ones."""
    pads = args["pads"]
    for a in range(nd):
        k, s, d = args["kernels"][a], args["strides"][a], args["dilations"][a]
        head, tail, dilated = pads[a], pads[nd + a], d * (k - 1) + 1
        span = sizes[a] + head + tail - dilated
        out = -(-span // s) + 1
        if (out - 1) * s >= sizes[a] + head:
            out -= 1
        pads[nd + a] += max(0, (out - 1) * s + dilated - (sizes[a] + head + tail))


def pool_args(node, ctx) -> dict:
    x = node.input(0)
    kernel = node.attr("kernel_shape")
    if kernel is None:
        raise Unsupported("no kernel_shape")
    nd = len(kernel)
    args = window_args(node, ctx, list(kernel), x, pool_dilation_in_same=False)
    if node.attr("ceil_mode", 0) and "pads" in args:
        _ceil_tails(args, known_spatial(ctx, x, nd, "ceil_mode"), nd)
    return args


@converter("MaxPool")
def _max_pool(node, ctx):
    args = pool_args(node, ctx)
    names = outputs(node)
    if len(names) > 1:
        ctx.op("MaxPoolWithArgmax", [node.input(0)], names, storage_order=node.attr("storage_order", 0), **args)
    else:
        ctx.op("MaxPool", [node.input(0)], names, **args)


@converter("AveragePool")
def _average_pool(node, ctx):
    """count_include_pad=1 counts the explicit pads but never ceil_mode's extra tail: with
    that extra, the explicit pads become zeros of X (PadImage, 2-D) and nothing else counts."""
    include = node.attr("count_include_pad", 0)
    x = node.input(0)
    explicit = window_args(node, ctx, list(node.attr("kernel_shape", [])), x).get("pads")
    args = pool_args(node, ctx)
    if include and node.attr("ceil_mode", 0) and args.get("pads") != explicit:
        nd = len(args["kernels"])
        if any(explicit):
            if nd != 2:
                raise Unsupported("count_include_pad=1 with ceil_mode and pads beyond 2-D")
            padded = ctx.fresh("padded")
            ctx.op("PadImage", [x], [padded], pads=[explicit[0], explicit[1], explicit[2], explicit[3]])
            x = padded
            args["pads"] = [0] * nd + [t - e for t, e in zip(args["pads"][nd:], explicit[nd:])]
        include = 0
    ctx.op("AveragePool", [x], outputs(node), count_include_pad=include, **args)


@converter("LpPool")
def _lp_pool(node, ctx):
    args = pool_args(node, ctx)
    ctx.op("LpPool", [node.input(0)], outputs(node), p=float(node.attr("p", 2)), **args)


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node, ctx):
    ctx.op(node.op_type[len("Global"):], [node.input(0)], outputs(node), global_pooling=1)


@converter("GlobalLpPool")
def _global_lp_pool(node, ctx):
    ctx.op("LpPool", [node.input(0)], outputs(node), global_pooling=1, p=float(node.attr("p", 2)))


@converter("LRN")
def _lrn(node, ctx):
    ctx.op("LRN", [node.input(0)], outputs(node)[:1], size=node.attr("size"),
           alpha=node.attr("alpha", 1e-4), beta=node.attr("beta", 0.75), bias=node.attr("bias", 1.0))


@converter("MaxUnpool")
def _max_unpool(node, ctx):
    kernel = list(node.attr("kernel_shape"))
    nd = len(kernel)
    args = {"kernels": kernel, "strides": list(node.attr("strides", [1] * nd)),
            "pads": list(node.attr("pads", [0] * (2 * nd)))}
    inputs = [node.input(0), node.input(1)]
    if node.input(2):
        args["output_shape"] = [int(v) for v in ctx.require(node.input(2), "MaxUnpool's output_shape")]
    ctx.op("MaxUnpool", inputs, outputs(node), **args)
