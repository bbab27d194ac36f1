"""SoftmaxWithLoss kernels (NumPy and CUDA, softmax_loss.cu), with its gradient op;
SpatialSoftmaxWithLoss (NumPy), its per-pixel twin with ignored (-1) labels.

The loss keeps the float type of the logits. Class labels may be any integer
type and are checked against the number of classes on the host (the CUDA
launchers on a copy), then handed to the CUDA kernels as int32. Soft labels
(label_prob=1) are checked to be probability rows, as Caffe2 does, and their
log-probabilities floored at log(1e-20).
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.loss import LOG_FLOOR, ONE_BLOCK, class_labels, labels_on_gpu, zeros_on_gpu
from pycaffe2.operators.nn import as_rows, log_softmax_rows
from pycaffe2.operators.registry import register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference import same_shape
from pycaffe2.schema.inference.loss import scalar_grad
from pycaffe2.schema.inference.softmax_loss import softmax_labels, spatial_labels


def _targets(labels, n: int, d: int, label_prob: bool):
    """Class indices [N], or probability rows [N, D] checked like Caffe2 does (the
    shapes are checked by softmax_labels)."""
    if not label_prob:
        return class_labels(labels, n, d)
    if labels.dtype.kind != "f":
        raise ValueError(f"with label_prob=1, labels must be float probabilities, got {labels.dtype}")
    target = labels.reshape(n, d)
    if n and target.min() < 0:
        raise ValueError("with label_prob=1, label probabilities must be nonnegative")
    row_sums = target.sum(axis=1, dtype=np.float64)
    if n and np.abs(row_sums - 1).max() >= 1e-5:
        raise ValueError(f"with label_prob=1, each row of labels must sum to 1 (+/- 1e-5), "
                         f"got a row summing to {row_sums[np.abs(row_sums - 1).argmax()]}")
    return target


def _checked(logits_shape, labels, weights, axis, label_prob):
    """(N, D, targets) after the shared shape check and the value checks (labels on the host)."""
    n, d = softmax_labels(logits_shape, axis, label_prob, labels.shape,
                          None if weights is None else weights.shape)
    return n, d, _targets(labels, n, d, label_prob)


def _gradient_inputs(third, fourth, fifth):
    """(weights, softmax, dloss) of {.., softmax, dloss} or {.., weights, softmax, dloss}."""
    return (None, third, fourth) if fifth is None else (third, fourth, fifth)


@register_cpu("SoftmaxWithLoss")
def softmax_with_loss(logits, labels, weights=None, *, scale, label_prob, axis):
    n, _, target = _checked(logits.shape, labels, weights, axis, label_prob)
    w = None if weights is None else weights.reshape(n)
    dtype = logits.dtype
    if logits.size == 0:
        return logits.copy(), np.zeros((), dtype)
    log_p = log_softmax_rows(as_rows(logits, axis))
    if label_prob:
        # log(max(P, 1e-20)), as Caffe2 floors P before its log for soft labels
        log_floor = np.maximum(log_p, dtype.type(math.log(LOG_FLOOR)))
        losses = -(log_floor * target).sum(axis=1)
    else:
        losses = -log_p[np.arange(n), target]
    total = w.sum() if w is not None else n
    loss_sum = (losses * w).sum() if w is not None else losses.sum()
    loss = loss_sum * scale / total if total != 0 else 0.0
    np.exp(log_p, out=log_p)
    return log_p.reshape(logits.shape), np.asarray(loss, dtype=dtype)


@register_cpu("SoftmaxWithLossGradient")
def softmax_with_loss_gradient(logits, labels, third, fourth, fifth=None, *, scale, label_prob, axis):
    weights, p, dloss = _gradient_inputs(third, fourth, fifth)
    same_shape(logits.shape, p.shape, ("logits", "softmax"))
    n, d, target = _checked(p.shape, labels, weights, axis, label_prob)
    scalar_grad(dloss.shape, "dloss")
    rows = p.reshape(n, d)
    if label_prob:
        dx = rows - target
    else:
        dx = rows.copy()
        dx[np.arange(n), target] -= 1
    total = n
    if weights is not None:
        dx *= weights.reshape(n, 1)
        total = weights.sum()
    factor = dloss.reshape(()).item()
    dx *= p.dtype.type(scale * factor / total if total != 0 else 0.0)
    return dx.reshape(logits.shape)


@register_gradient("SoftmaxWithLoss")
def _softmax_with_loss_gradient(g):
    # {logits, labels, [weights], softmax, dloss}: the loss is output 1; labels get no gradient.
    weights = [g.I(2)] if len(g.op.input) == 3 else []
    inputs = [g.I(0), g.I(1), *weights, g.O(0), g.GO(1)]
    return [g.Op("SoftmaxWithLossGradient", inputs, [g.GI(0)])]


IGNORED = -1  # SpatialSoftmaxWithLoss's "don't care" label


def _spatial_terms(logits_shape, labels, weights):
    """(classes, weights) per pixel [N, H, W] after the checks: ignored pixels get
    class 0 and weight 0, so they drop out of sums and of the total weight."""
    _, d, _, _ = spatial_labels(logits_shape, labels.shape, None if weights is None else weights.shape)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    counted = labels != IGNORED
    if counted.any() and (labels[counted].min() < 0 or labels[counted].max() >= d):
        raise ValueError(f"labels must be class indices in [0, {d}) or {IGNORED} (ignored), got values in "
                         f"[{labels[counted].min()}, {labels[counted].max()}]")
    w = counted if weights is None else np.where(counted, weights, 0)
    return np.where(counted, labels, 0), w


def _per_total(value, total):
    return value / total if total != 0 else 0.0


@register_cpu("SpatialSoftmaxWithLoss")
def spatial_softmax_with_loss(logits, labels, weights=None, *, scale, order):
    classes, w = _spatial_terms(logits.shape, labels, weights)
    dtype = logits.dtype
    shifted = logits - logits.max(axis=1, keepdims=True) if logits.size else logits.copy()
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    picked = np.take_along_axis(log_p, classes[:, None], axis=1)[:, 0]
    # log(max(P, 1e-20)), as Caffe2 floors P before its log
    losses = -np.maximum(picked, dtype.type(math.log(LOG_FLOOR)))
    loss = scale * _per_total((losses * w).sum(dtype=np.float64), w.sum(dtype=np.float64))
    return np.exp(log_p), np.asarray(loss, dtype=dtype)


@register_cpu("SpatialSoftmaxWithLossGradient")
def spatial_softmax_with_loss_gradient(logits, labels, third, fourth, fifth=None, *, scale, order):
    weights, p, dloss = _gradient_inputs(third, fourth, fifth)
    same_shape(logits.shape, p.shape, ("logits", "softmax"))
    classes, w = _spatial_terms(p.shape, labels, weights)
    scalar_grad(dloss.shape, "dloss")
    dx = p.copy()
    np.put_along_axis(dx, classes[:, None], np.take_along_axis(dx, classes[:, None], axis=1) - 1, axis=1)
    dx *= w[:, None]
    dx *= p.dtype.type(scale * _per_total(dloss.reshape(()).item(), w.sum(dtype=np.float64)))
    return dx


@register_gradient("SpatialSoftmaxWithLoss")
def _spatial_softmax_with_loss_gradient(g):
    weights = [g.I(2)] if len(g.op.input) == 3 else []
    return [g.Op("SpatialSoftmaxWithLossGradient", [g.I(0), g.I(1), *weights, g.O(0), g.GO(1)], [g.GI(0)])]


# CUDA launchers (softmax_loss.cu). cuda.NULL stands for an absent input.
def _target_args(labels, weights, shape, axis, label_prob):
    """(N, D, labels, targets): the kernel args, one of them cuda.NULL, after the CPU's checks."""
    host_weights = None if weights is None else np.broadcast_to(np.float32(0), weights.shape)  # shape only
    n, d, checked = _checked(shape, cuda.copy_to_cpu(labels), host_weights, axis, label_prob)
    if n * d == 0:
        return n, d, cuda.NULL, cuda.NULL
    if label_prob:
        return n, d, cuda.NULL, cuda.float32_inputs(labels)[0]
    return n, d, labels_on_gpu(labels, checked), cuda.NULL


@register_cuda("SoftmaxWithLoss")
def softmax_with_loss_cuda(logits, labels, weights=None, *, scale, label_prob, axis):
    n, d, label_arg, target_arg = _target_args(labels, weights, logits.shape, axis, label_prob)
    logits, *weights = cuda.float32_inputs(logits, *([] if weights is None else [weights]))
    p = cuda.empty_like(logits)
    if logits.size == 0:
        return p, zeros_on_gpu(())
    weight_arg = weights[0] if weights else cuda.NULL
    losses, loss = cuda.empty((n,)), cuda.empty(())
    cuda.launch_rows("softmax_loss.cu", "softmax_with_loss_rows", n, logits, label_arg, target_arg,
                     weight_arg, p, losses, np.int64(n), np.int64(d))
    cuda.function("softmax_loss.cu", "softmax_with_loss_total")(
        losses, weight_arg, loss, np.float32(scale), np.int64(n), **ONE_BLOCK)
    return p, loss


@register_cuda("SoftmaxWithLossGradient")
def softmax_with_loss_gradient_cuda(logits, labels, third, fourth, fifth=None, *, scale, label_prob, axis):
    weights, p, dloss = _gradient_inputs(third, fourth, fifth)
    same_shape(logits.shape, p.shape, ("logits", "softmax"))
    n, d, label_arg, target_arg = _target_args(labels, weights, p.shape, axis, label_prob)
    scalar_grad(dloss.shape, "dloss")
    p, dloss, *weights = cuda.float32_inputs(p, dloss,
                                             *([] if weights is None else [weights]))
    dx = cuda.empty_like(p)
    if p.size == 0:
        return dx
    weight_arg = weight_sum_arg = cuda.NULL
    if weights:
        weight_sum = cuda.empty((1,))
        cuda.function("softmax_loss.cu", "sum_all")(weights[0], weight_sum, np.int64(n), **ONE_BLOCK)
        weight_arg, weight_sum_arg = weights[0], weight_sum
    cuda.launch("softmax_loss.cu", "softmax_with_loss_gradient", p.size, p, label_arg, target_arg,
                weight_arg, weight_sum_arg, dloss, dx, np.float32(scale), np.int64(n), np.int64(d))
    return dx
