"""Instance, layer, group and RMS normalization and AffineChannel kernels (NumPy) and
their gradient ops.

InstanceNorm and GroupNorm normalize a [N, G, K, HxW] (NCHW) or [N, HxW, G, K]
(NHWC) view of X over its K and HxW axes (InstanceNorm is the case K = 1);
LayerNorm and RMSNorm normalize the rows of X split before `axis`;
AffineChannel is a per-channel Y = X * scale + bias. Every op but RMSNorm also has a
CUDA launcher (row kernels in norms.cu; per-channel parameter gradients from
batch_norm's partial sums), at the end of this module. Shape checks are the
schema's (schema/inference/norms.py), shared with `validate`.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.batch_norm import affine_grads, cuda_layout, on_cpu
from pycaffe2.operators.registry import GradientError, register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference.batch_norm import channels
from pycaffe2.schema.inference.norms import (
    affine_channel_gradient_count,
    affine_channel_gradient_inputs,
    affine_channel_inputs,
    group_norm_gradient_inputs,
    group_norm_inputs,
    instance_norm_gradient_inputs,
    instance_norm_inputs,
    layer_norm_gradient_count,
    layer_norm_gradient_inputs,
    layer_norm_inputs,
    rms_norm_gradient_inputs,
    rms_norm_inputs,
)

# ---- InstanceNorm / GroupNorm: normalization over groups of channels ----------------------

def _group_view(x, groups, order):
    """X as [N, G, K, HxW] (NCHW) or [N, HxW, G, K] (NHWC), and its statistics axes."""
    n, c = x.shape[0], channels(x.shape, order)
    if order == "NHWC":
        return x.reshape(n, math.prod(x.shape[1:-1]), groups, c // groups), (1, 3)
    return x.reshape(n, groups, c // groups, math.prod(x.shape[2:])), (2, 3)


def _channel_param(p, view, order):
    """A per-channel vector shaped to broadcast over a group view."""
    p = p.astype(view.dtype, copy=False)
    return p.reshape(1, 1, *view.shape[2:]) if order == "NHWC" else p.reshape(1, *view.shape[1:3], 1)


def _group_moments(view, axes, epsilon):
    """Mean and inverse std over `axes` (kept), two-pass, in the view's dtype."""
    mean = view.mean(axis=axes, keepdims=True)
    centered = view - mean
    var = np.mean(np.square(centered), axis=axes, keepdims=True)
    return mean, (1 / np.sqrt(var + epsilon)).astype(view.dtype), centered


def _group_forward(x, gamma, beta, groups, epsilon, order):
    c = channels(x.shape, order)
    view, axes = _group_view(x, groups, order)
    mean, inv_std, centered = _group_moments(view, axes, epsilon)
    y = centered * inv_std
    y *= _channel_param(gamma.reshape(c), view, order)
    y += _channel_param(beta.reshape(c), view, order)
    n = x.shape[0]
    return y.reshape(x.shape), mean.reshape(n, groups), inv_std.reshape(n, groups)


def _group_backward(x, dy, gamma, mean, inv_std, groups, order):
    """dX, dgamma, dbeta of Y = (X - mean) * inv_std * gamma + beta per group."""
    c, n = channels(x.shape, order), x.shape[0]
    gamma = gamma.reshape(c)
    view, axes = _group_view(x, groups, order)
    dy_view = dy.reshape(view.shape)
    stat_shape = [n, groups, 1, 1] if order == "NCHW" else [n, 1, groups, 1]
    mean, inv_std = (s.reshape(stat_shape).astype(x.dtype) for s in (mean, inv_std))
    xhat = (view - mean) * inv_std
    g = dy_view * _channel_param(gamma, view, order)
    # dX = inv_std * (g - mean(g) - xhat * mean(g * xhat)), means over each group.
    dx = g - g.mean(axis=axes, keepdims=True) - xhat * np.mean(g * xhat, axis=axes, keepdims=True)
    dx *= inv_std
    sum_axes = (0, 3) if order == "NCHW" else (0, 1)
    dgamma = np.sum(dy_view * xhat, axis=sum_axes).reshape(c)
    return dx.reshape(x.shape), dgamma, dy_view.sum(axis=sum_axes).reshape(c)


@register_cpu("InstanceNorm")
def instance_norm(x, scale, bias, *, epsilon, order):
    instance_norm_inputs(x.shape, x.dtype.name, scale.shape, bias.shape, order)
    return _group_forward(x, scale, bias, channels(x.shape, order), epsilon, order)


@register_gradient("InstanceNorm")
def make_instance_norm_gradient(g):
    saved = [g.O(i) for i in range(1, len(g.op.output))]  # any not saved are recomputed
    return [g.Op("InstanceNormGradient", [g.I(0), g.I(1), g.I(2), g.GO(0), *saved],
                 [g.GI(0), g.GI(1), g.GI(2)])]


def _check_instance_norm_gradient(x, scale, bias, dy, saved, order):
    instance_norm_gradient_inputs(x.shape, x.dtype.name, scale.shape, bias.shape, dy.shape,
                                  [s.shape for s in saved], order)


@register_cpu("InstanceNormGradient")
def instance_norm_gradient(x, scale, bias, dy, *saved, epsilon, order):
    _check_instance_norm_gradient(x, scale, bias, dy, saved, order)
    c = channels(x.shape, order)
    if len(saved) < 2:  # the statistics were not saved: recompute them
        view, axes = _group_view(x, c, order)
        mean, inv_std, _ = _group_moments(view, axes, epsilon)
        saved = (mean, inv_std)
    return _group_backward(x, dy, scale, *saved, c, order)


@register_cpu("GroupNorm")
def group_norm(x, gamma, beta, *, group, epsilon, order):
    group_norm_inputs(x.shape, x.dtype.name, gamma.shape, beta.shape, group, order)
    return _group_forward(x, gamma, beta, group, epsilon, order)


@register_gradient("GroupNorm")
def make_group_norm_gradient(g):
    if len(g.op.output) < 3:
        raise GradientError("its gradient needs the mean and inv_std outputs "
                            "(run it with is_test=0 and 3 outputs)")
    return [g.Op("GroupNormGradient", [g.GO(0), g.I(0), g.I(1), g.I(2), g.O(1), g.O(2)],
                 [g.GI(0), g.GI(1), g.GI(2)])]


def _check_group_norm_gradient(dy, x, gamma, beta, mean, inv_std, group, order):
    group_norm_gradient_inputs(dy.shape, x.shape, x.dtype.name, gamma.shape, beta.shape, mean.shape,
                               inv_std.shape, group, order)


@register_cpu("GroupNormGradient")
def group_norm_gradient(dy, x, gamma, beta, mean, inv_std, *, group, order):
    _check_group_norm_gradient(dy, x, gamma, beta, mean, inv_std, group, order)
    return _group_backward(x, dy, gamma, mean, inv_std, group, order)


# ---- LayerNorm -----------------------------------------------------------------------------

def _rows(x, axis):
    """X's [outer, inner] shape split before (canonical) `axis`. Shapes only: PyCUDA
    cannot reshape an empty GPUArray."""
    return math.prod(x.shape[:axis]), math.prod(x.shape[axis:])


def _check_layer_norm(x, affine, axis, elementwise_affine):
    """LayerNorm's canonical axis, its inputs checked (either device)."""
    return layer_norm_inputs(x.shape, x.dtype.name, [p.shape for p in affine], axis, elementwise_affine)


@register_cpu("LayerNorm")
def layer_norm(x, *affine, axis, epsilon, elementwise_affine):
    axis = _check_layer_norm(x, affine, axis, elementwise_affine)
    view = x.reshape(_rows(x, axis))
    mean = view.mean(axis=1, keepdims=True)
    y = view - mean
    std = np.sqrt(np.mean(np.square(y), axis=1, keepdims=True) + x.dtype.type(epsilon))
    y /= std
    if elementwise_affine:
        gamma, beta = (p.reshape(view.shape[1]).astype(x.dtype, copy=False) for p in affine)
        y *= gamma
        y += beta
    stat_shape = x.shape[:axis] + (1,)
    return y.reshape(x.shape), mean.reshape(stat_shape), std.reshape(stat_shape)


@register_gradient("LayerNorm")
def make_layer_norm_gradient(g):
    if len(g.op.output) < 3:
        raise GradientError("its gradient reads the mean and std outputs; this op writes "
                            "only Y (give it three outputs to train through it)")
    inputs = [g.GO(0), g.O(0), g.O(1), g.O(2), g.I(0)]
    if g.arg("elementwise_affine"):
        return [g.Op("LayerNormGradient", [*inputs, g.I(1)], [g.GI(0), g.GI(1), g.GI(2)])]
    return [g.Op("LayerNormGradient", inputs, [g.GI(0)])]


def _check_layer_norm_gradient(dy, y, mean, std, x, gamma, elementwise_affine, axis, num_outputs):
    """LayerNormGradient's canonical axis and gamma (None when unused), its inputs checked
    (either device)."""
    affine = layer_norm_gradient_count(5 + len(gamma), elementwise_affine, num_outputs)
    gamma = gamma[0] if affine else None
    axis = layer_norm_gradient_inputs(dy.shape, y.shape, mean.shape, std.shape, x.shape, x.dtype.name,
                                      None if gamma is None else gamma.shape, axis)
    return axis, gamma


@register_cpu("LayerNormGradient")
def layer_norm_gradient(dy, y, mean, std, x, *gamma, axis, elementwise_affine, num_outputs):
    axis, gamma = _check_layer_norm_gradient(dy, y, mean, std, x, gamma, elementwise_affine, axis,
                                             num_outputs)
    outer, inner = _rows(x, axis)
    view = x.reshape(outer, inner)
    xhat = (view - mean.reshape(outer, 1)) / std.reshape(outer, 1)
    dy_view = dy.reshape(view.shape)
    g = dy_view if gamma is None else dy_view * gamma.reshape(inner).astype(x.dtype, copy=False)
    # dX = (g - mean(g) - xhat * mean(g * xhat)) / std, means over each row.
    dx = g - g.mean(axis=1, keepdims=True) - xhat * np.mean(g * xhat, axis=1, keepdims=True)
    dx /= std.reshape(outer, 1)
    if num_outputs == 1:
        return (dx.reshape(x.shape),)
    dgamma, dbeta = (dy_view * xhat).sum(axis=0), dy_view.sum(axis=0)
    return dx.reshape(x.shape), dgamma.reshape(gamma.shape), dbeta.reshape(gamma.shape)


# ---- CUDA launchers (norms.cu) -------------------------------------------------------------
# One block per normalized row (group_norm_rows in norms.cu) computes the statistics and Y;
# the gradient's row kernel gives dX and writes xhat, whose per-channel sums with dY (the
# SpatialBN partials of batch_norm.cu) are dgamma and dbeta. An empty X runs the CPU kernel
# on host copies.

_SOURCE = "norms.cu"


def _group_geometry(x, groups, order):
    """(rows, G, L, seg, stride, K, pdiv) of the row kernels for groups of X's channels."""
    n, c = x.shape[0], channels(x.shape, order)
    k = c // groups
    spatial = x.size // (n * c)
    length = k * spatial
    if order == "NHWC":
        return n * groups, groups, length, k, c, k, 1
    return n * groups, groups, length, length, length, k, spatial


def _layer_geometry(outer, inner):
    return outer, 1, inner, inner, inner, inner, 1


def _norm_rows(x, gamma, beta, y, stat_shape, geometry, epsilon, save_std):
    """Row statistics (mean, inv_std or std) of X, and Y when y is not NULL."""
    mean, stat = cuda.empty(stat_shape), cuda.empty(stat_shape)
    cuda.launch_rows(_SOURCE, "group_norm_rows", geometry[0], x, gamma, beta, y, mean, stat,
                     *map(np.int64, geometry), np.float64(epsilon), np.int64(save_std))
    return mean, stat


def _norm_gradient_rows(x, dy, gamma, mean, stat, geometry, stat_is_std, want_xhat):
    """dX, and xhat (X's shape) when want_xhat."""
    dx = cuda.empty_like(x)
    xhat = cuda.empty_like(x) if want_xhat else cuda.NULL
    cuda.launch_rows(_SOURCE, "group_norm_gradient_rows", geometry[0], x, dy, gamma, mean, stat,
                     dx, xhat, *map(np.int64, geometry), np.int64(stat_is_std))
    return dx, xhat


@register_cuda("LayerNorm")
def layer_norm_cuda(x, *affine, axis, epsilon, elementwise_affine):
    x, *affine = cuda.float32_inputs(x, *affine)
    axis = _check_layer_norm(x, affine, axis, elementwise_affine)
    if x.size == 0:
        return on_cpu(partial(layer_norm, axis=axis, epsilon=epsilon,
                              elementwise_affine=elementwise_affine), [x, *affine])
    y = cuda.empty_like(x)
    params = affine if elementwise_affine else (cuda.NULL, cuda.NULL)
    mean, std = _norm_rows(x, *params, y, x.shape[:axis] + (1,), _layer_geometry(*_rows(x, axis)),
                           epsilon, save_std=1)
    return y, mean, std


@register_cuda("LayerNormGradient")
def layer_norm_gradient_cuda(dy, y, mean, std, x, *gamma, axis, elementwise_affine, num_outputs):
    dy, y, mean, std, x, *gamma = cuda.float32_inputs(dy, y, mean, std, x, *gamma)
    canonical, used_gamma = _check_layer_norm_gradient(dy, y, mean, std, x, gamma, elementwise_affine, axis,
                                                       num_outputs)
    if x.size == 0:
        return on_cpu(partial(layer_norm_gradient, axis=axis, elementwise_affine=elementwise_affine,
                              num_outputs=num_outputs), [dy, y, mean, std, x, *gamma])
    outer, inner = _rows(x, canonical)
    dx, xhat = _norm_gradient_rows(x, dy, cuda.NULL if used_gamma is None else used_gamma, mean, std,
                                   _layer_geometry(outer, inner), 1, num_outputs > 1)
    if num_outputs == 1:
        return (dx,)
    dgamma, dbeta = affine_grads(xhat, dy, (outer, inner, 1))
    return dx, dgamma.reshape(used_gamma.shape), dbeta.reshape(used_gamma.shape)


def _group_forward_cuda(x, gamma, beta, groups, epsilon, order, cpu):
    if x.size == 0:
        return on_cpu(cpu, [x, gamma, beta])
    y = cuda.empty_like(x)
    mean, inv_std = _norm_rows(x, gamma, beta, y, (x.shape[0], groups), _group_geometry(x, groups, order),
                               epsilon, save_std=0)
    return y, mean, inv_std


def _group_backward_cuda(x, dy, gamma, mean, inv_std, groups, order):
    geometry = _group_geometry(x, groups, order)
    dx, xhat = _norm_gradient_rows(x, dy, gamma, mean, inv_std, geometry, 0, True)
    return dx, *affine_grads(xhat, dy, cuda_layout(x, order))


@register_cuda("InstanceNorm")
def instance_norm_cuda(x, scale, bias, *, epsilon, order):
    x, scale, bias = cuda.float32_inputs(x, scale, bias)
    instance_norm_inputs(x.shape, x.dtype.name, scale.shape, bias.shape, order)
    return _group_forward_cuda(x, scale, bias, channels(x.shape, order), epsilon, order,
                               partial(instance_norm, epsilon=epsilon, order=order))


@register_cuda("InstanceNormGradient")
def instance_norm_gradient_cuda(x, scale, bias, dy, *saved, epsilon, order):
    x, scale, bias, dy, *saved = cuda.float32_inputs(x, scale, bias, dy, *saved)
    _check_instance_norm_gradient(x, scale, bias, dy, saved, order)
    if x.size == 0:
        return on_cpu(partial(instance_norm_gradient, epsilon=epsilon, order=order),
                      [x, scale, bias, dy, *saved])
    c = channels(x.shape, order)
    if len(saved) < 2:  # the statistics were not saved: recompute them (no Y)
        saved = _norm_rows(x, cuda.NULL, cuda.NULL, cuda.NULL, (x.shape[0], c),
                           _group_geometry(x, c, order), epsilon, save_std=0)
    return _group_backward_cuda(x, dy, scale, *saved, c, order)


@register_cuda("GroupNorm")
def group_norm_cuda(x, gamma, beta, *, group, epsilon, order):
    x, gamma, beta = cuda.float32_inputs(x, gamma, beta)
    group_norm_inputs(x.shape, x.dtype.name, gamma.shape, beta.shape, group, order)
    return _group_forward_cuda(x, gamma, beta, group, epsilon, order,
                               partial(group_norm, group=group, epsilon=epsilon, order=order))


@register_cuda("GroupNormGradient")
def group_norm_gradient_cuda(dy, x, gamma, beta, mean, inv_std, *, group, order):
    dy, x, gamma, beta, mean, inv_std = cuda.float32_inputs(dy, x, gamma, beta,
                                                            mean, inv_std)
    _check_group_norm_gradient(dy, x, gamma, beta, mean, inv_std, group, order)
    if x.size == 0:
        return on_cpu(partial(group_norm_gradient, group=group, order=order),
                      [dy, x, gamma, beta, mean, inv_std])
    return _group_backward_cuda(x, dy, gamma, mean, inv_std, group, order)


# ---- AffineChannel and RMSNorm -------------------------------------------------------------

def _per_channel(p, x, order):
    """A [C] vector shaped to broadcast over X in `order`."""
    c = channels(x.shape, order)
    return p.reshape(c) if order == "NHWC" else p.reshape(1, c, *[1] * (x.ndim - 2))


def _check_affine_channel(x, scale, bias, order, is_learnable, input_names, output_names):
    affine_channel_inputs(x.shape, x.dtype.name, scale.shape, bias.shape, order)
    if is_learnable and input_names[0] == output_names[0]:
        raise ValueError("in place (Y the X blob) is not supported with is_learnable=1, "
                         "whose gradient reads X")


@register_cpu("AffineChannel")
def affine_channel(x, scale, bias, *, order, is_learnable, input_names, output_names):
    _check_affine_channel(x, scale, bias, order, is_learnable, input_names, output_names)
    return (x * _per_channel(scale, x, order) + _per_channel(bias, x, order)).astype(x.dtype, copy=False)


@register_gradient("AffineChannel")
def make_affine_channel_gradient(g):
    if g.arg("is_learnable"):
        return [g.Op("AffineChannelGradient", [g.GO(0), g.I(0), g.I(1)], [g.GI(0), g.GI(1), g.GI(2)])]
    return [g.Op("AffineChannelGradient", [g.GO(0), g.I(1)], [g.GI(0)])]


def _check_affine_channel_gradient(dy, rest, order, is_learnable, num_outputs):
    """(X or None, scale), checked."""
    affine_channel_gradient_count(1 + len(rest), num_outputs, is_learnable)
    x, scale = (rest[0], rest[1]) if is_learnable else (None, rest[0])
    affine_channel_gradient_inputs(dy.shape, dy.dtype.name, None if x is None else x.shape, scale.shape, order)
    return x, scale


@register_cpu("AffineChannelGradient")
def affine_channel_gradient(dy, *rest, order, is_learnable, num_outputs):
    x, scale = _check_affine_channel_gradient(dy, rest, order, is_learnable, num_outputs)
    dx = (dy * _per_channel(scale, dy, order)).astype(dy.dtype, copy=False)
    if x is None:
        return (dx,)
    axes = tuple(a for a in range(dy.ndim) if a != (dy.ndim - 1 if order == "NHWC" else 1))
    dscale = np.sum(dy * x, axis=axes, dtype=np.float64).astype(dy.dtype).reshape(scale.shape)
    dbias = np.sum(dy, axis=axes, dtype=np.float64).astype(dy.dtype).reshape(scale.shape)
    return dx, dscale, dbias


@register_cpu("RMSNorm")
def rms_norm(x, gamma, beta, *, axis, eps):
    axis = rms_norm_inputs(x.shape, x.dtype.name, gamma.shape, beta.shape, axis)
    rows = x.reshape(_rows(x, axis))
    rrms = 1 / np.sqrt(np.mean(np.square(rows), axis=1, keepdims=True) + x.dtype.type(eps))
    y = rows * rrms * gamma.reshape(-1).astype(x.dtype) + beta.reshape(-1).astype(x.dtype)
    return y.reshape(x.shape).astype(x.dtype, copy=False), rrms.reshape(x.shape[:axis]).astype(x.dtype)


@register_gradient("RMSNorm")
def make_rms_norm_gradient(g):
    return [g.Op("RMSNormGradient", [g.GO(0), g.I(0), g.I(1), g.O(1)], [g.GI(0), g.GI(1), g.GI(2)])]


@register_cpu("RMSNormGradient")
def rms_norm_gradient(dy, x, gamma, rrms, *, axis):
    axis = rms_norm_gradient_inputs(dy.shape, x.shape, x.dtype.name, gamma.shape, rrms.shape, axis)
    outer, inner = _rows(x, axis)
    rows, dy_rows = x.reshape(outer, inner), dy.reshape(outer, inner)
    g, r = gamma.reshape(inner).astype(x.dtype), rrms.reshape(outer, 1).astype(x.dtype)
    # dX = rrms * dY * gamma - rrms^3 * mean(dY * X * gamma) * X, per row.
    ds = np.sum(dy_rows * rows * g, axis=1, keepdims=True)
    dx = r * dy_rows * g - (ds / max(inner, 1)) * r**3 * rows
    dgamma = np.sum(dy_rows * rows * r, axis=0).reshape(gamma.shape)
    dbeta = np.sum(dy_rows, axis=0).reshape(gamma.shape)
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dgamma.astype(x.dtype), dbeta.astype(x.dtype)


@register_cuda("AffineChannel")
def affine_channel_cuda(x, scale, bias, *, order, is_learnable, input_names, output_names):
    x, scale, bias = cuda.float32_inputs(x, scale, bias)
    _check_affine_channel(x, scale, bias, order, is_learnable, input_names, output_names)
    return _affine_channel_cuda(x, scale, bias, order)


def _affine_channel_cuda(x, scale, bias, order):
    """X * scale[c] (+ bias[c] unless bias is NULL) on the GPU."""
    y = cuda.empty_like(x)
    _, c, inner = cuda_layout(x, order)
    cuda.launch(_SOURCE, "affine_channel", y.size, x, scale, bias, y, np.int64(y.size), np.int64(c),
                np.int64(inner))
    return y


@register_cuda("AffineChannelGradient")
def affine_channel_gradient_cuda(dy, *rest, order, is_learnable, num_outputs):
    dy, *rest = cuda.float32_inputs(dy, *rest)
    x, scale = _check_affine_channel_gradient(dy, rest, order, is_learnable, num_outputs)
    if dy.size == 0:
        return on_cpu(partial(affine_channel_gradient, order=order, is_learnable=is_learnable,
                              num_outputs=num_outputs), [dy, *rest])
    dx = _affine_channel_cuda(dy, scale, cuda.NULL, order)
    if x is None:
        return (dx,)
    dscale, dbias = affine_grads(x, dy, cuda_layout(x, order))
    return dx, cuda.reshape(dscale, scale.shape), cuda.reshape(dbias, scale.shape)
