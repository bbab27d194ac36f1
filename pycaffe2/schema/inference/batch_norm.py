"""Inference rules of the batch_norm family (SpatialBN and the per-channel
statistics ops that synchronize it across devices), and the checks its
kernels share with them.

Outputs keep X's shape and float type; per-channel vectors (scale, bias,
running and saved statistics) are [C] with C read from X by `order`. The
`*_inputs` checks take plain shapes and dtype names (None: unknown), so the
rules (TensorInfo shapes) and the CPU and CUDA kernels (array shapes) raise
the same ShapeError; `float_x`, `channels` and `per_channel` serve the norms
family too. The rules also catch the mode errors Caffe2 raises when an op is
created: SpatialBN's output count against is_test and num_batches > 1
without the sums (or aggregate gradient) inputs.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape
from pycaffe2.schema.inference.activation import FLOAT_TYPES


def shape_of(info):
    return None if info is None else info.shape


def float_x(shape, dtype: str, min_rank: int) -> None:
    """Raise unless X is a float tensor of rank >= min_rank."""
    if dtype not in FLOAT_TYPES:
        raise ShapeError(f"X must be float, got {dtype}")
    if len(shape) < min_rank:
        raise ShapeError(f"X must have rank >= {min_rank}, got {list(shape)}")


def channels(shape, order: str) -> int:
    """X's channel count by `order`."""
    return shape[-1] if order == "NHWC" else shape[1]


def elements(x_shape, shape, count: int, name: str, why: str) -> None:
    """Raise unless input `name` (None: unknown) holds `count` elements; `why` says
    what of X fixes the count."""
    if shape is not None and math.prod(shape) != count:
        raise ShapeError(f"{name} has shape {list(shape)} but X {list(x_shape)} needs {count} "
                         f"elements ({why})")


def per_channel(x_shape, order: str, named: dict) -> None:
    """Raise unless every input in `named` (name -> shape or None) has one element
    per channel of X."""
    count = channels(x_shape, order)
    for name, shape in named.items():
        elements(x_shape, shape, count, name, f"its channels, order {order}")


def multi_batch_inputs(n_inputs: int, is_test: bool, num_batches: int, what: str) -> None:
    """Training over num_batches > 1 batches takes 7 inputs, the last two `what`."""
    if not is_test and num_batches > 1 and n_inputs != 7:
        raise ShapeError(f"num_batches > 1 needs the {what} inputs (7 inputs), got {n_inputs}")


def channel_backprop_stats_inputs(x, dtype, mean, inv_std, dy) -> None:
    float_x(x, dtype, 3)
    same_shape(dy, x, ("dY", "X"))
    per_channel(x, "NCHW", {"mean": mean, "inv_std": inv_std})


def spatial_bn_inputs(x, dtype, params: list, is_test: bool, order: str) -> None:
    """X, then scale, bias, mean, var and (num_batches > 1) sums and sumsq."""
    float_x(x, dtype, 3)
    named = dict(zip(("scale", "bias", "mean", "var", "sums", "sumsq"), params))
    if not is_test:  # empty running statistics are zero-initialised in training
        named = {k: v for k, v in named.items()
                 if not (k in ("mean", "var") and v is not None and math.prod(v) == 0)}
    per_channel(x, order, named)


def spatial_bn_gradient_inputs(x, dtype, scale, dy, stats: list, order: str) -> None:
    """X, scale, dY, then the saved (or running) mean and inv_std (or var) and the aggregates."""
    float_x(x, dtype, 3)
    same_shape(dy, x, ("dY", "X"))
    names = ("scale", "saved_mean", "saved_inv_std", "aggregate_scale_grad", "aggregate_bias_grad")
    per_channel(x, order, dict(zip(names, [scale, *stats])))


def vector(x, count: int | None) -> TensorInfo | None:
    return None if x is None or count is None else TensorInfo((count,), x.dtype)


def channel_vector(op: OpView, x) -> TensorInfo | None:
    """A [C] tensor of X's type (None when X is unknown)."""
    return None if x is None else vector(x, channels(x.shape, op.arg("order", "NCHW")))


@rule("norm_channel_stats")
def channel_stats(op: OpView, inputs: list) -> list:
    """sum and sumsq are [C] of X's type."""
    x = inputs[0]
    if x is not None:
        float_x(x.shape, x.dtype, 3)
    return [channel_vector(op, x)] * 2


@rule("norm_channel_backprop_stats")
def channel_backprop_stats(op: OpView, inputs: list) -> list:
    """scale_grad and bias_grad are [C]; mean and inv_std have C elements, dY X's shape."""
    x = inputs[0]
    if x is not None:
        channel_backprop_stats_inputs(x.shape, x.dtype, *map(shape_of, inputs[1:]))
    return [channel_vector(op, x)] * 2


@rule("norm_spatial_bn")
def spatial_bn(op: OpView, inputs: list) -> list:
    """Y is like X; the running and saved statistics are [C]."""
    is_test = op.arg("is_test", 0)
    if is_test and op.n_outputs != 1:
        raise ShapeError(f"is_test=1 takes 1 output (Y), got {op.n_outputs}")
    if not is_test and op.n_outputs != 5:
        raise ShapeError(f"training (is_test=0) takes 5 outputs, got {op.n_outputs}")
    multi_batch_inputs(op.n_inputs, is_test, op.arg("num_batches", 1), "sums and sumsq")
    x = inputs[0]
    if x is not None:
        spatial_bn_inputs(x.shape, x.dtype, [shape_of(i) for i in inputs[1:]], is_test, op.arg("order"))
    return [x] + [channel_vector(op, x)] * (op.n_outputs - 1)


@rule("norm_spatial_bn_gradient")
def spatial_bn_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dscale and dbias are [C]."""
    multi_batch_inputs(op.n_inputs, op.arg("is_test", 0), op.arg("num_batches", 1),
                       "aggregate scale and bias gradient")
    x = inputs[0]
    if x is not None:
        scale, dy, *stats = map(shape_of, inputs[1:])
        spatial_bn_gradient_inputs(x.shape, x.dtype, scale, dy, stats, op.arg("order"))
    return [x, channel_vector(op, x), channel_vector(op, x)]
