"""NumPy kernels of the moments family: Moments (mean and biased variance over
chosen axes) and BatchMoments (per-channel mean and mean square), with their
gradient ops. Shape checks are the schema's (schema/inference/moments.py),
shared with `validate`.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.batch_norm import channels
from pycaffe2.schema.inference.moments import (
    batch_moments_gradient_inputs,
    batch_moments_inputs,
    moments_axes,
    moments_gradient_inputs,
    moments_shape,
)


@register_cpu("Moments")
def moments(x, *, axes, keepdims):
    axes = moments_axes(x.shape, x.dtype.name, axes)
    count = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(invalid="ignore"):  # no elements to reduce: NaN, without NumPy's warning
        mean = np.sum(x, axis=axes, keepdims=True, dtype=np.float64) / count
        variance = np.sum(np.square(x - mean), axis=axes, keepdims=True) / count
    shape = moments_shape(x.shape, axes, keepdims)
    return mean.reshape(shape).astype(x.dtype), variance.reshape(shape).astype(x.dtype)


@register_gradient("Moments")
def make_moments_gradient(g):
    return [g.Op("MomentsGradient", [g.GO(0), g.GO(1), g.I(0), g.O(0)], [g.GI(0)])]


@register_cpu("MomentsGradient")
def moments_gradient(dmean, dvariance, x, mean, *, axes):
    axes = moments_gradient_inputs(dmean.shape, dvariance.shape, x.shape, x.dtype.name, mean.shape, axes)
    kept = moments_shape(x.shape, axes, True)
    dmean, dvariance, mean = (v.reshape(kept).astype(x.dtype) for v in (dmean, dvariance, mean))
    count = x.size // max(1, int(np.prod(kept)))
    dx = (dmean + x.dtype.type(2) * (x - mean) * dvariance) / x.dtype.type(max(count, 1))
    return dx.astype(x.dtype, copy=False)


def _channel_view(x, order):
    """X as [rows, C, inner], the channel in the middle."""
    c = channels(x.shape, order)
    if order == "NHWC":
        return x.reshape(int(np.prod(x.shape[:-1])), c, 1)
    return x.reshape(x.shape[0], c, int(np.prod(x.shape[2:])))


@register_cpu("BatchMoments")
def batch_moments(x, *, order):
    batch_moments_inputs(x.shape, x.dtype.name)
    view = _channel_view(x, order)
    count = view.shape[0] * view.shape[2]
    with np.errstate(invalid="ignore"):  # an empty X gives NaN, as Caffe2's 0 * (1 / 0)
        mu = np.sum(view, axis=(0, 2), dtype=np.float64) / count
        var = np.sum(np.square(view, dtype=np.float64), axis=(0, 2)) / count
    return mu.astype(x.dtype), var.astype(x.dtype)


@register_gradient("BatchMoments")
def make_batch_moments_gradient(g):
    return [g.Op("BatchMomentsGradient", [g.GO(0), g.GO(1), g.I(0)], [g.GI(0)])]


@register_cpu("BatchMomentsGradient")
def batch_moments_gradient(dmu, dvar, x, *, order):
    batch_moments_gradient_inputs(dmu.shape, dvar.shape, x.shape, x.dtype.name, order)
    view = _channel_view(x, order)
    c = view.shape[1]
    count = x.dtype.type(max(1, x.size // max(c, 1)))
    dmu, dvar = (v.reshape(1, c, 1).astype(x.dtype) for v in (dmu, dvar))
    return ((dmu + x.dtype.type(2) * view * dvar) / count).reshape(x.shape).astype(x.dtype, copy=False)
