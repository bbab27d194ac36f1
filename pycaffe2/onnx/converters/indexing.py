"""ONNX -> pycaffe2 converters of the indexing ops: slices, gathers, scatters, one-hot,
top-k, cumulative sums and products, and the value-dependent selections (Compress,
NonZero, Unique, ReverseSequence). Each maps onto one pycaffe2 op; the bounds, k and
axes that ONNX passes as inputs stay runtime inputs wherever the pycaffe2 op takes them.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.registry import Unsupported, converter


def _present(node) -> list[str]:
    """The node's inputs up to the last one given (omitted optional ones in between stay "")."""
    inputs = list(node.inputs)
    while inputs and not inputs[-1]:
        inputs.pop()
    return inputs


def _outputs(node, ctx) -> list[str]:
    """The node's outputs up to the last one asked for; one it skips gets a fresh name."""
    outputs = list(node.outputs)
    while outputs and not outputs[-1]:
        outputs.pop()
    return [name or ctx.fresh("unused") for name in outputs]


# -- Slice ------------------------------------------------------------------------------------

@converter("Slice", since=10)
def _slice10(node, ctx):
    inputs = _present(node)
    if len(inputs) == 5 and not inputs[3]:  # steps without axes: axes are the leading dims
        starts = ctx.shape(inputs[1])
        count = starts[0] if starts and starts[0] is not None else len(ctx.require(inputs[1], "Slice starts"))
        inputs[3] = ctx.constant(np.arange(count, dtype=np.int64))
    ctx.op("Slice", inputs, node.outputs, bounds="onnx")


@converter("Slice")
def _slice1(node, ctx):
    args = {"starts": node.attr("starts"), "ends": node.attr("ends"), "bounds": "onnx"}
    if node.has_attr("axes"):
        args["axes"] = node.attr("axes")
    ctx.op("Slice", [node.input(0)], node.outputs, **args)


# -- gathers and scatters ---------------------------------------------------------------------

@converter("Gather")
def _gather(node, ctx):
    ctx.op("Gather", node.inputs, node.outputs, axis=node.attr("axis", 0))


@converter("GatherElements")
def _gather_elements(node, ctx):
    ctx.op("GatherElements", node.inputs, node.outputs, axis=node.attr("axis", 0))


@converter("GatherND")
def _gather_nd(node, ctx):
    ctx.op("GatherND", node.inputs, node.outputs, batch_dims=node.attr("batch_dims", 0))


def _reduction(node) -> str:
    reduction = node.attr("reduction", "none")
    if reduction not in ("none", "add", "mul", "max", "min"):
        raise Unsupported(f"reduction '{reduction}' (pycaffe2 has none, add, mul, max, min)")
    return reduction


@converter("ScatterElements", "Scatter")
def _scatter_elements(node, ctx):
    ctx.op("ScatterElements", node.inputs, node.outputs, axis=node.attr("axis", 0), reduction=_reduction(node))


@converter("ScatterND")
def _scatter_nd(node, ctx):
    ctx.op("ScatterND", node.inputs, node.outputs, reduction=_reduction(node))


@converter("TensorScatter")
def _tensor_scatter(node, ctx):
    ctx.op("TensorScatter", _present(node), node.outputs, axis=node.attr("axis", -2),
           mode=node.attr("mode", "linear"))


# -- OneHot, TopK --------------------------------------------------------------------------

@converter("OneHot")
def _one_hot(node, ctx):
    ctx.op("OneHot", node.inputs, node.outputs, axis=node.attr("axis", -1), index_rules="onnx")


def _top_k_args(node) -> dict:
    return {"axis": node.attr("axis", -1), "largest": node.attr("largest", 1), "sorted": node.attr("sorted", 1)}


@converter("TopK", since=10)
def _top_k10(node, ctx):
    ctx.op("TopK", [node.input(0), node.input(1)], _outputs(node, ctx), **_top_k_args(node))


@converter("TopK")
def _top_k1(node, ctx):
    ctx.op("TopK", [node.input(0)], _outputs(node, ctx), k=node.attr("k"), axis=node.attr("axis", -1))


# -- running sums and products ------------------------------------------------------------

@converter("CumSum", "CumProd")
def _cumulative(node, ctx):
    ctx.op(node.op_type, node.inputs, node.outputs, exclusive=node.attr("exclusive", 0),
           reverse=node.attr("reverse", 0))


# -- selections ------------------------------------------------------------------------------

@converter("Compress")
def _compress(node, ctx):
    args = {"axis": node.attr("axis")} if node.has_attr("axis") else {}
    ctx.op("Compress", node.inputs, node.outputs, **args)


@converter("NonZero")
def _non_zero(node, ctx):
    ctx.op("NonZero", node.inputs, node.outputs)


@converter("Unique")
def _unique(node, ctx):
    args = {"axis": node.attr("axis")} if node.has_attr("axis") else {}
    ctx.op("UniqueWithCounts", node.inputs, _outputs(node, ctx), sorted=node.attr("sorted", 1), **args)


@converter("ReverseSequence")
def _reverse_sequence(node, ctx):
    ctx.op("ReverseSequence", node.inputs, node.outputs, batch_axis=node.attr("batch_axis", 1),
           time_axis=node.attr("time_axis", 0))
