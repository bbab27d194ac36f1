"""Inference rules of the moments family (Moments, BatchMoments and their
gradients), and the checks its kernels share with them. Moments' statistics
have X's dims without the reduced axes (1 there with keepdims=1); BatchMoments'
are [C], C read from X by `order`.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.batch_norm import channels, float_x, per_channel
from pycaffe2.schema.inference.normalize import float_input


def moments_axes(x, dtype, axes) -> tuple[int, ...]:
    """The reduced axes, sorted: `axes` checked against X's rank, or all of them."""
    float_input("data", x, dtype)
    if not axes:
        return tuple(range(len(x)))
    bad = [a for a in axes if not 0 <= a < len(x)]
    if bad:
        raise ShapeError(f"axes {list(axes)}: {bad[0]} is out of range [0, {len(x)}) for data {list(x)}")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axes {list(axes)} must be distinct")
    return tuple(sorted(axes))


def moments_shape(x, axes, keepdims: bool) -> tuple[int, ...]:
    """The statistics' shape for reduced (sorted, checked) axes."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def moments_gradient_inputs(dmean, dvariance, x, dtype, mean, axes) -> tuple[int, ...]:
    """Each statistic input holds one element per statistic; returns the reduced axes."""
    axes = moments_axes(x, dtype, axes)
    count = math.prod(moments_shape(x, axes, True))
    for name, shape in (("dmean", dmean), ("dvariance", dvariance), ("mean", mean)):
        if shape is not None and math.prod(shape) != count:
            raise ShapeError(f"{name} has shape {list(shape)} but data {list(x)} reduced over axes "
                             f"{list(axes)} has {count} statistics")
    return axes


def batch_moments_inputs(x, dtype) -> None:
    float_x(x, dtype, 2)


def batch_moments_gradient_inputs(dmu, dvar, x, dtype, order: str) -> None:
    float_x(x, dtype, 2)
    per_channel(x, order, {"dmu": dmu, "dvar": dvar})


@rule("moments_moments")
def moments(op: OpView, inputs: list) -> list:
    """mean and variance: X's dims reduced over axes."""
    x = inputs[0]
    if x is None:
        return [None, None]
    axes = moments_axes(x.shape, x.dtype, op.arg("axes"))
    stats = TensorInfo(moments_shape(x.shape, axes, op.arg("keepdims")), x.dtype)
    return [stats, stats]


@rule("moments_moments_gradient")
def moments_gradient(op: OpView, inputs: list) -> list:
    """ddata is like data."""
    dmean, dvariance, x, mean = inputs
    if x is not None:
        shapes = [None if i is None else i.shape for i in (dmean, dvariance, mean)]
        moments_gradient_inputs(shapes[0], shapes[1], x.shape, x.dtype, shapes[2], op.arg("axes"))
    return [x]


@rule("moments_batch_moments")
def batch_moments(op: OpView, inputs: list) -> list:
    """mu and var are [C]."""
    x = inputs[0]
    if x is None:
        return [None, None]
    batch_moments_inputs(x.shape, x.dtype)
    stats = TensorInfo((channels(x.shape, op.arg("order")),), x.dtype)
    return [stats, stats]


@rule("moments_batch_moments_gradient")
def batch_moments_gradient(op: OpView, inputs: list) -> list:
    """dX is like X."""
    dmu, dvar, x = inputs
    if x is not None:
        batch_moments_gradient_inputs(None if dmu is None else dmu.shape, None if dvar is None else dvar.shape,
                                      x.shape, x.dtype, op.arg("order"))
    return [x]

