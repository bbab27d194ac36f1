"""Loss and metric kernels (NumPy), with their gradient ops (SoftmaxWithLoss is
in softmax_loss.py, the other distances in distance.py).

Losses keep the float type of their first input (Caffe2 has float32 only);
Accuracy is always a float32 scalar. Class labels may be any integer type and
are checked against the number of classes, since NumPy would silently read a
negative index from the end of a row. Probabilities are floored at 1e-20
before a log, as Caffe2 does, so a zero probability gives a large finite loss.
The CUDA launchers (loss.cu, at the end) check labels on the host with the CPU's
checks (a copy of the labels), then hand the kernels int32 labels.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema.inference import same_shape
from pycaffe2.schema.inference.loss import (
    accuracy_batch,
    distance_rows,
    per_example_grad,
    row_grad,
    scalar_grad,
    sigmoid_xent_variant,
    weighted_xent_shapes,
    xent_labels,
)

LOG_FLOOR = 1e-20


def _floor(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x.dtype.type(LOG_FLOOR))


def class_labels(labels: np.ndarray, n: int, d: int, name: str = "labels") -> np.ndarray:
    """Integer labels (N of them: their shape is checked by the caller) as a flat [N]
    array of classes in [0, D), or raise."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer class indices, got {labels.dtype}")
    flat = labels.reshape(n)
    if n and (flat.min() < 0 or flat.max() >= d):
        raise ValueError(f"{name} must be class indices in [0, {d}), got values in "
                         f"[{flat.min()}, {flat.max()}]")
    return flat


def _column(dy, n: int, name: str = "dY"):
    """dY, which must be [N], as a column [N, 1]."""
    per_example_grad(dy.shape, n, name)
    return cuda.reshape(dy, (n, 1))


# Cross-entropies on probabilities -----------------------------------------------

@register_cpu("LabelCrossEntropy")
def label_cross_entropy(x, label):
    n, d = xent_labels(x.shape, label.shape, soft=False)
    classes = class_labels(label, n, d, "label")
    return -np.log(_floor(x.reshape(n, d)[np.arange(n), classes]))


@register_cpu("LabelCrossEntropyGradient")
def label_cross_entropy_gradient(x, label, dy):
    n, d = xent_labels(x.shape, label.shape, soft=False)
    classes = class_labels(label, n, d, "label")
    column = _column(dy, n)
    rows = np.arange(n)
    dx = np.zeros((n, d), dtype=x.dtype)
    dx[rows, classes] = -column[:, 0] / _floor(x.reshape(n, d)[rows, classes])
    return dx.reshape(x.shape)


def _soft_label_batch(x, label: np.ndarray) -> tuple[int, int]:
    """(N, D) of X, after checking its soft labels (a host array)."""
    n, d = xent_labels(x.shape, label.shape, soft=True)
    if label.size and (label.min() < 0 or label.max() > 1):
        raise ValueError("label values must be probabilities in [0, 1]; use LabelCrossEntropy "
                         "for class indices")
    return n, d


def _soft_labels(x: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X and its soft labels, both as [N, D]."""
    n, d = _soft_label_batch(x, label)
    return x.reshape(n, d), label.reshape(n, d)


@register_cpu("CrossEntropy")
def cross_entropy(x, label):
    rows, target = _soft_labels(x, label)
    return -(target * np.log(_floor(rows))).sum(axis=1, dtype=x.dtype)


@register_cpu("CrossEntropyGradient")
def cross_entropy_gradient(x, label, dy):
    rows, target = _soft_labels(x, label)
    column = _column(dy, rows.shape[0])
    return (-column * target / _floor(rows)).astype(x.dtype, copy=False).reshape(x.shape)


# Averages and distances ----------------------------------------------------------

@register_cpu("AveragedLoss")
def averaged_loss(x):
    if x.dtype.kind != "f":
        raise ValueError(f"X must be float, got {x.dtype}")
    return np.asarray(x.mean() if x.size else 0.0, dtype=x.dtype)


@register_cpu("AveragedLossGradient")
def averaged_loss_gradient(x, dy):
    scalar_grad(dy.shape)
    value = dy.reshape(()).item()
    return np.full(x.shape, value / max(x.size, 1), dtype=x.dtype)


def _differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """X - Y as [N, D]."""
    shape = distance_rows(x.shape, y.shape)
    return (x - y).reshape(shape)


@register_cpu("SquaredL2Distance")
def squared_l2_distance(x, y):
    diff = _differences(x, y)
    return np.einsum("ij,ij->i", diff, diff) * 0.5


@register_cpu("SquaredL2DistanceGradient")
def squared_l2_distance_gradient(x, y, dz):
    diff = _differences(x, y)
    diff *= _column(dz, diff.shape[0], "dZ")
    dx = diff.reshape(x.shape)
    return dx, -dx


# Sigmoid cross-entropy on logits ------------------------------------------------

def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(x, x.dtype.type(0))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-_softplus(-x))


# Per element: (the log-likelihood whose mean over the last axis is -loss, its derivative).
_SIGMOID_XENT = {
    "plain": (lambda lg, t: t * lg - _softplus(lg), lambda lg, t: t - _sigmoid(lg)),
    "log_D_trick": (lambda lg, t: (2 * t - 1) * -_softplus(-lg), lambda lg, t: (2 * t - 1) * _sigmoid(-lg)),
    "unjoined_lr_loss": (lambda lg, t: t * lg - (1 - t) * _softplus(lg),
                         lambda lg, t: t - (1 - t) * _sigmoid(lg)),
}


def _logits_and_targets(logits, targets) -> None:
    same_shape(logits.shape, targets.shape, ("logits", "targets"))


def _rows_and_inner(logits) -> tuple[int, int]:
    """(rows, D): the logits as rows over the last axis (0-d logits: one row of one)."""
    inner = logits.shape[-1] if logits.ndim else 1
    return math.prod(logits.shape[:-1]), inner


@register_cpu("SigmoidCrossEntropyWithLogits", specialize=True)
def sigmoid_cross_entropy_with_logits(*, log_D_trick, unjoined_lr_loss):
    likelihood, _ = _SIGMOID_XENT[sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)]

    def kernel(logits, targets):
        _logits_and_targets(logits, targets)
        return _negative_row_means(likelihood(logits, targets), logits.dtype)
    return kernel


@register_cpu("SigmoidCrossEntropyWithLogitsGradient", specialize=True)
def sigmoid_cross_entropy_with_logits_gradient(*, log_D_trick, unjoined_lr_loss):
    _, derivative = _SIGMOID_XENT[sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)]

    def kernel(dy, logits, targets):
        _logits_and_targets(logits, targets)
        return _row_mean_gradient(dy, logits, derivative(logits, targets))
    return kernel


def _negative_row_means(per_element: np.ndarray, dtype) -> np.ndarray:
    """-(mean over the last axis) in `dtype` (0-d: -the element)."""
    if per_element.ndim == 0:
        return np.asarray(-per_element, dtype=dtype)
    return -per_element.mean(axis=-1, dtype=dtype)


def _row_mean_gradient(dy, logits, derivative: np.ndarray) -> np.ndarray:
    """dlogits of _negative_row_means, given each element's derivative."""
    _, inner = _rows_and_inner(logits)
    row_grad(dy.shape, logits.shape)
    factor = dy.reshape(logits.shape[:-1] + (1,) if logits.ndim else ()) / -inner
    return (factor * derivative).astype(logits.dtype, copy=False)


@register_cpu("WeightedSigmoidCrossEntropyWithLogits")
def weighted_sigmoid_cross_entropy_with_logits(logits, targets, weights):
    weighted_xent_shapes(logits.shape, targets.shape, weights.shape)
    likelihood, _ = _SIGMOID_XENT["plain"]
    return _negative_row_means(likelihood(logits, targets) * weights, logits.dtype)


@register_cpu("WeightedSigmoidCrossEntropyWithLogitsGradient")
def weighted_sigmoid_cross_entropy_with_logits_gradient(dy, logits, targets, weights):
    weighted_xent_shapes(logits.shape, targets.shape, weights.shape)
    _, derivative = _SIGMOID_XENT["plain"]
    return _row_mean_gradient(dy, logits, derivative(logits, targets) * weights)


# Accuracy -------------------------------------------------------------------------

@register_cpu("Accuracy")
def accuracy(predictions, labels, *, top_k):
    n, d = accuracy_batch(predictions.shape, labels.shape)
    classes = class_labels(labels, n, d)
    if n == 0:
        return np.zeros((), np.float32)
    # A label's rank counts the higher scores and the equal ones at lower class
    # indices, i.e. its place in a stable sort by descending score.
    label_scores = predictions[np.arange(n), classes][:, None]
    ahead = (predictions > label_scores) | ((predictions == label_scores)
                                            & (np.arange(d) < classes[:, None]))
    correct = np.count_nonzero(ahead.sum(axis=1) < top_k)
    return np.asarray(correct / n, dtype=np.float32)


# Gradient makers. Labels and targets are never differentiated.
gradient_op("LabelCrossEntropy", "I0 I1 GO0")
gradient_op("CrossEntropy", "I0 I1 GO0")
gradient_op("AveragedLoss", "I0 GO0")
gradient_op("SquaredL2Distance", "I0 I1 GO0", "GI0 GI1")
gradient_op("SigmoidCrossEntropyWithLogits", "GO0 I0 I1")
gradient_op("WeightedSigmoidCrossEntropyWithLogits", "GO0 I0 I1 I2")


# CUDA launchers (loss.cu). Labels are checked on a host copy with the CPU's
# checks, then read by the kernels as int32. cuda.NULL stands for an absent input.
ONE_BLOCK = {"block": (cuda.ROW_THREADS, 1, 1), "grid": (1, 1)}  # the scalar kernels


def labels_on_gpu(labels, checked: np.ndarray):
    """The labels as an int32 GPUArray (`checked`: their host copy, already checked)."""
    if cuda.is_gpu_array(labels) and labels.dtype == np.int32:
        return labels
    return cuda.as_gpu(checked.astype(np.int32))


def zeros_on_gpu(shape):
    return cuda.as_gpu(np.zeros(shape, np.float32)) if math.prod(shape) else cuda.empty(shape)


@register_cuda("LabelCrossEntropy")
def label_cross_entropy_cuda(x, label):
    n, d = xent_labels(x.shape, label.shape, soft=False)
    checked = class_labels(cuda.copy_to_cpu(label), n, d, "label")
    (x,) = cuda.float32_inputs(x)
    y = cuda.empty((n,))
    if n:  # then d > 0: the label check needs a class
        cuda.launch("loss.cu", "label_cross_entropy", n, x, labels_on_gpu(label, checked),
                    y, np.int64(n), np.int64(d))
    return y


@register_cuda("LabelCrossEntropyGradient")
def label_cross_entropy_gradient_cuda(x, label, dy):
    n, d = xent_labels(x.shape, label.shape, soft=False)
    checked = class_labels(cuda.copy_to_cpu(label), n, d, "label")
    per_example_grad(dy.shape, n)
    x, dy = cuda.float32_inputs(x, dy)
    dx = cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "label_cross_entropy_gradient", x.size, x,
                    labels_on_gpu(label, checked), dy, dx, np.int64(n), np.int64(d))
    return dx


@register_cuda("AveragedLoss")
def averaged_loss_cuda(x):
    (x,) = cuda.float32_inputs(x)
    if x.size == 0:
        return zeros_on_gpu(())
    y = cuda.empty(())
    cuda.function("loss.cu", "mean_all")(x, y, np.int64(x.size), **ONE_BLOCK)
    return y


@register_cuda("AveragedLossGradient")
def averaged_loss_gradient_cuda(x, dy):
    scalar_grad(dy.shape)
    x, dy = cuda.float32_inputs(x, dy)
    dx = cuda.empty_like(x)
    cuda.launch("loss.cu", "averaged_loss_gradient", dx.size, dy, dx, np.int64(dx.size))
    return dx


@register_cuda("SquaredL2Distance")
def squared_l2_distance_cuda(x, y):
    n, d = distance_rows(x.shape, y.shape)
    x, y = cuda.float32_inputs(x, y)
    if d == 0:  # also n == 0: nothing to read
        return zeros_on_gpu((n,))
    z = cuda.empty((n,))
    cuda.launch_rows("loss.cu", "squared_l2_distance_rows", n, x, y, z,
                np.int64(n), np.int64(d))
    return z


@register_cuda("SquaredL2DistanceGradient")
def squared_l2_distance_gradient_cuda(x, y, dz):
    n, d = distance_rows(x.shape, y.shape)
    per_example_grad(dz.shape, n, "dZ")
    x, y, dz = cuda.float32_inputs(x, y, dz)
    dx, dy = cuda.empty_like(x), cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "squared_l2_distance_gradient", x.size, x, y, dz,
                    dx, dy, np.int64(n), np.int64(d))
    return dx, dy


@register_cuda("Accuracy")
def accuracy_cuda(predictions, labels, *, top_k):
    n, d = accuracy_batch(predictions.shape, labels.shape)
    checked = class_labels(cuda.copy_to_cpu(labels), n, d)
    (predictions,) = cuda.float32_inputs(predictions)
    if n == 0:
        return zeros_on_gpu(())
    correct, result = cuda.empty((n,)), cuda.empty(())
    cuda.launch_rows("loss.cu", "accuracy_rows", n, predictions, labels_on_gpu(labels, checked),
                correct, np.int32(min(top_k, 2**31 - 1)), np.int64(n), np.int64(d))
    cuda.function("loss.cu", "mean_all")(correct, result, np.int64(n), **ONE_BLOCK)
    return result


@register_cuda("CrossEntropy")
def cross_entropy_cuda(x, label):
    n, d = _soft_label_batch(x, cuda.copy_to_cpu(label))
    x, label = cuda.float32_inputs(x, label)
    if d == 0:  # also n == 0: nothing to read
        return zeros_on_gpu((n,))
    y = cuda.empty((n,))
    cuda.launch_rows("loss.cu", "cross_entropy_rows", n, x, label, y, np.int64(n), np.int64(d))
    return y


@register_cuda("CrossEntropyGradient")
def cross_entropy_gradient_cuda(x, label, dy):
    n, d = _soft_label_batch(x, cuda.copy_to_cpu(label))
    per_example_grad(dy.shape, n)
    x, label, dy = cuda.float32_inputs(x, label, dy)
    dx = cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "cross_entropy_gradient", x.size, x, label, dy, dx,
                    np.int64(n), np.int64(d))
    return dx


# loss.cu's codes for the variants of sigmoid_xent_element and its derivative.
SIGMOID_XENT_CODES = {"plain": 0, "log_D_trick": 1, "unjoined_lr_loss": 2}


@register_cuda("SigmoidCrossEntropyWithLogits", specialize=True)
def sigmoid_cross_entropy_with_logits_cuda(*, log_D_trick, unjoined_lr_loss):
    code = np.int32(SIGMOID_XENT_CODES[sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)])

    def kernel(logits, targets):
        _logits_and_targets(logits, targets)
        logits, targets = cuda.float32_inputs(logits, targets)
        rows, inner = _rows_and_inner(logits)
        y = cuda.empty(logits.shape[:-1])
        if rows:  # inner == 0 reads nothing: the mean of no elements is NaN, as NumPy's
            x_arg, t_arg = (logits, targets) if inner else (cuda.NULL, cuda.NULL)
            cuda.launch_rows("loss.cu", "sigmoid_xent_rows", rows, x_arg, t_arg, y, code,
                             np.int64(rows), np.int64(inner))
        return y
    return kernel


@register_cuda("SigmoidCrossEntropyWithLogitsGradient", specialize=True)
def sigmoid_cross_entropy_with_logits_gradient_cuda(*, log_D_trick, unjoined_lr_loss):
    code = np.int32(SIGMOID_XENT_CODES[sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)])

    def kernel(dy, logits, targets):
        _logits_and_targets(logits, targets)
        row_grad(dy.shape, logits.shape)
        dy, logits, targets = cuda.float32_inputs(dy, logits, targets)
        _, inner = _rows_and_inner(logits)
        dx = cuda.empty_like(logits)
        cuda.launch("loss.cu", "sigmoid_xent_gradient", dx.size, dy, logits, targets, dx, code,
                    np.int64(dx.size), np.int64(inner))
        return dx
    return kernel
