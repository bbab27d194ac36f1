"""Inference rules of the norms family (InstanceNorm, LayerNorm, GroupNorm,
RMSNorm, AffineChannel and their gradients), and the checks its kernels share
with them.

Outputs keep X's shape and float type; per-channel vectors are [C] with C read
from X by `order`, per-example statistics [N, C] (InstanceNorm) or [N, group]
(GroupNorm), LayerNorm's statistics X's dims before axis followed by 1. The
`*_inputs` checks take plain shapes and dtype names (None: unknown), so the
rules and the CPU and CUDA kernels raise the same ShapeError. The rules also
catch the mode errors Caffe2 raises when an op is created: GroupNorm training
with one output and LayerNorm's affine inputs and outputs.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape
from pycaffe2.schema.inference.batch_norm import (
    channel_vector,
    channels,
    elements,
    float_x,
    per_channel,
    shape_of,
)


def per_example(x, named: dict, groups: int) -> None:
    """Raise unless every input in `named` (name -> shape or None) has N * groups elements."""
    for name, shape in named.items():
        elements(x, shape, x[0] * groups, name, f"[N, {groups}]")


def group_count(x, group: int, order: str) -> int:
    """The group count, checked against X's channels."""
    count = channels(x, order)
    if count % group:
        raise ShapeError(f"group {group} does not divide the {count} channels of X {list(x)} "
                         f"(order {order})")
    return group


def instance_norm_inputs(x, dtype, scale, bias, order: str) -> None:
    float_x(x, dtype, 3)
    per_channel(x, order, {"scale": scale, "bias": bias})


def instance_norm_gradient_inputs(x, dtype, scale, bias, dy, saved: list, order: str) -> None:
    """X, scale, bias, dY and, when saved, saved_mean and saved_inv_std."""
    instance_norm_inputs(x, dtype, scale, bias, order)
    same_shape(dy, x, ("dY", "X"))
    per_example(x, dict(zip(("saved_mean", "saved_inv_std"), saved)), channels(x, order))


def group_norm_inputs(x, dtype, gamma, beta, group: int, order: str) -> None:
    float_x(x, dtype, 2)
    group_count(x, group, order)
    per_channel(x, order, {"gamma": gamma, "beta": beta})


def group_norm_gradient_inputs(dy, x, dtype, gamma, beta, mean, inv_std, group: int, order: str) -> None:
    group_norm_inputs(x, dtype, gamma, beta, group, order)
    same_shape(dy, x, ("dY", "X"))
    per_example(x, {"mean": mean, "inv_std": inv_std}, group)


def layer_norm_axis(x, dtype, axis: int) -> int:
    """LayerNorm's first normalized axis, canonical, for a float X of rank >= 2."""
    float_x(x, dtype, 2)
    if not -len(x) <= axis < len(x):
        raise ShapeError(f"axis {axis} is out of range for X of rank {len(x)}")
    return axis % len(x)


def layer_norm_affine(x, axis: int, named: dict) -> None:
    """gamma and beta hold the elements of X's dims from (canonical) axis on."""
    for name, shape in named.items():
        elements(x, shape, math.prod(x[axis:]), name, f"its dims from axis {axis}")


def layer_norm_input_count(n_inputs: int, elementwise_affine: bool) -> None:
    if bool(elementwise_affine) != (n_inputs == 3):
        raise ShapeError(f"elementwise_affine={int(bool(elementwise_affine))} takes "
                         f"{3 if elementwise_affine else 1} input(s), got {n_inputs}")


def layer_norm_inputs(x, dtype, affine: list, axis: int, elementwise_affine: bool) -> int:
    """X and (elementwise_affine=1) gamma and beta; returns the canonical axis."""
    layer_norm_input_count(1 + len(affine), elementwise_affine)
    axis = layer_norm_axis(x, dtype, axis)
    layer_norm_affine(x, axis, dict(zip(("gamma", "beta"), affine)))
    return axis


def layer_norm_gradient_count(n_inputs: int, elementwise_affine: bool, n_outputs: int) -> bool:
    """Whether the gradient uses gamma: elementwise_affine=1 with the gamma input, which
    dgamma and dbeta need."""
    affine = bool(elementwise_affine) and n_inputs == 6
    if n_outputs != 1 and not affine:
        raise ShapeError(f"dgamma and dbeta need elementwise_affine=1 and the gamma input "
                         f"(6 inputs), got elementwise_affine={int(bool(elementwise_affine))} "
                         f"and {n_inputs} inputs")
    return affine


def layer_norm_gradient_inputs(dy, y, mean, std, x, dtype, gamma, axis: int) -> int:
    """dY, Y, mean, std, X and gamma (None when unused); returns the canonical axis."""
    axis = layer_norm_axis(x, dtype, axis)
    for other, name in ((dy, "dY"), (y, "Y")):
        same_shape(other, x, (name, "X"))
    for name, shape in (("mean", mean), ("std", std)):
        elements(x, shape, math.prod(x[:axis]), name, f"its dims before axis {axis}")
    layer_norm_affine(x, axis, {"gamma": gamma})
    return axis


@rule("norm_instance_norm")
def instance_norm(op: OpView, inputs: list) -> list:
    """Y is like X; saved_mean and saved_inv_std are [N, C]."""
    x = inputs[0]
    if x is None:
        return [None] * op.n_outputs
    instance_norm_inputs(x.shape, x.dtype, *map(shape_of, inputs[1:]), op.arg("order"))
    stats = TensorInfo((x.shape[0], channels(x.shape, op.arg("order"))), x.dtype)
    return [x, stats, stats][:op.n_outputs]


@rule("norm_instance_norm_gradient")
def instance_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dscale and dbias are [C]."""
    x = inputs[0]
    if x is not None:
        scale, bias, dy, *saved = map(shape_of, inputs[1:])
        instance_norm_gradient_inputs(x.shape, x.dtype, scale, bias, dy, saved, op.arg("order"))
    return [x, channel_vector(op, x), channel_vector(op, x)]


@rule("norm_layer_norm")
def layer_norm(op: OpView, inputs: list) -> list:
    """Y is like X; mean and std are X's dims before axis followed by 1."""
    affine = op.arg("elementwise_affine", 0)
    layer_norm_input_count(op.n_inputs, affine)
    x = inputs[0]
    if x is None:
        return [None] * 3
    axis = layer_norm_inputs(x.shape, x.dtype, [shape_of(i) for i in inputs[1:]], op.arg("axis"), affine)
    stats = TensorInfo(tuple(x.shape[:axis]) + (1,), x.dtype)
    return [x, stats, stats]


@rule("norm_layer_norm_gradient")
def layer_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dgamma and dbeta are like gamma."""
    affine = layer_norm_gradient_count(op.n_inputs, op.arg("elementwise_affine", 0), op.n_outputs)
    dy, y, mean, std, x = inputs[:5]
    gamma = inputs[5] if affine else None
    if x is not None:
        layer_norm_gradient_inputs(*map(shape_of, (dy, y, mean, std)), x.shape, x.dtype, shape_of(gamma),
                                   op.arg("axis"))
    return [x, gamma, gamma][:op.n_outputs]


@rule("norm_group_norm")
def group_norm(op: OpView, inputs: list) -> list:
    """Y is like X; mean and inv_std are [N, group]."""
    if not op.arg("is_test", 1) and op.n_outputs != 3:
        raise ShapeError(f"training (is_test=0) takes 3 outputs (Y, mean, inv_std), got {op.n_outputs}")
    x = inputs[0]
    if x is None:
        return [None] * op.n_outputs
    group_norm_inputs(x.shape, x.dtype, *map(shape_of, inputs[1:]), op.arg("group"), op.arg("order"))
    stats = TensorInfo((x.shape[0], op.arg("group")), x.dtype)
    return [x, stats, stats][:op.n_outputs]


@rule("norm_group_norm_gradient")
def group_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dgamma and dbeta are [C]."""
    x = inputs[1]
    if x is not None:
        dy, _, gamma, beta, mean, inv_std = map(shape_of, inputs)
        group_norm_gradient_inputs(dy, x.shape, x.dtype, gamma, beta, mean, inv_std, op.arg("group"),
                                   op.arg("order"))
    return [x, channel_vector(op, x), channel_vector(op, x)]


# ---- AffineChannel and RMSNorm --------------------------------------------------------------

def affine_channel_inputs(x, dtype, scale, bias, order: str) -> None:
    float_x(x, dtype, 2)
    per_channel(x, order, {"scale": scale, "bias": bias})


def affine_channel_gradient_count(n_inputs: int, n_outputs: int, is_learnable: bool) -> None:
    """is_learnable=1 takes (dY, X, scale) and gives 3 outputs, else (dY, scale) and 1."""
    want = (3, 3) if is_learnable else (2, 1)
    if (n_inputs, n_outputs) != want:
        raise ShapeError(f"is_learnable={int(bool(is_learnable))} takes {want[0]} inputs and {want[1]} "
                         f"output(s), got {n_inputs} and {n_outputs}")


def affine_channel_gradient_inputs(dy, dtype, x, scale, order: str) -> None:
    """dY, X (None when not learnable or unknown) and scale."""
    float_x(dy, dtype, 2)
    same_shape(x, dy, ("X", "dY"))
    per_channel(dy, order, {"scale": scale})


def rms_norm_inputs(x, dtype, gamma, beta, axis: int) -> int:
    """X, gamma and beta; returns the canonical axis."""
    axis = layer_norm_axis(x, dtype, axis)
    layer_norm_affine(x, axis, {"gamma": gamma, "beta": beta})
    return axis


def rms_norm_gradient_inputs(dy, x, dtype, gamma, rrms, axis: int) -> int:
    axis = layer_norm_axis(x, dtype, axis)
    same_shape(dy, x, ("dY", "X"))
    layer_norm_affine(x, axis, {"gamma": gamma})
    elements(x, rrms, math.prod(x[:axis]), "rrms", f"its dims before axis {axis}")
    return axis


@rule("norm_affine_channel")
def affine_channel(op: OpView, inputs: list) -> list:
    """Y is like X."""
    x = inputs[0]
    if x is not None:
        affine_channel_inputs(x.shape, x.dtype, *map(shape_of, inputs[1:]), op.arg("order"))
    return [x]


@rule("norm_affine_channel_gradient")
def affine_channel_gradient(op: OpView, inputs: list) -> list:
    """dX is like dY; dscale and dbias like scale."""
    learnable = op.arg("is_learnable", 0)
    affine_channel_gradient_count(op.n_inputs, op.n_outputs, learnable)
    dy, scale = inputs[0], inputs[-1]
    if dy is not None:
        x = shape_of(inputs[1]) if learnable else None
        affine_channel_gradient_inputs(dy.shape, dy.dtype, x, shape_of(scale), op.arg("order"))
    return [dy, scale, scale][:op.n_outputs]


@rule("norm_rms_norm")
def rms_norm(op: OpView, inputs: list) -> list:
    """Y is like X; rrms has X's dims before axis."""
    x = inputs[0]
    if x is None:
        return [None, None]
    axis = rms_norm_inputs(x.shape, x.dtype, *map(shape_of, inputs[1:]), op.arg("axis"))
    return [x, TensorInfo(tuple(x.shape[:axis]), x.dtype)]


@rule("norm_rms_norm_gradient")
def rms_norm_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dgamma and dbeta like gamma."""
    dy, x, gamma, rrms = inputs
    if x is not None:
        rms_norm_gradient_inputs(shape_of(dy), x.shape, x.dtype, shape_of(gamma), shape_of(rrms), op.arg("axis"))
    return [x, gamma, gamma]
