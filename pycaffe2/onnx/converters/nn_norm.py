"""Converters of ONNX's normalizations: BatchNormalization (test mode) -> SpatialBN,
InstanceNormalization -> InstanceNorm, LayerNormalization -> LayerNorm (+ its Mean and
InvStdDev reshaped to ONNX's kept dims), RMSNormalization -> RMSNorm,
GroupNormalization -> GroupNorm (opset 18's per-group scale spread over channels),
LpNormalization -> Normalize / NormalizeL1, MeanVarianceNormalization."""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.converters.nn import outputs
from pycaffe2.onnx.registry import Unsupported, converter


def _zeros_like(ctx, name: str, what: str) -> str:
    shape = ctx.shape(name)
    if shape is None or None in shape:
        raise Unsupported(f"{what}: the shape of {name!r} is unknown")
    return ctx.constant(np.zeros(shape, ctx.dtype(name) or np.float32))


@converter("BatchNormalization")
def _batch_norm(node, ctx):
    names = outputs(node)
    if node.attr("training_mode", 0) or len(names) > 1:
        raise Unsupported("training-mode BatchNormalization (running statistics outputs)")
    if not node.attr("spatial", 1) and len(ctx.shape(node.input(1)) or (0,)) != 1:
        raise Unsupported("BatchNormalization spatial=0 with per-activation statistics")
    x, epsilon = node.input(0), node.attr("epsilon", 1e-5)
    if ctx.rank(x) >= 3:
        ctx.op("SpatialBN", node.inputs[:5], names, is_test=1, epsilon=epsilon)
        return
    # SpatialBN takes [N, C, ...]: a [N, C] (or [C]) X gets a trailing axis for it
    wide, normed = ctx.fresh("bn_in"), ctx.fresh("bn_out")
    ctx.op("ExpandDims", [x], [wide], dims=[ctx.rank(x)] if ctx.rank(x) == 2 else [0, 2])
    ctx.op("SpatialBN", [wide, *node.inputs[1:5]], [normed], is_test=1, epsilon=epsilon)
    ctx.op("Squeeze", [normed], names, dims=[2] if ctx.rank(x) == 2 else [0, 2])


@converter("InstanceNormalization")
def _instance_norm(node, ctx):
    ctx.op("InstanceNorm", node.inputs[:3], outputs(node)[:1], epsilon=node.attr("epsilon", 1e-5))


def _canonical_axis(ctx, x: str, axis: int) -> tuple[int, int]:
    rank = ctx.rank(x)
    if not -rank <= axis < rank:
        raise Unsupported(f"axis {axis} for an X of rank {rank}")
    return rank, axis % rank


def _reshape_stat(ctx, src: str, dst: str, rank: int, axis: int) -> None:
    """A [dims before axis..., 1] statistic as ONNX's [dims before axis..., 1, ..., 1]
    (Reshape's 0 keeps a dim, so unknown batch dims stay static)."""
    ctx.op("Reshape", [src], [dst], shape=[0] * axis + [1] * (rank - axis))


@converter("LayerNormalization")
def _layer_norm(node, ctx):
    x = node.input(0)
    rank, axis = _canonical_axis(ctx, x, node.attr("axis", -1))
    bias = node.input(2) or _zeros_like(ctx, node.input(1), "LayerNormalization without B")
    names = outputs(node)
    mean, std = ctx.fresh("mean"), ctx.fresh("std")
    ctx.op("LayerNorm", [x, node.input(1), bias], [names[0], mean, std], axis=axis,
           epsilon=node.attr("epsilon", 1e-5), elementwise_affine=1)
    if len(names) > 1 and names[1]:
        _reshape_stat(ctx, mean, names[1], rank, axis)
    if len(names) > 2 and names[2]:
        inv = ctx.fresh("inv_std")
        ctx.op("Reciprocal", [std], [inv])
        _reshape_stat(ctx, inv, names[2], rank, axis)


@converter("RMSNormalization")
def _rms_norm(node, ctx):
    x = node.input(0)
    _, axis = _canonical_axis(ctx, x, node.attr("axis", -1))
    beta = _zeros_like(ctx, node.input(1), "RMSNormalization's zero bias")
    ctx.op("RMSNorm", [x, node.input(1), beta], [node.output(0), ctx.fresh("rrms")], axis=axis,
           eps=node.attr("epsilon", 1e-5))


@converter("GroupNormalization")
def _group_norm(node, ctx):
    x, scale, bias = node.inputs[:3]
    groups = node.attr("num_groups")
    channels = ctx.shape(x)[1] if ctx.shape(x) else None
    if node.opset < 21 and channels != groups:  # opset 18: scale and bias per group
        if channels is None:
            raise Unsupported("GroupNormalization-18 on an X of unknown channels")
        per = channels // groups
        scale = ctx.constant(np.repeat(ctx.require(scale, "GroupNormalization's scale"), per))
        bias = ctx.constant(np.repeat(ctx.require(bias, "GroupNormalization's bias"), per))
    ctx.op("GroupNorm", [x, scale, bias], outputs(node)[:1], group=groups,
           epsilon=node.attr("epsilon", 1e-5))


@converter("LpNormalization")
def _lp_normalization(node, ctx):
    p = node.attr("p", 2)
    if p not in (1, 2):
        raise Unsupported(f"p {p} (pycaffe2 has L1 and L2)")
    ctx.op("Normalize" if p == 2 else "NormalizeL1", [node.input(0)], [node.output(0)],
           axis=node.attr("axis", -1))


@converter("MeanVarianceNormalization")
def _mvn(node, ctx):
    ctx.op("MeanVarianceNormalization", [node.input(0)], [node.output(0)],
           axes=list(node.attr("axes", [0, 2, 3])))
