"""Inference rules of the normalization family.

Outputs keep X's shape and float type; per-channel vectors (scale, bias,
running and saved statistics) are [C] with C read from X by `order`, and
per-example statistics are [N, C] (InstanceNorm) or [N, group] (GroupNorm).
A known per-channel input must hold C elements; gradient inputs that pair up
element by element with X must have X's shape. The rules also catch the mode
errors Caffe2 raises when an op is created: SpatialBN's output count against
is_test, num_batches > 1 without the sums inputs, GroupNorm training with
one output and LayerNorm's affine inputs.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.nn import canonical_axis, check_same_shape


def check_x(op: OpView, x, min_rank: int = 3) -> None:
    """Raise unless a known X is a float tensor of rank >= min_rank."""
    if x is None:
        return
    if x.dtype not in FLOAT_TYPES:
        raise ShapeError(f"{op.type}: X must be float, got {x.dtype}")
    if len(x.shape) < min_rank:
        raise ShapeError(f"{op.type}: X must have rank >= {min_rank}, got {list(x.shape)}")


def channels(op: OpView, x) -> int | None:
    """X's channel count by `order` (NCHW when the op has no order arg)."""
    if x is None:
        return None
    return x.shape[-1] if op.arg("order", "NCHW") == "NHWC" else x.shape[1]


def check_elements(op: OpView, info, count: int | None, name: str, what: str) -> None:
    """Raise unless a known `info` holds `count` elements (`what` says why)."""
    if info is not None and count is not None and math.prod(info.shape) != count:
        raise ShapeError(f"{op.type}: {name} must have {count} elements ({what}), "
                         f"got {list(info.shape)}")


def per_channel(op: OpView, x, named: dict) -> None:
    """Raise unless every known tensor in `named` has one element per channel of X."""
    count = channels(op, x)
    for name, info in named.items():
        check_elements(op, info, count, name, f"X's channels, order {op.arg('order', 'NCHW')}")


def vector(x, count: int | None) -> TensorInfo | None:
    return None if x is None or count is None else TensorInfo((count,), x.dtype)


@rule("norm_channel_stats")
def channel_stats(op: OpView, inputs: list) -> list:
    """sum and sumsq are [C] of X's type."""
    x = inputs[0]
    check_x(op, x)
    return [vector(x, channels(op, x))] * 2


@rule("norm_channel_backprop_stats")
def channel_backprop_stats(op: OpView, inputs: list) -> list:
    """scale_grad and bias_grad are [C]; mean and inv_std have C elements, dY X's shape."""
    x, mean, inv_std, dy = inputs
    check_x(op, x)
    per_channel(op, x, {"mean": mean, "inv_std": inv_std})
    check_same_shape(op, x, dy, ("X", "dY"))
    return [vector(x, channels(op, x))] * 2


@rule("norm_spatial_bn")
def spatial_bn(op: OpView, inputs: list) -> list:
    """Y is like X; the running and saved statistics are [C]."""
    is_test = op.arg("is_test", 0)
    if is_test and op.n_outputs != 1:
        raise ShapeError(f"{op.type}: is_test=1 takes 1 output (Y), got {op.n_outputs}")
    if not is_test and op.n_outputs != 5:
        raise ShapeError(f"{op.type}: training (is_test=0) takes 5 outputs, got {op.n_outputs}")
    if not is_test and op.arg("num_batches", 1) > 1 and op.n_inputs != 7:
        raise ShapeError(f"{op.type}: num_batches > 1 needs the sums and sumsq inputs (7 inputs), "
                         f"got {op.n_inputs}")
    x = inputs[0]
    check_x(op, x)
    named = dict(zip(("scale", "bias", "mean", "var", "sums", "sumsq"), inputs[1:]))
    if not is_test:  # empty running statistics are zero-initialised in training
        named = {k: v for k, v in named.items()
                 if not (k in ("mean", "var") and v is not None and math.prod(v.shape) == 0)}
    per_channel(op, x, named)
    return [x] + [vector(x, channels(op, x))] * (op.n_outputs - 1)


@rule("norm_spatial_bn_gradient")
def spatial_bn_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dscale and dbias are [C]."""
    x, dy = inputs[0], inputs[2]
    check_x(op, x)
    check_same_shape(op, x, dy, ("X", "dY"))
    names = ("scale", "saved_mean", "saved_inv_std", "aggregate_scale_grad", "aggregate_bias_grad")
    per_channel(op, x, dict(zip(names, [inputs[1], *inputs[3:]])))
    return [x, vector(x, channels(op, x)), vector(x, channels(op, x))]


def per_example(op: OpView, x, named: dict, groups: int | None) -> None:
    """Raise unless every known tensor in `named` has N * groups elements."""
    if x is None or groups is None:
        return
    for name, info in named.items():
        check_elements(op, info, x.shape[0] * groups, name, f"[N, {groups}] for X {list(x.shape)}")


@rule("norm_instance_norm")
def instance_norm(op: OpView, inputs: list) -> list:
    """Y is like X; saved_mean and saved_inv_std are [N, C]."""
    x = inputs[0]
    check_x(op, x)
    per_channel(op, x, {"scale": inputs[1], "bias": inputs[2]})
    stats = None if x is None else TensorInfo((x.shape[0], channels(op, x)), x.dtype)
    return [x, stats, stats][:op.n_outputs]


@rule("norm_instance_norm_gradient")
def instance_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dscale and dbias are [C]."""
    x, dy = inputs[0], inputs[3]
    check_x(op, x)
    check_same_shape(op, x, dy, ("X", "dY"))
    per_channel(op, x, {"scale": inputs[1], "bias": inputs[2]})
    per_example(op, x, dict(zip(("saved_mean", "saved_inv_std"), inputs[4:])), channels(op, x))
    return [x, vector(x, channels(op, x)), vector(x, channels(op, x))]


def _layer_norm_axis(op: OpView, x) -> int | None:
    if x is None:
        return None
    check_x(op, x, min_rank=2)
    return canonical_axis(op, op.arg("axis", 1), len(x.shape))


@rule("norm_layer_norm")
def layer_norm(op: OpView, inputs: list) -> list:
    """Y is like X; mean and std are X's dims before axis followed by 1."""
    affine = op.arg("elementwise_affine", 0)
    if bool(affine) != (op.n_inputs == 3):
        raise ShapeError(f"{op.type}: elementwise_affine={int(bool(affine))} takes "
                         f"{3 if affine else 1} input(s), got {op.n_inputs}")
    x = inputs[0]
    axis = _layer_norm_axis(op, x)
    if axis is None:
        return [None] * 3
    inner = math.prod(x.shape[axis:])
    for name, info in zip(("gamma", "beta"), inputs[1:]):
        check_elements(op, info, inner, name, f"X's dims from axis {axis} of {list(x.shape)}")
    stats = TensorInfo(tuple(x.shape[:axis]) + (1,), x.dtype)
    return [x, stats, stats]


@rule("norm_layer_norm_gradient")
def layer_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dgamma and dbeta are like gamma."""
    dy, y, mean, std, x = inputs[:5]
    gamma = inputs[5] if len(inputs) > 5 else None
    if op.n_outputs == 3 and op.n_inputs != 6:
        raise ShapeError(f"{op.type}: dgamma and dbeta need the gamma input (6 inputs), "
                         f"got {op.n_inputs}")
    for other, name in ((dy, "dY"), (y, "Y")):
        check_same_shape(op, x, other, ("X", name))
    axis = _layer_norm_axis(op, x)
    if axis is not None:
        outer = math.prod(x.shape[:axis])
        for name, info in (("mean", mean), ("std", std)):
            check_elements(op, info, outer, name, f"X's dims before axis {axis} of {list(x.shape)}")
        check_elements(op, gamma, math.prod(x.shape[axis:]), "gamma",
                       f"X's dims from axis {axis} of {list(x.shape)}")
    return [x, gamma, gamma][:op.n_outputs]


def _groups(op: OpView, x) -> int | None:
    """The group count, checked against X's channels."""
    group, count = op.arg("group", 32), channels(op, x)
    if count is not None and count % group:
        raise ShapeError(f"{op.type}: group {group} does not divide X's {count} channels "
                         f"(X {list(x.shape)}, order {op.arg('order', 'NCHW')})")
    return group


@rule("norm_group_norm")
def group_norm(op: OpView, inputs: list) -> list:
    """Y is like X; mean and inv_std are [N, group]."""
    if not op.arg("is_test", 1) and op.n_outputs != 3:
        raise ShapeError(f"{op.type}: training (is_test=0) takes 3 outputs (Y, mean, inv_std), "
                         f"got {op.n_outputs}")
    x = inputs[0]
    check_x(op, x, min_rank=2)
    group = _groups(op, x)
    per_channel(op, x, {"gamma": inputs[1], "beta": inputs[2]})
    stats = None if x is None else TensorInfo((x.shape[0], group), x.dtype)
    return [x, stats, stats][:op.n_outputs]


@rule("norm_group_norm_gradient")
def group_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dgamma and dbeta are [C]."""
    dy, x = inputs[0], inputs[1]
    check_x(op, x, min_rank=2)
    check_same_shape(op, x, dy, ("X", "dY"))
    group = _groups(op, x)
    per_channel(op, x, {"gamma": inputs[2], "beta": inputs[3]})
    per_example(op, x, {"mean": inputs[4], "inv_std": inputs[5]}, group)
    return [x, vector(x, channels(op, x)), vector(x, channels(op, x))]
