"""Batch normalization kernels (NumPy): SpatialBN, its gradient op, and the
cross-device statistics ops ChannelStats and ChannelBackpropStats.

SpatialBN is benchmarked, so its per-channel reductions avoid copies: X is
viewed as [N, C, HxW] (NCHW) or [N*HxW, C] (NHWC), sums are BLAS
matrix-vector products with a ones vector and sums of products are einsum
row dots. Variances are two-pass (mean first, then the squares of X - mean)
so large means do not cancel, and the X - mean buffer becomes Y in place.
The small per-channel arithmetic runs in float64 and is cast back to X's
type before it touches a full-size array. Every op also has a CUDA launcher
(kernels in batch_norm.cu), at the end of this module, whose per-channel
partial sums the norms family uses too. Shape checks are the schema's
(schema/inference/batch_norm.py), shared with `validate`.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference.batch_norm import (
    channel_backprop_stats_inputs,
    channels,
    float_x,
    multi_batch_inputs,
    spatial_bn_gradient_inputs,
    spatial_bn_inputs,
)

SUMS = "sums and sumsq"
AGGREGATES = "aggregate scale and bias gradient"


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


def _vectors(c, *params, dtype=None):
    """Per-channel inputs (already checked) as flat [C] vectors, cast to `dtype` if given."""
    return [p.reshape(c) if dtype is None else p.reshape(c).astype(dtype) for p in params]


# ---- ChannelStats / ChannelBackpropStats --------------------------------------------------

@register_cpu("ChannelStats")
def channel_stats(x, *, order):
    float_x(x.shape, x.dtype.name, 3)
    view = _channel_view(x, order)
    return _channel_sum(view).astype(x.dtype), _channel_dot(view, view).astype(x.dtype)


def _scale_bias_grads(view, dy_view, mean, inv_std):
    """(dscale, dbias, X - mean) over channel views: sums of dY * xhat and of dY."""
    centered = view - _column(mean, view)
    return _channel_dot(dy_view, centered) * inv_std, _channel_sum(dy_view), centered


@register_cpu("ChannelBackpropStats")
def channel_backprop_stats(x, mean, inv_std, dy):
    channel_backprop_stats_inputs(x.shape, x.dtype.name, mean.shape, inv_std.shape, dy.shape)
    mean, inv_std = _vectors(x.shape[1], mean, inv_std)
    dscale, dbias, _ = _scale_bias_grads(_channel_view(x, "NCHW"), _channel_view(dy, "NCHW"),
                                         mean, inv_std.astype(np.float64))
    return dscale.astype(x.dtype), dbias.astype(x.dtype)


# ---- SpatialBN -----------------------------------------------------------------------------

def _check_spatial_bn(x, params, is_test, num_batches, order):
    """The schema's checks of SpatialBN's inputs (either device)."""
    multi_batch_inputs(1 + len(params), is_test, num_batches, SUMS)
    spatial_bn_inputs(x.shape, x.dtype.name, [p.shape for p in params], is_test, order)


def _running(stat, c):
    """A running statistic as float64 [C]; an empty blob starts at zero (Caffe2)."""
    return np.zeros(c) if stat.size == 0 else stat.reshape(c).astype(np.float64)


@register_cpu("SpatialBN", specialize=True)
def spatial_bn(*, is_test, epsilon, momentum, order, num_batches):
    """Picks the test or the training kernel once, when the net is created."""
    def test(x, *params):
        _check_spatial_bn(x, params, is_test, num_batches, order)
        scale, bias, mean, var = _vectors(channels(x.shape, order), *params[:4])
        alpha = scale / np.sqrt(var.astype(np.float64) + epsilon)
        view = _channel_view(x, order)
        y = view * _column(alpha, view)
        y += _column(bias - mean * alpha, view)
        return (y.reshape(x.shape),)

    def train(x, scale, bias, running_mean, running_var, *sums):
        _check_spatial_bn(x, (scale, bias, running_mean, running_var, *sums), is_test, num_batches, order)
        c = channels(x.shape, order)
        scale, bias = _vectors(c, scale, bias)
        view = _channel_view(x, order)
        count = x.size // c if c else 0
        running = _running(running_mean, c), _running(running_var, c)
        if count == 0:  # an empty batch: Caffe2 keeps the running stats and saves zeros
            return x.copy(), *(v.astype(x.dtype) for v in (*running, np.zeros(c), np.zeros(c)))
        if num_batches > 1:
            sums = _vectors(c, *sums, dtype=np.float64)
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
        new_mean = momentum * running[0] + (1 - momentum) * mean
        new_var = momentum * running[1] + (1 - momentum) * var
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


def _check_spatial_bn_gradient(x, scale, dy, stats, is_test, num_batches, order):
    """The schema's checks of SpatialBNGradient's inputs (either device)."""
    multi_batch_inputs(3 + len(stats), is_test, num_batches, AGGREGATES)
    spatial_bn_gradient_inputs(x.shape, x.dtype.name, scale.shape, dy.shape, [s.shape for s in stats], order)


@register_cpu("SpatialBNGradient", specialize=True)
def spatial_bn_gradient(*, is_test, epsilon, order, num_batches):
    """Picks the test, training or multi-batch kernel once, when the net is created."""
    def gradient(x, scale, dy, mean, inv_std, *aggregates):
        _check_spatial_bn_gradient(x, scale, dy, (mean, inv_std, *aggregates), is_test, num_batches, order)
        c = channels(x.shape, order)
        if x.shape[0] == 0:  # Caffe2: an empty batch has zero dscale and dbias, aggregates or not
            return np.zeros_like(x), np.zeros(c, x.dtype), np.zeros(c, x.dtype)
        scale, mean, inv_std = _vectors(c, scale, mean, inv_std, dtype=np.float64)
        if is_test:  # inputs 3 and 4 are the running mean and variance, constants here
            inv_std = 1 / np.sqrt(inv_std + epsilon)
        view, dy_view = _channel_view(x, order), _channel_view(dy, order)
        dscale, dbias, centered = _scale_bias_grads(view, dy_view, mean, inv_std)
        alpha = scale * inv_std
        if is_test:
            dx = dy_view * _column(alpha, dy_view)
        else:
            if num_batches > 1:
                dscale, dbias = (a / num_batches for a in _vectors(c, *aggregates, dtype=np.float64))
            # dX = alpha * (dY - (dbias + xhat * dscale) / M), xhat = (X - mean) * inv_std,
            # with M this batch's count: the aggregates were divided by num_batches.
            count = x.size // c
            dx = _affine_inplace(centered, -alpha * inv_std * dscale / count, -alpha * dbias / count)
            dx += dy_view * _column(alpha, dy_view)
        return dx.reshape(x.shape), dscale.astype(x.dtype), dbias.astype(x.dtype)

    return gradient


# ---- CUDA launchers (batch_norm.cu) --------------------------------------------------------
# X is [outer][C][inner] on the device. Statistics take one pass over X (partial sums per
# block, then a one-thread-per-channel finalize that also makes the per-channel
# coefficients), Y and dX one more. An empty X runs the CPU kernel on host copies.

_SOURCE = "batch_norm.cu"
_THREADS = 256  # BLOCK_THREADS in batch_norm.cu
_PARTIAL_BLOCKS = 2048  # blocks per partial-sums pass: a few waves on a large GPU


def cuda_layout(x, order):
    """(outer, C, inner): NCHW [N][C][HxW], NHWC [N*HxW][C][1]."""
    if order == "NHWC":
        return math.prod(x.shape[:-1]), x.shape[-1], 1
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def on_cpu(kernel, values):
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


def affine_grads(xhat, dy, layout):
    """Per-channel sums of dY * xhat and of dY over arrays of a channel layout: the
    dgamma and dbeta of the norms family's launchers."""
    c, inner = layout[1], layout[2]
    partials = _partials(xhat, layout, second=dy)
    dgamma, dbeta = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "affine_grad_finalize", c, partials, xhat, np.int64(partials.shape[1]),
                np.int64(c), np.int64(inner), dgamma, dbeta)
    return dgamma, dbeta


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
    (x,) = cuda.float32_inputs(x)
    float_x(x.shape, x.dtype.name, 3)
    if x.size == 0:
        return on_cpu(lambda v: channel_stats(v, order=order), [x])
    outer, c, inner = layout = cuda_layout(x, order)
    partials = _partials(x, layout)
    total, total_sq = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "channel_stats_finalize", c, partials, x, np.int64(partials.shape[1]),
                np.int64(c), np.int64(inner), np.float64(outer * inner), total, total_sq)
    return total, total_sq


@register_cuda("ChannelBackpropStats")
def channel_backprop_stats_cuda(x, mean, inv_std, dy):
    x, mean, inv_std, dy = cuda.float32_inputs(x, mean, inv_std, dy)
    channel_backprop_stats_inputs(x.shape, x.dtype.name, mean.shape, inv_std.shape, dy.shape)
    if x.size == 0:
        return on_cpu(channel_backprop_stats, [x, mean, inv_std, dy])
    c = x.shape[1]
    partials = _partials(x, cuda_layout(x, "NCHW"), shift=mean, second=dy)
    scale_grad, bias_grad = cuda.empty((c,)), cuda.empty((c,))
    cuda.launch(_SOURCE, "backprop_stats_finalize", c, partials, inv_std, np.int64(partials.shape[1]),
                np.int64(c), scale_grad, bias_grad)
    return scale_grad, bias_grad


@register_cuda("SpatialBN", specialize=True)
def spatial_bn_cuda(*, is_test, epsilon, momentum, order, num_batches):
    cpu = spatial_bn(is_test=is_test, epsilon=epsilon, momentum=momentum, order=order,
                     num_batches=num_batches)

    def test(x, *params):
        x, *params = cuda.float32_inputs(x, *params)
        _check_spatial_bn(x, params, is_test, num_batches, order)
        if x.size == 0:
            return on_cpu(cpu, [x, *params])
        c = channels(x.shape, order)
        coef = cuda.empty((3, c))
        cuda.launch(_SOURCE, "bn_test_coef", c, *params[:4], np.int64(c), np.float64(epsilon), coef)
        return (_map_channels("channel_affine", [x], coef, cuda_layout(x, order)),)

    def train(x, scale, bias, running_mean, running_var, *sums):
        x, *params = cuda.float32_inputs(x, scale, bias, running_mean, running_var, *sums)
        _check_spatial_bn(x, params, is_test, num_batches, order)
        if x.size == 0:
            return on_cpu(cpu, [x, *params])
        scale, bias, *sums = params[:2] + params[4:]
        outer, c, inner = layout = cuda_layout(x, order)
        # an empty running statistic starts at zero (Caffe2)
        running = [cuda.CUDADevice.put(np.zeros(c, np.float32)) if s.size == 0 else s for s in params[2:4]]
        count = outer * inner
        if num_batches > 1:
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
        x, scale, dy, mean, inv_std, *aggregates = cuda.float32_inputs(x, scale, dy, mean, inv_std, *aggregates)
        _check_spatial_bn_gradient(x, scale, dy, (mean, inv_std, *aggregates), is_test, num_batches, order)
        if x.size == 0:
            return on_cpu(cpu, [x, scale, dy, mean, inv_std, *aggregates])
        outer, c, inner = layout = cuda_layout(x, order)
        if from_aggregates:
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
