"""Normalization kernels (NumPy): SpatialBN with its cross-device statistics
ops, InstanceNorm, LayerNorm and GroupNorm, and their gradient ops.

SpatialBN is benchmarked, so its per-channel reductions avoid copies: X is
viewed as [N, C, HxW] (NCHW) or [N*HxW, C] (NHWC), sums are BLAS
matrix-vector products with a ones vector and sums of products are einsum
row dots. Variances are two-pass (mean first, then the squares of X - mean)
so large means do not cancel, and the X - mean buffer becomes Y in place.
The small per-channel arithmetic runs in float64 and is cast back to X's
type before it touches a full-size array. The other ops normalize a
[N, G, K, HxW] (NCHW) or [N, HxW, G, K] (NHWC) view of X over its K and
HxW axes; InstanceNorm is the case K = 1. Every op also has a CUDA launcher
(kernels in normalization.cu), at the end of this module.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import GradientError, register_cpu, register_cuda, register_gradient


def _float_x(x, op_type, min_rank):
    if x.dtype.kind != "f":
        raise ValueError(f"{op_type}: X must be float, got {x.dtype}")
    if x.ndim < min_rank:
        raise ValueError(f"{op_type}: X must have rank >= {min_rank}, got {list(x.shape)}")


def _channels(x, order):
    return x.shape[-1] if order == "NHWC" else x.shape[1]


def _check_size(p, count, name, x, order, op_type):
    """A ValueError naming p, X and the layout unless p has `count` elements."""
    if p.size != count:
        raise ValueError(f"{op_type}: {name} has shape {list(p.shape)} but X {list(x.shape)} "
                         f"needs {count} elements (order {order})")


def _vector(p, count, name, x, order, op_type):
    """p flattened to [count], or a ValueError naming p, X and the layout."""
    _check_size(p, count, name, x, order, op_type)
    return p.reshape(count)


def _channel_view(x, order):
    """X as [N, C, HxW] (NCHW) or [N*HxW, C] (NHWC): channels on axis 1, no copy."""
    if order == "NHWC":
        return x.reshape(-1, x.shape[-1])
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _column(p, view):
    """A per-channel vector shaped to broadcast over a channel view, in its dtype."""
    p = p.astype(view.dtype, copy=False)
    return p.reshape(-1, 1) if view.ndim == 3 else p


def _channel_sum(view):
    """Per-channel sum of a channel view, as float64."""
    if view.ndim == 2:
        return (np.ones(view.shape[0], view.dtype) @ view).astype(np.float64)
    rows = view @ np.ones(view.shape[2], view.dtype)
    return rows.sum(axis=0, dtype=np.float64)


def _channel_dot(a, b):
    """Per-channel sum of a * b over two channel views of one shape, as float64."""
    if a.ndim == 2:
        return np.einsum("ij,ij->j", a, b).astype(np.float64)
    rows = np.einsum("ij,ij->i", a.reshape(-1, a.shape[2]), b.reshape(-1, b.shape[2]))
    return rows.reshape(a.shape[:2]).sum(axis=0, dtype=np.float64)


def _affine_inplace(buffer, alpha, beta):
    """buffer * alpha + beta per channel, written into buffer."""
    np.multiply(buffer, _column(alpha, buffer), out=buffer)
    np.add(buffer, _column(beta, buffer), out=buffer)
    return buffer


# ---- ChannelStats / ChannelBackpropStats --------------------------------------------------

@register_cpu("ChannelStats")
def channel_stats(x, *, order):
    _float_x(x, "ChannelStats", 3)
    view = _channel_view(x, order)
    return _channel_sum(view).astype(x.dtype), _channel_dot(view, view).astype(x.dtype)


def _scale_bias_grads(view, dy_view, mean, inv_std):
    """(dscale, dbias, X - mean) over channel views: sums of dY * xhat and of dY."""
    centered = view - _column(mean, view)
    return _channel_dot(dy_view, centered) * inv_std, _channel_sum(dy_view), centered


def _check_dy(x, dy, op_type):
    if dy.shape != x.shape:
        raise ValueError(f"{op_type}: dY has shape {list(dy.shape)} but X has {list(x.shape)}")


@register_cpu("ChannelBackpropStats")
def channel_backprop_stats(x, mean, inv_std, dy):
    op = "ChannelBackpropStats"
    _float_x(x, op, 3)
    _check_dy(x, dy, op)
    c = x.shape[1]
    mean, inv_std = (_vector(p, c, name, x, "NCHW", op) for p, name in ((mean, "mean"), (inv_std, "inv_std")))
    dscale, dbias, _ = _scale_bias_grads(_channel_view(x, "NCHW"), _channel_view(dy, "NCHW"),
                                         mean, inv_std.astype(np.float64))
    return dscale.astype(x.dtype), dbias.astype(x.dtype)


# ---- SpatialBN -----------------------------------------------------------------------------

def _running(stat, c, name, x, order):
    """A running statistic as float64 [C]; an empty blob starts at zero (Caffe2)."""
    if stat.size == 0:
        return np.zeros(c)
    return _vector(stat, c, name, x, order, "SpatialBN").astype(np.float64)


@register_cpu("SpatialBN", specialize=True)
def spatial_bn(*, is_test, epsilon, momentum, order, num_batches):
    """Picks the test or the training kernel once, when the net is created."""
    def test(x, scale, bias, mean, var, *_sums):
        _float_x(x, "SpatialBN", 3)
        c = _channels(x, order)
        scale, bias, mean, var = (_vector(p, c, n, x, order, "SpatialBN") for p, n in
                                  ((scale, "scale"), (bias, "bias"), (mean, "mean"), (var, "var")))
        alpha = scale / np.sqrt(var.astype(np.float64) + epsilon)
        view = _channel_view(x, order)
        y = view * _column(alpha, view)
        y += _column(bias - mean * alpha, view)
        return (y.reshape(x.shape),)

    def train(x, scale, bias, running_mean, running_var, *sums):
        _float_x(x, "SpatialBN", 3)
        c = _channels(x, order)
        scale, bias = (_vector(p, c, n, x, order, "SpatialBN") for p, n in ((scale, "scale"), (bias, "bias")))
        view = _channel_view(x, order)
        count = x.size // c if c else 0
        if count == 0:  # an empty batch: Caffe2 keeps the running stats and saves zeros
            running = (_running(running_mean, c, "mean", x, order), _running(running_var, c, "var", x, order))
            return x.copy(), *(v.astype(x.dtype) for v in (*running, np.zeros(c), np.zeros(c)))
        if num_batches > 1:
            if len(sums) != 2:
                raise ValueError(f"SpatialBN: num_batches={num_batches} needs the sums and sumsq inputs")
            sums = [_vector(s, c, n, x, order, "SpatialBN").astype(np.float64)
                    for s, n in zip(sums, ("sums", "sumsq"))]
            count *= num_batches
            mean = sums[0] / count
            # E[X^2] - mean^2 may round below zero; a variance cannot.
            var = np.maximum(sums[1] / count - mean * mean, 0)
            centered = view - _column(mean, view)
        else:
            mean = _channel_sum(view) / count
            centered = view - _column(mean, view)
            var = _channel_dot(centered, centered) / count
        inv_std = 1 / np.sqrt(var + epsilon)
        y = _affine_inplace(centered, scale * inv_std, bias).reshape(x.shape)
        new_mean = momentum * _running(running_mean, c, "mean", x, order) + (1 - momentum) * mean
        new_var = momentum * _running(running_var, c, "var", x, order) + (1 - momentum) * var
        return y, *(v.astype(x.dtype) for v in (new_mean, new_var, mean, inv_std))

    return test if is_test else train


@register_gradient("SpatialBN")
def make_spatial_bn_gradient(g):
    """Caffe2's inputs by mode: test mode reads the running statistics, training the
    saved ones. With num_batches > 1 dscale and dbias are not computed here: they
    must already be in <scale>_grad and <bias>_grad when the gradient op runs (the
    all-reduced sums of each device's ChannelBackpropStats, which whoever builds
    the data-parallel backward net inserts before it), and the op overwrites them
    in place with this device's share, the sums divided by num_batches."""
    if g.arg("is_test"):
        stats = [g.I(3), g.I(4)]
    else:
        stats = [g.O(3), g.O(4)]
        if g.arg("num_batches") > 1:
            stats += [g.GI(1), g.GI(2)]
    return [g.Op("SpatialBNGradient", [g.I(0), g.I(1), g.GO(0), *stats], [g.GI(0), g.GI(1), g.GI(2)])]


@register_cpu("SpatialBNGradient", specialize=True)
def spatial_bn_gradient(*, is_test, epsilon, order, num_batches):
    """Picks the test, training or multi-batch kernel once, when the net is created."""
    def gradient(x, scale, dy, mean, inv_std, *aggregates):
        op = "SpatialBNGradient"
        _float_x(x, op, 3)
        _check_dy(x, dy, op)
        c = _channels(x, order)
        scale, mean, inv_std = (_vector(p, c, n, x, order, op).astype(np.float64) for p, n in
                                ((scale, "scale"), (mean, "saved_mean"), (inv_std, "saved_inv_std")))
        if is_test:  # inputs 3 and 4 are the running mean and variance, constants here
            inv_std = 1 / np.sqrt(inv_std + epsilon)
        view, dy_view = _channel_view(x, order), _channel_view(dy, order)
        dscale, dbias, centered = _scale_bias_grads(view, dy_view, mean, inv_std)
        alpha = scale * inv_std
        if is_test:
            dx = dy_view * _column(alpha, dy_view)
        else:
            if num_batches > 1:
                if len(aggregates) != 2:
                    raise ValueError(f"{op}: num_batches={num_batches} needs the aggregate "
                                     "scale and bias gradient inputs")
                dscale, dbias = (_vector(a, c, n, x, order, op).astype(np.float64) / num_batches
                                 for a, n in zip(aggregates, ("aggregate_scale_grad",
                                                              "aggregate_bias_grad")))
            # dX = alpha * (dY - (dbias + xhat * dscale) / M), xhat = (X - mean) * inv_std,
            # with M this batch's count: the aggregates were divided by num_batches.
            count = x.size // c
            dx = _affine_inplace(centered, -alpha * inv_std * dscale / count, -alpha * dbias / count)
            dx += dy_view * _column(alpha, dy_view)
        return dx.reshape(x.shape), dscale.astype(x.dtype), dbias.astype(x.dtype)

    return gradient


# ---- InstanceNorm / GroupNorm: normalization over groups of channels ----------------------

def _group_view(x, groups, order):
    """X as [N, G, K, HxW] (NCHW) or [N, HxW, G, K] (NHWC), and its statistics axes."""
    n, c = x.shape[0], _channels(x, order)
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


def _group_forward(op, x, params, names, groups, epsilon, order):
    c = _channels(x, order)
    gamma, beta = (_vector(p, c, n, x, order, op) for p, n in zip(params, names))
    view, axes = _group_view(x, groups, order)
    mean, inv_std, centered = _group_moments(view, axes, epsilon)
    y = centered * inv_std
    y *= _channel_param(gamma, view, order)
    y += _channel_param(beta, view, order)
    n = x.shape[0]
    return y.reshape(x.shape), mean.reshape(n, groups), inv_std.reshape(n, groups)


def _check_group_backward(op, x, dy, gamma, mean, inv_std, groups, order):
    """The shapes of a group gradient op's inputs (either device; no reshapes, which
    PyCUDA refuses for empty GPUArrays)."""
    _check_dy(x, dy, op)
    c, n = _channels(x, order), x.shape[0]
    _check_size(gamma, c, "gamma" if op == "GroupNormGradient" else "scale", x, order, op)
    for s, name in ((mean, "saved_mean"), (inv_std, "saved_inv_std")):
        _check_size(s, n * groups, name, x, order, op)


def _group_backward(op, x, dy, gamma, mean, inv_std, groups, order):
    """dX, dgamma, dbeta of Y = (X - mean) * inv_std * gamma + beta per group."""
    _check_group_backward(op, x, dy, gamma, mean, inv_std, groups, order)
    c, n = _channels(x, order), x.shape[0]
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
    _float_x(x, "InstanceNorm", 3)
    groups = _channels(x, order)
    return _group_forward("InstanceNorm", x, (scale, bias), ("scale", "bias"), groups, epsilon, order)


@register_gradient("InstanceNorm")
def make_instance_norm_gradient(g):
    saved = [g.O(i) for i in range(1, len(g.op.output))]  # any not saved are recomputed
    return [g.Op("InstanceNormGradient", [g.I(0), g.I(1), g.I(2), g.GO(0), *saved],
                 [g.GI(0), g.GI(1), g.GI(2)])]


@register_cpu("InstanceNormGradient")
def instance_norm_gradient(x, scale, bias, dy, *saved, epsilon, order):
    op = "InstanceNormGradient"
    _float_x(x, op, 3)
    c = _channels(x, order)
    if len(saved) < 2:  # the statistics were not saved: recompute them
        view, axes = _group_view(x, c, order)
        mean, inv_std, _ = _group_moments(view, axes, epsilon)
        saved = (mean, inv_std)
    return _group_backward(op, x, dy, scale, *saved, c, order)


def _check_groups(x, group, order, op):
    c = _channels(x, order)
    if c % group:
        raise ValueError(f"{op}: group {group} does not divide the {c} channels of X "
                         f"{list(x.shape)} (order {order})")


@register_cpu("GroupNorm")
def group_norm(x, gamma, beta, *, group, epsilon, order):
    _float_x(x, "GroupNorm", 2)
    _check_groups(x, group, order, "GroupNorm")
    return _group_forward("GroupNorm", x, (gamma, beta), ("gamma", "beta"), group, epsilon, order)


@register_gradient("GroupNorm")
def make_group_norm_gradient(g):
    if len(g.op.output) < 3:
        raise GradientError("GroupNorm: its gradient needs the mean and inv_std outputs "
                            "(run it with is_test=0 and 3 outputs)")
    return [g.Op("GroupNormGradient", [g.GO(0), g.I(0), g.I(1), g.I(2), g.O(1), g.O(2)],
                 [g.GI(0), g.GI(1), g.GI(2)])]


@register_cpu("GroupNormGradient")
def group_norm_gradient(dy, x, gamma, beta, mean, inv_std, *, group, order):
    _float_x(x, "GroupNormGradient", 2)
    _check_groups(x, group, order, "GroupNormGradient")
    return _group_backward("GroupNormGradient", x, dy, gamma, mean, inv_std, group, order)


# ---- LayerNorm -----------------------------------------------------------------------------

def _layer_split(x, axis, op):
    """X's [outer, inner] shape split before `axis`, and the canonical axis. Shapes only:
    PyCUDA cannot reshape an empty GPUArray."""
    _float_x(x, op, 2)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for X of rank {x.ndim}")
    axis %= x.ndim
    return (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])), axis


def _check_affine(x, axis, params, op):
    """The element count of gamma and beta: X's dims from axis on (either device)."""
    inner = math.prod(x.shape[axis:])
    for p, name in zip(params, ("gamma", "beta")):
        if p.size != inner:
            raise ValueError(f"{op}: {name} has shape {list(p.shape)} but X {list(x.shape)} "
                             f"needs {inner} elements (its dims from axis {axis})")
    return inner


def _affine_params(x, axis, params, op):
    inner = _check_affine(x, axis, params, op)
    return [p.reshape(inner).astype(x.dtype, copy=False) for p in params]


def _check_layer_norm(x, affine, axis, elementwise_affine):
    """LayerNorm's [outer, inner] shape of X and canonical axis, its inputs checked."""
    rows, axis = _layer_split(x, axis, "LayerNorm")
    if bool(elementwise_affine) != bool(affine):
        raise ValueError(f"LayerNorm: elementwise_affine={int(bool(elementwise_affine))} takes "
                         f"{3 if elementwise_affine else 1} input(s), got {1 + len(affine)}")
    _check_affine(x, axis, affine, "LayerNorm")
    return rows, axis


@register_cpu("LayerNorm")
def layer_norm(x, *affine, axis, epsilon, elementwise_affine):
    rows, axis = _check_layer_norm(x, affine, axis, elementwise_affine)
    view = x.reshape(rows)
    mean = view.mean(axis=1, keepdims=True)
    y = view - mean
    std = np.sqrt(np.mean(np.square(y), axis=1, keepdims=True) + x.dtype.type(epsilon))
    y /= std
    if elementwise_affine:
        gamma, beta = _affine_params(x, axis, affine, "LayerNorm")
        y *= gamma
        y += beta
    stat_shape = x.shape[:axis] + (1,)
    return y.reshape(x.shape), mean.reshape(stat_shape), std.reshape(stat_shape)


@register_gradient("LayerNorm")
def make_layer_norm_gradient(g):
    inputs = [g.GO(0), g.O(0), g.O(1), g.O(2), g.I(0)]
    if g.arg("elementwise_affine"):
        return [g.Op("LayerNormGradient", [*inputs, g.I(1)], [g.GI(0), g.GI(1), g.GI(2)])]
    return [g.Op("LayerNormGradient", inputs, [g.GI(0)])]


def _check_layer_norm_gradient(dy, mean, std, x, gamma, axis, elementwise_affine, num_outputs):
    """LayerNormGradient's [outer, inner] shape of X, canonical axis and whether it has
    gamma, its inputs checked (either device)."""
    op = "LayerNormGradient"
    rows, axis = _layer_split(x, axis, op)
    _check_dy(x, dy, op)
    outer = rows[0]
    for stat, name in ((mean, "mean"), (std, "std")):
        if stat.size != outer:
            raise ValueError(f"{op}: {name} has shape {list(stat.shape)} but X {list(x.shape)} "
                             f"needs {outer} elements (its dims before axis {axis})")
    affine = bool(elementwise_affine and gamma)
    if affine:
        _check_affine(x, axis, gamma[:1], op)
    elif num_outputs != 1:
        raise ValueError(f"{op}: dgamma and dbeta need elementwise_affine=1 and the gamma input")
    return rows, axis, affine


@register_cpu("LayerNormGradient")
def layer_norm_gradient(dy, y, mean, std, x, *gamma, axis, elementwise_affine, num_outputs):
    op = "LayerNormGradient"
    rows, axis, affine = _check_layer_norm_gradient(dy, mean, std, x, gamma, axis,
                                                    elementwise_affine, num_outputs)
    view, outer = x.reshape(rows), rows[0]
    xhat = (view - mean.reshape(outer, 1)) / std.reshape(outer, 1)
    dy_view = dy.reshape(view.shape)
    g = dy_view
    if affine:
        g = dy_view * _affine_params(x, axis, gamma[:1], op)[0]
    # dX = (g - mean(g) - xhat * mean(g * xhat)) / std, means over each row.
    dx = g - g.mean(axis=1, keepdims=True) - xhat * np.mean(g * xhat, axis=1, keepdims=True)
    dx /= std.reshape(outer, 1)
    if num_outputs == 1:
        return (dx.reshape(x.shape),)
    dgamma, dbeta = (dy_view * xhat).sum(axis=0), dy_view.sum(axis=0)
    return dx.reshape(x.shape), dgamma.reshape(gamma[0].shape), dbeta.reshape(gamma[0].shape)


# ---- CUDA launchers (normalization.cu) -----------------------------------------------------
# X is [outer][C][inner] on the device. Statistics take one pass over X (partial sums per
# block, then a one-thread-per-channel finalize that also makes the per-channel
# coefficients), Y and dX one more. An empty X runs the CPU kernel on host copies.

_SOURCE = "normalization.cu"
_THREADS = 256  # BLOCK_THREADS in normalization.cu
_PARTIAL_BLOCKS = 2048  # blocks per partial-sums pass: a few waves on a large GPU


def _cuda_layout(x, order):
    """(outer, C, inner): NCHW [N][C][HxW], NHWC [N*HxW][C][1]."""
    if order == "NHWC":
        return math.prod(x.shape[:-1]), x.shape[-1], 1
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])

def _on_cpu(kernel, values):
    """Outputs of a CPU kernel on host copies of `values`, put back on the GPU."""
    return tuple(cuda.CUDADevice.put(out) for out in kernel(*[cuda.copy_to_cpu(v) for v in values]))


def _ceil_div(a, b):
    return -(-a // b)


def _partials(x, layout, shift=None, second=None):
    """float64 partials[2][G][C] of sum(b) and sum(a * b) per channel, a = X - shift
    (the channel's first element of X when shift is None), b = second, or a."""
    outer, c, inner = layout
    if inner == 1:
        kernel, sizes, block = "channel_partials_rows", (outer, c), (32, _THREADS // 32, 1)
        grid_x = _ceil_div(c, 32)
    else:
        bx = 32
        while bx < min(inner, _THREADS):
            bx *= 2
        kernel, sizes, block = "channel_partials_blocks", (outer, c, inner), (bx, _THREADS // bx, 1)
        grid_x = c
    groups = max(1, min(_ceil_div(_PARTIAL_BLOCKS, grid_x), _ceil_div(outer, block[1]), 65535))
    partials = cuda.empty((2, groups, c), np.float64)
    cuda.function(_SOURCE, kernel)(
        x, x if second is None else second, x if shift is None else shift,
        np.int64(second is not None), np.int64(shift is None), *map(np.int64, sizes), partials,
        block=block, grid=(grid_x, groups))
    return partials


def _map_channels(kernel, arrays, coef, layout):
    """A new array from `<kernel>_blocks` / `<kernel>_rows` over arrays of X's layout."""
    outer, c, inner = layout
    out = cuda.empty_like(arrays[0])
    if inner == 1:
        cuda.launch(_SOURCE, f"{kernel}_rows", out.size, *arrays, coef, out, np.int64(out.size), np.int64(c))
    else:
        grid = (min(_ceil_div(inner, 4 * _THREADS), 65535), min(outer * c, 65535))
        cuda.function(_SOURCE, f"{kernel}_blocks")(*arrays, coef, out, np.int64(outer * c), np.int64(c),
                                                   np.int64(inner), block=(_THREADS, 1, 1), grid=grid)
    return out


@register_cuda("ChannelStats")
def channel_stats_cuda(x, *, order):
    (x,) = cuda.float32_inputs("ChannelStats", x)
    _float_x(x, "ChannelStats", 3)
    if x.size == 0:
        return _on_cpu(lambda v: channel_stats(v, order=order), [x])
    outer, c, inner = layout = _cuda_layout(x, order)
    partials = _partials(x, layout)
    total, total_sq = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "channel_stats_finalize", c, partials, x, np.int64(partials.shape[1]),
                np.int64(c), np.int64(inner), np.float64(outer * inner), total, total_sq)
    return total, total_sq


@register_cuda("ChannelBackpropStats")
def channel_backprop_stats_cuda(x, mean, inv_std, dy):
    op = "ChannelBackpropStats"
    x, mean, inv_std, dy = cuda.float32_inputs(op, x, mean, inv_std, dy)
    _float_x(x, op, 3)
    _check_dy(x, dy, op)
    c = x.shape[1]
    for p, name in ((mean, "mean"), (inv_std, "inv_std")):
        _vector(p, c, name, x, "NCHW", op)
    if x.size == 0:
        return _on_cpu(channel_backprop_stats, [x, mean, inv_std, dy])
    partials = _partials(x, _cuda_layout(x, "NCHW"), shift=mean, second=dy)
    scale_grad, bias_grad = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "backprop_stats_finalize", c, partials, inv_std, np.int64(partials.shape[1]),
                np.int64(c), scale_grad, bias_grad)
    return scale_grad, bias_grad


def _running_cuda(stat, c, name, x, order):
    """A running statistic on the GPU; an empty blob starts at zero (Caffe2)."""
    if stat.size == 0:
        return cuda.CUDADevice.put(np.zeros(c, np.float32))
    _vector(stat, c, name, x, order, "SpatialBN")
    return stat


@register_cuda("SpatialBN", specialize=True)
def spatial_bn_cuda(*, is_test, epsilon, momentum, order, num_batches):
    cpu = spatial_bn(is_test=is_test, epsilon=epsilon, momentum=momentum, order=order,
                     num_batches=num_batches)

    def test(x, scale, bias, mean, var, *_sums):
        x, scale, bias, mean, var = cuda.float32_inputs("SpatialBN", x, scale, bias, mean, var)
        _float_x(x, "SpatialBN", 3)
        c = _channels(x, order)
        for p, n in ((scale, "scale"), (bias, "bias"), (mean, "mean"), (var, "var")):
            _vector(p, c, n, x, order, "SpatialBN")
        if x.size == 0:
            return _on_cpu(cpu, [x, scale, bias, mean, var])
        coef = cuda.empty((3, c))
        cuda.launch(_SOURCE, "bn_test_coef", c, scale, bias, mean, var, np.int64(c),
                    np.float64(epsilon), coef)
        return (_map_channels("channel_affine", [x], coef, _cuda_layout(x, order)),)

    def train(x, scale, bias, running_mean, running_var, *sums):
        x, scale, bias, running_mean, running_var, *sums = cuda.float32_inputs(
            "SpatialBN", x, scale, bias, running_mean, running_var, *sums)
        _float_x(x, "SpatialBN", 3)
        c = _channels(x, order)
        for p, n in ((scale, "scale"), (bias, "bias")):
            _vector(p, c, n, x, order, "SpatialBN")
        if x.size == 0:
            return _on_cpu(cpu, [x, scale, bias, running_mean, running_var, *sums])
        running = [_running_cuda(s, c, n, x, order) for s, n in ((running_mean, "mean"), (running_var, "var"))]
        outer, c, inner = layout = _cuda_layout(x, order)
        count = outer * inner
        if num_batches > 1:
            if len(sums) != 2:
                raise ValueError(f"SpatialBN: num_batches={num_batches} needs the sums and sumsq inputs")
            for s, n in zip(sums, ("sums", "sumsq")):
                _vector(s, c, n, x, order, "SpatialBN")
            partials, groups, count = cuda.NULL, 0, count * num_batches
        else:
            partials = _partials(x, layout)
            groups, sums = partials.shape[1], (cuda.NULL, cuda.NULL)
        outputs = [cuda.empty((c,)) for _ in range(4)]  # running mean, var, saved mean, inv_std
        coef = cuda.empty((3, c))
        cuda.launch(_SOURCE, "bn_train_finalize", c, partials, x, *sums, scale, bias, *running,
                    np.int64(num_batches > 1), np.int64(groups), np.int64(c), np.int64(inner),
                    np.float64(count), np.float64(momentum), np.float64(epsilon), *outputs, coef)
        return _map_channels("channel_affine", [x], coef, layout), *outputs

    return test if is_test else train


@register_cuda("SpatialBNGradient", specialize=True)
def spatial_bn_gradient_cuda(*, is_test, epsilon, order, num_batches):
    cpu = spatial_bn_gradient(is_test=is_test, epsilon=epsilon, order=order, num_batches=num_batches)
    from_aggregates = not is_test and num_batches > 1

    def gradient(x, scale, dy, mean, inv_std, *aggregates):
        op = "SpatialBNGradient"
        x, scale, dy, mean, inv_std, *aggregates = cuda.float32_inputs(op, x, scale, dy, mean, inv_std, *aggregates)
        _float_x(x, op, 3)
        _check_dy(x, dy, op)
        c = _channels(x, order)
        for p, n in ((scale, "scale"), (mean, "saved_mean"), (inv_std, "saved_inv_std")):
            _vector(p, c, n, x, order, op)
        if x.size == 0:
            return _on_cpu(cpu, [x, scale, dy, mean, inv_std, *aggregates])
        outer, c, inner = layout = _cuda_layout(x, order)
        if from_aggregates:
            if len(aggregates) != 2:
                raise ValueError(f"{op}: num_batches={num_batches} needs the aggregate "
                                 "scale and bias gradient inputs")
            for a, n in zip(aggregates, ("aggregate_scale_grad", "aggregate_bias_grad")):
                _vector(a, c, n, x, order, op)
            partials, groups = cuda.NULL, 0
        else:
            partials = _partials(x, layout, shift=mean, second=dy)
            groups, aggregates = partials.shape[1], (cuda.NULL, cuda.NULL)
        dscale, dbias, coef = cuda.empty((c,)), cuda.empty((c,)), cuda.empty((4, c))
        cuda.launch(_SOURCE, "bn_grad_finalize", c, partials, scale, mean, inv_std, *aggregates,
                    np.int64(bool(is_test)), np.int64(from_aggregates), np.int64(groups), np.int64(c),
                    np.float64(outer * inner), np.float64(num_batches), np.float64(epsilon),
                    dscale, dbias, coef)
        if is_test:  # dX = dY * scale / sqrt(var + epsilon): the affine kernel on dY
            return _map_channels("channel_affine", [dy], coef, layout), dscale, dbias
        return _map_channels("bn_gradient", [x, dy], coef, layout), dscale, dbias

    return gradient


# ---- CUDA launchers of LayerNorm, GroupNorm, InstanceNorm ----------------------------------
# One block per normalized row (group_norm_rows in normalization.cu) computes the statistics
# and Y; the gradient's row kernel gives dX and writes xhat, whose per-channel sums with dY
# (the SpatialBN partials) are dgamma and dbeta.

def _group_geometry(x, groups, order):
    """(rows, G, L, seg, stride, K, pdiv) of the row kernels for groups of X's channels."""
    n, c = x.shape[0], _channels(x, order)
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


def _affine_grads(xhat, dy, layout):
    """Per-channel sums of dY * xhat and of dY over arrays of a channel layout."""
    c, inner = layout[1], layout[2]
    partials = _partials(xhat, layout, second=dy)
    dgamma, dbeta = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "affine_grad_finalize", c, partials, xhat, np.int64(partials.shape[1]),
                np.int64(c), np.int64(inner), dgamma, dbeta)
    return dgamma, dbeta


@register_cuda("LayerNorm")
def layer_norm_cuda(x, *affine, axis, epsilon, elementwise_affine):
    x, *affine = cuda.float32_inputs("LayerNorm", x, *affine)
    rows, axis = _check_layer_norm(x, affine, axis, elementwise_affine)
    if x.size == 0:
        return _on_cpu(partial(layer_norm, axis=axis, epsilon=epsilon,
                               elementwise_affine=elementwise_affine), [x, *affine])
    y = cuda.empty_like(x)
    params = affine if elementwise_affine else (cuda.NULL, cuda.NULL)
    mean, std = _norm_rows(x, *params, y, x.shape[:axis] + (1,), _layer_geometry(*rows),
                           epsilon, save_std=1)
    return y, mean, std


@register_cuda("LayerNormGradient")
def layer_norm_gradient_cuda(dy, y, mean, std, x, *gamma, axis, elementwise_affine, num_outputs):
    dy, y, mean, std, x, *gamma = cuda.float32_inputs("LayerNormGradient", dy, y, mean, std, x, *gamma)
    rows, axis, affine = _check_layer_norm_gradient(dy, mean, std, x, gamma, axis,
                                                    elementwise_affine, num_outputs)
    if x.size == 0:
        return _on_cpu(partial(layer_norm_gradient, axis=axis, elementwise_affine=elementwise_affine,
                               num_outputs=num_outputs), [dy, y, mean, std, x, *gamma])
    outer, inner = rows
    dx, xhat = _norm_gradient_rows(x, dy, gamma[0] if affine else cuda.NULL, mean, std,
                                   _layer_geometry(outer, inner), 1, num_outputs > 1)
    if num_outputs == 1:
        return (dx,)
    dgamma, dbeta = _affine_grads(xhat, dy, (outer, inner, 1))
    return dx, dgamma.reshape(gamma[0].shape), dbeta.reshape(gamma[0].shape)


def _group_forward_cuda(op, x, params, names, groups, epsilon, order, cpu):
    c = _channels(x, order)
    for p, name in zip(params, names):
        _check_size(p, c, name, x, order, op)
    if x.size == 0:
        return _on_cpu(cpu, [x, *params])
    y = cuda.empty_like(x)
    mean, inv_std = _norm_rows(x, *params, y, (x.shape[0], groups), _group_geometry(x, groups, order),
                               epsilon, save_std=0)
    return y, mean, inv_std


def _group_backward_cuda(op, x, dy, gamma, mean, inv_std, groups, order):
    geometry = _group_geometry(x, groups, order)
    dx, xhat = _norm_gradient_rows(x, dy, gamma, mean, inv_std, geometry, 0, True)
    return dx, *_affine_grads(xhat, dy, _cuda_layout(x, order))


@register_cuda("InstanceNorm")
def instance_norm_cuda(x, scale, bias, *, epsilon, order):
    x, scale, bias = cuda.float32_inputs("InstanceNorm", x, scale, bias)
    _float_x(x, "InstanceNorm", 3)
    return _group_forward_cuda("InstanceNorm", x, (scale, bias), ("scale", "bias"), _channels(x, order),
                               epsilon, order, partial(instance_norm, epsilon=epsilon, order=order))


@register_cuda("InstanceNormGradient")
def instance_norm_gradient_cuda(x, scale, bias, dy, *saved, epsilon, order):
    op = "InstanceNormGradient"
    x, scale, bias, dy, *saved = cuda.float32_inputs(op, x, scale, bias, dy, *saved)
    _float_x(x, op, 3)
    c = _channels(x, order)
    if len(saved) < 2 and x.size:  # the statistics were not saved: recompute them (no Y)
        saved = _norm_rows(x, cuda.NULL, cuda.NULL, cuda.NULL, (x.shape[0], c),
                           _group_geometry(x, c, order), epsilon, save_std=0)
    if x.size == 0:
        return _on_cpu(partial(instance_norm_gradient, epsilon=epsilon, order=order),
                       [x, scale, bias, dy, *saved])
    _check_group_backward(op, x, dy, scale, *saved, c, order)
    return _group_backward_cuda(op, x, dy, scale, *saved, c, order)


@register_cuda("GroupNorm")
def group_norm_cuda(x, gamma, beta, *, group, epsilon, order):
    x, gamma, beta = cuda.float32_inputs("GroupNorm", x, gamma, beta)
    _float_x(x, "GroupNorm", 2)
    _check_groups(x, group, order, "GroupNorm")
    return _group_forward_cuda("GroupNorm", x, (gamma, beta), ("gamma", "beta"), group, epsilon, order,
                               partial(group_norm, group=group, epsilon=epsilon, order=order))


@register_cuda("GroupNormGradient")
def group_norm_gradient_cuda(dy, x, gamma, beta, mean, inv_std, *, group, order):
    op = "GroupNormGradient"
    dy, x, gamma, beta, mean, inv_std = cuda.float32_inputs(op, dy, x, gamma, beta, mean, inv_std)
    _float_x(x, op, 2)
    _check_groups(x, group, order, op)
    _check_group_backward(op, x, dy, gamma, mean, inv_std, group, order)
    if x.size == 0:
        return _on_cpu(partial(group_norm_gradient, group=group, order=order),
                       [dy, x, gamma, beta, mean, inv_std])
    return _group_backward_cuda(op, x, dy, gamma, mean, inv_std, group, order)
