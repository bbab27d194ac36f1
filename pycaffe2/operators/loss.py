"""Loss and metric kernels (NumPy), with their gradient ops.

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
from pycaffe2.operators.nn import as_rows, log_softmax_rows, row_shape
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda, register_gradient

LOG_FLOOR = 1e-20


def _floor(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x.dtype.type(LOG_FLOOR))


def _class_labels(labels: np.ndarray, n: int, d: int, name: str = "labels") -> np.ndarray:
    """Integer labels as a flat [N] array of classes in [0, D), or raise."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer class indices, got {labels.dtype}")
    if labels.size != n:
        raise ValueError(f"{name} are {list(labels.shape)} but the batch has N={n}: "
                         f"one class index per example is needed")
    flat = labels.reshape(n)
    if n and (flat.min() < 0 or flat.max() >= d):
        raise ValueError(f"{name} must be class indices in [0, {d}), got values in "
                         f"[{flat.min()}, {flat.max()}]")
    return flat


def _batch(x: np.ndarray, name: str = "X") -> tuple[int, int]:
    """(N, D) of X as a batch: dim 0 and the rest; a 1-D X is one example."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dim, got a 0-d array")
    if x.ndim == 1:
        return 1, x.shape[0]
    return x.shape[0], math.prod(x.shape[1:])


def _per_example_grad(dy: np.ndarray, n: int, name: str = "dY") -> np.ndarray:
    """dY as a column [N, 1]; it must be 1-D [N]."""
    if dy.shape != (n,):
        raise ValueError(f"{name} is {list(dy.shape)} but the batch has N={n}: {name} must be [{n}]")
    return cuda.reshape(dy, (n, 1))


def _check_scalar_grad(dy, name: str) -> None:
    if dy.size != 1:
        raise ValueError(f"{name} is {list(dy.shape)} but must hold one element (the gradient of a scalar)")


def _scalar_grad(dy: np.ndarray, name: str) -> float:
    _check_scalar_grad(dy, name)
    return dy.reshape(()).item()


# SoftmaxWithLoss -------------------------------------------------------------

def _softmax_targets(labels, rows: np.ndarray, label_prob: bool):
    """Class indices [N], or probability rows [N, D] checked like Caffe2 does."""
    n, d = rows.shape
    if not label_prob:
        return _class_labels(labels, n, d)
    if labels.dtype.kind != "f" or labels.size != n * d:
        raise ValueError(f"with label_prob=1, labels must be float probabilities of N*D={n * d} "
                         f"elements ([{n}, {d}]), got {list(labels.shape)} {labels.dtype}")
    target = labels.reshape(n, d)
    if n and target.min() < 0:
        raise ValueError("with label_prob=1, label probabilities must be nonnegative")
    row_sums = target.sum(axis=1, dtype=np.float64)
    if n and np.abs(row_sums - 1).max() >= 1e-5:
        raise ValueError(f"with label_prob=1, each row of labels must sum to 1 (+/- 1e-5), "
                         f"got a row summing to {row_sums[np.abs(row_sums - 1).argmax()]}")
    return target


def _example_weights(weights, n: int):
    if weights is None:
        return None
    if weights.size != n:
        raise ValueError(f"weights are {list(weights.shape)} but the batch has N={n}: "
                         "one weight per example is needed")
    return weights.reshape(n)


@register_cpu("SoftmaxWithLoss")
def softmax_with_loss(logits, labels, weights=None, *, scale, label_prob, axis):
    rows = as_rows(logits, axis, "logits")
    n = rows.shape[0]
    target = _softmax_targets(labels, rows, label_prob)
    w = _example_weights(weights, n)
    dtype = logits.dtype
    if rows.size == 0:
        return logits.copy(), np.zeros((), dtype)
    log_p = log_softmax_rows(rows)
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


def _check_softmax_shape(logits, p) -> None:
    if p.shape != logits.shape:
        raise ValueError(f"logits is {list(logits.shape)} but softmax is {list(p.shape)}: "
                         "they must have the same shape")


@register_cpu("SoftmaxWithLossGradient")
def softmax_with_loss_gradient(logits, labels, third, fourth, fifth=None, *, scale, label_prob, axis):
    # Inputs: {logits, labels, softmax, dloss} or {logits, labels, weights, softmax, dloss}.
    weights, p, dloss = (None, third, fourth) if fifth is None else (third, fourth, fifth)
    _check_softmax_shape(logits, p)
    rows = as_rows(p, axis, "softmax")
    n = rows.shape[0]
    target = _softmax_targets(labels, rows, label_prob)
    w = _example_weights(weights, n)
    factor = _scalar_grad(dloss, "dloss")
    if label_prob:
        dx = rows - target
    else:
        dx = rows.copy()
        dx[np.arange(n), target] -= 1
    total = n
    if w is not None:
        dx *= w.reshape(n, 1)
        total = w.sum()
    dx *= p.dtype.type(scale * factor / total if total != 0 else 0.0)
    return dx.reshape(logits.shape)


# Cross-entropies on probabilities -----------------------------------------------

@register_cpu("LabelCrossEntropy")
def label_cross_entropy(x, label):
    n, d = _batch(x)
    _check_label_shape(label, n, 1)
    classes = _class_labels(label, n, d, "label")
    return -np.log(_floor(x.reshape(n, d)[np.arange(n), classes]))


@register_cpu("LabelCrossEntropyGradient")
def label_cross_entropy_gradient(x, label, dy):
    n, d = _batch(x)
    _check_label_shape(label, n, 1)
    classes = _class_labels(label, n, d, "label")
    column = _per_example_grad(dy, n)
    rows = np.arange(n)
    dx = np.zeros((n, d), dtype=x.dtype)
    dx[rows, classes] = -column[:, 0] / _floor(x.reshape(n, d)[rows, classes])
    return dx.reshape(x.shape)


def _check_label_shape(label: np.ndarray, n: int, width: int) -> None:
    """Labels must be [N, width], or [N] when width is 1."""
    allowed = [(n,), (n, width)] if width == 1 else [(n, width)]
    if label.shape not in allowed:
        need = " or ".join(str(list(shape)) for shape in allowed)
        raise ValueError(f"X is a batch of N={n} but label is {list(label.shape)}: label must be {need}")


def _soft_label_batch(x, label: np.ndarray) -> tuple[int, int]:
    """(N, D) of X, after checking its soft labels (a host array)."""
    n, d = _batch(x)
    _check_label_shape(label, n, d)
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
    column = _per_example_grad(dy, rows.shape[0])
    return (-column * target / _floor(rows)).astype(x.dtype, copy=False).reshape(x.shape)


# Averages and distances ----------------------------------------------------------

@register_cpu("AveragedLoss")
def averaged_loss(x):
    if x.dtype.kind != "f":
        raise ValueError(f"X must be float, got {x.dtype}")
    return np.asarray(x.mean() if x.size else 0.0, dtype=x.dtype)


@register_cpu("AveragedLossGradient")
def averaged_loss_gradient(x, dy):
    value = _scalar_grad(dy, "dY")
    return np.full(x.shape, value / max(x.size, 1), dtype=x.dtype)


def _distance_batch(x, y) -> tuple[int, int]:
    """(N, D) of X and Y as [N, D] (N = dim 0, or 1 for 0-d inputs)."""
    if x.shape != y.shape:
        raise ValueError(f"X is {list(x.shape)} but Y is {list(y.shape)}: they must have the same shape")
    n = x.shape[0] if x.ndim else 1
    return n, x.size // n if n else 0


def _differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """X - Y as [N, D]."""
    shape = _distance_batch(x, y)
    return (x - y).reshape(shape)


@register_cpu("SquaredL2Distance")
def squared_l2_distance(x, y):
    diff = _differences(x, y)
    return np.einsum("ij,ij->i", diff, diff) * 0.5


@register_cpu("SquaredL2DistanceGradient")
def squared_l2_distance_gradient(x, y, dz):
    diff = _differences(x, y)
    diff *= _per_example_grad(dz, diff.shape[0], "dZ")
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


def _sigmoid_xent_variant(log_D_trick: bool, unjoined_lr_loss: bool) -> str:
    if log_D_trick and unjoined_lr_loss:
        raise ValueError("log_D_trick and unjoined_lr_loss cannot both be set")
    return "log_D_trick" if log_D_trick else "unjoined_lr_loss" if unjoined_lr_loss else "plain"


def _logits_and_targets(logits: np.ndarray, targets: np.ndarray) -> None:
    if logits.shape != targets.shape:
        raise ValueError(f"logits is {list(logits.shape)} but targets is {list(targets.shape)}: "
                         "they must have the same shape")


def _check_row_grad(dy, logits) -> None:
    """dY must hold one element per row of the logits (all but the last axis)."""
    if dy.size != math.prod(logits.shape[:-1]):
        raise ValueError(f"dY is {list(dy.shape)} but logits are {list(logits.shape)}: dY needs "
                         f"one element per row, {list(logits.shape[:-1])}")


def _rows_and_inner(logits) -> tuple[int, int]:
    """(rows, D): the logits as rows over the last axis (0-d logits: one row of one)."""
    inner = logits.shape[-1] if logits.ndim else 1
    return math.prod(logits.shape[:-1]), inner


@register_cpu("SigmoidCrossEntropyWithLogits", specialize=True)
def sigmoid_cross_entropy_with_logits(*, log_D_trick, unjoined_lr_loss):
    likelihood, _ = _SIGMOID_XENT[_sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)]

    def kernel(logits, targets):
        _logits_and_targets(logits, targets)
        per_element = likelihood(logits, targets)
        if logits.ndim == 0:
            return np.asarray(-per_element, dtype=logits.dtype)
        return -per_element.mean(axis=-1, dtype=logits.dtype)
    return kernel


@register_cpu("SigmoidCrossEntropyWithLogitsGradient", specialize=True)
def sigmoid_cross_entropy_with_logits_gradient(*, log_D_trick, unjoined_lr_loss):
    _, derivative = _SIGMOID_XENT[_sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)]

    def kernel(dy, logits, targets):
        _logits_and_targets(logits, targets)
        _, inner = _rows_and_inner(logits)
        _check_row_grad(dy, logits)
        factor = dy.reshape(logits.shape[:-1] + (1,) if logits.ndim else ()) / -inner
        return (factor * derivative(logits, targets)).astype(logits.dtype, copy=False)
    return kernel


# Accuracy -------------------------------------------------------------------------

def _accuracy_batch(predictions, labels) -> tuple[int, int]:
    if predictions.ndim != 2:
        raise ValueError(f"predictions must be 2-D [N, D], got {list(predictions.shape)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got {list(labels.shape)}")
    return predictions.shape


@register_cpu("Accuracy")
def accuracy(predictions, labels, *, top_k):
    n, d = _accuracy_batch(predictions, labels)
    classes = _class_labels(labels, n, d)
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
@register_gradient("SoftmaxWithLoss")
def _softmax_with_loss_gradient(g):
    # {logits, labels, [weights], softmax, dloss}: the loss is output 1.
    weights = [g.I(2)] if len(g.op.input) == 3 else []
    inputs = [g.I(0), g.I(1), *weights, g.O(0), g.GO(1)]
    return [g.Op("SoftmaxWithLossGradient", inputs, [g.GI(0)])]


gradient_op("LabelCrossEntropy", "I0 I1 GO0")
gradient_op("CrossEntropy", "I0 I1 GO0")
gradient_op("AveragedLoss", "I0 GO0")
gradient_op("SquaredL2Distance", "I0 I1 GO0", "GI0 GI1")
gradient_op("SigmoidCrossEntropyWithLogits", "GO0 I0 I1")


# CUDA launchers (loss.cu). Labels are checked on a host copy with the CPU's
# checks, then read by the kernels as int32. cuda.NULL stands for an absent input.
ONE_BLOCK = {"block": (cuda.ROW_THREADS, 1, 1), "grid": (1, 1)}  # the scalar kernels


def _labels_on_gpu(labels, checked: np.ndarray):
    """The labels as an int32 GPUArray (`checked`: their host copy, already checked)."""
    if cuda.is_gpu_array(labels) and labels.dtype == np.int32:
        return labels
    return cuda.as_gpu(checked.astype(np.int32))


def _zeros(shape):
    return cuda.as_gpu(np.zeros(shape, np.float32)) if math.prod(shape) else cuda.empty(shape)

def _softmax_target_args(labels, n: int, d: int, label_prob: bool):
    """(labels, targets) kernel args, one of them cuda.NULL, after the CPU's checks."""
    shape_only = np.broadcast_to(np.float32(0), (n, d))  # the checks read only its shape
    checked = _softmax_targets(cuda.copy_to_cpu(labels), shape_only, label_prob)
    if n * d == 0:
        return cuda.NULL, cuda.NULL
    if label_prob:
        return cuda.NULL, cuda.float32_inputs("SoftmaxWithLoss", labels)[0]
    return _labels_on_gpu(labels, checked), cuda.NULL


@register_cuda("SoftmaxWithLoss")
def softmax_with_loss_cuda(logits, labels, weights=None, *, scale, label_prob, axis):
    n, d = row_shape(logits.shape, axis, "logits")
    label_arg, target_arg = _softmax_target_args(labels, n, d, label_prob)
    _example_weights(weights, n)
    logits, *weights = cuda.float32_inputs("SoftmaxWithLoss", logits, *([] if weights is None else [weights]))
    p = cuda.empty_like(logits)
    if logits.size == 0:
        return p, _zeros(())
    weight_arg = weights[0] if weights else cuda.NULL
    losses, loss = cuda.empty((n,)), cuda.empty(())
    cuda.launch_rows("loss.cu", "softmax_with_loss_rows", n, logits, label_arg, target_arg,
                weight_arg, p, losses, np.int64(n), np.int64(d))
    cuda.function("loss.cu", "softmax_with_loss_total")(
        losses, weight_arg, loss, np.float32(scale), np.int64(n), **ONE_BLOCK)
    return p, loss


@register_cuda("SoftmaxWithLossGradient")
def softmax_with_loss_gradient_cuda(logits, labels, third, fourth, fifth=None, *, scale, label_prob, axis):
    weights, p, dloss = (None, third, fourth) if fifth is None else (third, fourth, fifth)
    _check_softmax_shape(logits, p)
    n, d = row_shape(p.shape, axis, "softmax")
    label_arg, target_arg = _softmax_target_args(labels, n, d, label_prob)
    _example_weights(weights, n)
    _check_scalar_grad(dloss, "dloss")
    p, dloss, *weights = cuda.float32_inputs("SoftmaxWithLossGradient", p, dloss,
                                    *([] if weights is None else [weights]))
    dx = cuda.empty_like(p)
    if p.size == 0:
        return dx
    weight_arg = weight_sum_arg = cuda.NULL
    if weights:
        weight_sum = cuda.empty((1,))
        cuda.function("loss.cu", "sum_all")(weights[0], weight_sum, np.int64(n),
                                            **ONE_BLOCK)
        weight_arg, weight_sum_arg = weights[0], weight_sum
    cuda.launch("loss.cu", "softmax_with_loss_gradient", p.size, p, label_arg, target_arg,
                weight_arg, weight_sum_arg, dloss, dx, np.float32(scale),
                np.int64(n), np.int64(d))
    return dx


@register_cuda("LabelCrossEntropy")
def label_cross_entropy_cuda(x, label):
    n, d = _batch(x)
    _check_label_shape(label, n, 1)
    checked = _class_labels(cuda.copy_to_cpu(label), n, d, "label")
    (x,) = cuda.float32_inputs("LabelCrossEntropy", x)
    y = cuda.empty((n,))
    if n:  # then d > 0: the label check needs a class
        cuda.launch("loss.cu", "label_cross_entropy", n, x, _labels_on_gpu(label, checked),
                    y, np.int64(n), np.int64(d))
    return y


@register_cuda("LabelCrossEntropyGradient")
def label_cross_entropy_gradient_cuda(x, label, dy):
    n, d = _batch(x)
    _check_label_shape(label, n, 1)
    checked = _class_labels(cuda.copy_to_cpu(label), n, d, "label")
    _per_example_grad(dy, n)
    x, dy = cuda.float32_inputs("LabelCrossEntropyGradient", x, dy)
    dx = cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "label_cross_entropy_gradient", x.size, x,
                    _labels_on_gpu(label, checked), dy, dx, np.int64(n), np.int64(d))
    return dx


@register_cuda("AveragedLoss")
def averaged_loss_cuda(x):
    (x,) = cuda.float32_inputs("AveragedLoss", x)
    if x.size == 0:
        return _zeros(())
    y = cuda.empty(())
    cuda.function("loss.cu", "mean_all")(x, y, np.int64(x.size), **ONE_BLOCK)
    return y


@register_cuda("AveragedLossGradient")
def averaged_loss_gradient_cuda(x, dy):
    _check_scalar_grad(dy, "dY")
    x, dy = cuda.float32_inputs("AveragedLossGradient", x, dy)
    dx = cuda.empty_like(x)
    cuda.launch("loss.cu", "averaged_loss_gradient", dx.size, dy, dx, np.int64(dx.size))
    return dx


@register_cuda("SquaredL2Distance")
def squared_l2_distance_cuda(x, y):
    n, d = _distance_batch(x, y)
    x, y = cuda.float32_inputs("SquaredL2Distance", x, y)
    if d == 0:  # also n == 0: nothing to read
        return _zeros((n,))
    z = cuda.empty((n,))
    cuda.launch_rows("loss.cu", "squared_l2_distance_rows", n, x, y, z,
                np.int64(n), np.int64(d))
    return z


@register_cuda("SquaredL2DistanceGradient")
def squared_l2_distance_gradient_cuda(x, y, dz):
    n, d = _distance_batch(x, y)
    _per_example_grad(dz, n, "dZ")
    x, y, dz = cuda.float32_inputs("SquaredL2DistanceGradient", x, y, dz)
    dx, dy = cuda.empty_like(x), cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "squared_l2_distance_gradient", x.size, x, y, dz,
                    dx, dy, np.int64(n), np.int64(d))
    return dx, dy


@register_cuda("Accuracy")
def accuracy_cuda(predictions, labels, *, top_k):
    n, d = _accuracy_batch(predictions, labels)
    checked = _class_labels(cuda.copy_to_cpu(labels), n, d)
    (predictions,) = cuda.float32_inputs("Accuracy", predictions)
    if n == 0:
        return _zeros(())
    correct, result = cuda.empty((n,)), cuda.empty(())
    cuda.launch_rows("loss.cu", "accuracy_rows", n, predictions, _labels_on_gpu(labels, checked),
                correct, np.int32(min(top_k, 2**31 - 1)), np.int64(n), np.int64(d))
    cuda.function("loss.cu", "mean_all")(correct, result, np.int64(n), **ONE_BLOCK)
    return result


@register_cuda("CrossEntropy")
def cross_entropy_cuda(x, label):
    n, d = _soft_label_batch(x, cuda.copy_to_cpu(label))
    x, label = cuda.float32_inputs("CrossEntropy", x, label)
    if d == 0:  # also n == 0: nothing to read
        return _zeros((n,))
    y = cuda.empty((n,))
    cuda.launch_rows("loss.cu", "cross_entropy_rows", n, x, label, y, np.int64(n), np.int64(d))
    return y


@register_cuda("CrossEntropyGradient")
def cross_entropy_gradient_cuda(x, label, dy):
    n, d = _soft_label_batch(x, cuda.copy_to_cpu(label))
    _per_example_grad(dy, n)
    x, label, dy = cuda.float32_inputs("CrossEntropyGradient", x, label, dy)
    dx = cuda.empty_like(x)
    if x.size:
        cuda.launch("loss.cu", "cross_entropy_gradient", x.size, x, label, dy, dx,
                    np.int64(n), np.int64(d))
    return dx


# loss.cu's codes for the variants of sigmoid_xent_element and its derivative.
SIGMOID_XENT_CODES = {"plain": 0, "log_D_trick": 1, "unjoined_lr_loss": 2}


@register_cuda("SigmoidCrossEntropyWithLogits", specialize=True)
def sigmoid_cross_entropy_with_logits_cuda(*, log_D_trick, unjoined_lr_loss):
    code = np.int32(SIGMOID_XENT_CODES[_sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)])

    def kernel(logits, targets):
        _logits_and_targets(logits, targets)
        logits, targets = cuda.float32_inputs("SigmoidCrossEntropyWithLogits", logits, targets)
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
    code = np.int32(SIGMOID_XENT_CODES[_sigmoid_xent_variant(log_D_trick, unjoined_lr_loss)])

    def kernel(dy, logits, targets):
        _logits_and_targets(logits, targets)
        _check_row_grad(dy, logits)
        dy, logits, targets = cuda.float32_inputs("SigmoidCrossEntropyWithLogitsGradient",
                                                  dy, logits, targets)
        _, inner = _rows_and_inner(logits)
        dx = cuda.empty_like(logits)
        cuda.launch("loss.cu", "sigmoid_xent_gradient", dx.size, dy, logits, targets, dx, code,
                    np.int64(dx.size), np.int64(inner))
        return dx
    return kernel
