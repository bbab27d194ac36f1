"""Inference rules of the loss family (SoftmaxWithLoss is in softmax_loss.py,
the other distances in distance.py), and the checks the family's kernels
share with them.

The cross-entropy ops see their first input as a batch [N, D] split after the
first dim (a 1-D input is one example). Per-example losses are [N], averages
are 0-d scalars, both of the first input's float type (float32 when unknown);
Accuracy is always float32. Every gradient op's main output is like the
forward op's first input. Integer class labels are int32, as Caffe2 reads them
(the CPU kernels take any integer type). The checks take plain shapes and
args: the CPU kernels and CUDA launchers call them with their arrays' shapes.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape, same_shapes, shape_of
from pycaffe2.schema.inference.activation import FLOAT_TYPES

SCALAR = TensorInfo((), "float32")


def loss_info(x, shape: tuple) -> TensorInfo:
    """A loss of this shape in X's float type (float32 when X is unknown or not float)."""
    return TensorInfo(shape, x.dtype if x is not None and x.dtype in FLOAT_TYPES else "float32")


def int32_labels(label, name: str = "label") -> None:
    """A known label TensorInfo must be int32 class indices."""
    if label is not None and label.dtype != "int32":
        raise ShapeError(f"{name} must be int32 class indices, got {label.dtype}")


def batch_rows(x_shape) -> tuple[int, int]:
    """(N, D) of X seen as a batch: [dim 0, the rest], a 1-D X being one example."""
    if not x_shape:
        raise ShapeError("X must have at least one dim, got []")
    if len(x_shape) == 1:
        return 1, x_shape[0]
    return x_shape[0], math.prod(x_shape[1:])


def xent_labels(x_shape, label_shape, soft: bool) -> tuple[int, int]:
    """(N, D) of X after checking the label's shape: [N, D] for soft labels, class
    indices [N] or [N, 1]; a 1-D label fits only one value per example."""
    n, d = batch_rows(x_shape)
    width = d if soft else 1
    allowed = [(n,), (n, width)] if width == 1 else [(n, width)]
    if tuple(label_shape) not in allowed:
        need = " or ".join(str(list(shape)) for shape in allowed)
        raise ShapeError(f"X {list(x_shape)} is a batch of N={n}, D={d}, but label is "
                         f"{list(label_shape)}: label must be {need}")
    return n, d


def per_example_grad(dy_shape, n: int, name: str = "dY") -> None:
    """The gradient of per-example losses must be [N]."""
    if tuple(dy_shape) != (n,):
        raise ShapeError(f"{name} is {list(dy_shape)} but the batch has N={n}: {name} must be [{n}]")


def scalar_grad(dy_shape, name: str = "dY") -> None:
    """The gradient of a scalar loss must hold one element."""
    if math.prod(dy_shape) != 1:
        raise ShapeError(f"{name} is {list(dy_shape)} but must hold one element (the gradient of a scalar)")


def distance_rows(x_shape, y_shape) -> tuple[int, int]:
    """(N, D) of X and Y, which must have the same shape (N = dim 0, or 1 when 0-d)."""
    same_shape(x_shape, y_shape, ("X", "Y"))
    n = x_shape[0] if len(x_shape) else 1
    return n, math.prod(x_shape) // n if n else 0


def sigmoid_xent_variant(log_D_trick, unjoined_lr_loss) -> str:
    """SigmoidCrossEntropyWithLogits's variant from its args."""
    if log_D_trick and unjoined_lr_loss:
        raise ShapeError("log_D_trick and unjoined_lr_loss cannot both be set")
    return "log_D_trick" if log_D_trick else "unjoined_lr_loss" if unjoined_lr_loss else "plain"


def weighted_xent_shapes(logits_shape, targets_shape, weights_shape) -> None:
    """WeightedSigmoidCrossEntropyWithLogits weighs each element: one shape for all three (None: unknown)."""
    same_shapes({"logits": logits_shape, "targets": targets_shape, "weights": weights_shape})


def row_grad(dy_shape, logits_shape) -> None:
    """dY must hold one element per row of the logits (all but the last axis)."""
    if math.prod(dy_shape) != math.prod(logits_shape[:-1]):
        raise ShapeError(f"dY is {list(dy_shape)} but logits are {list(logits_shape)}: dY needs "
                         f"one element per row, {list(logits_shape[:-1])}")


def accuracy_batch(predictions_shape, labels_shape) -> tuple[int, int]:
    """(N, D) of predictions [N, D] with labels [N] (either None when unknown)."""
    if predictions_shape is not None and len(predictions_shape) != 2:
        raise ShapeError(f"predictions must be 2-D [N, D], got {list(predictions_shape)}")
    if labels_shape is not None and len(labels_shape) != 1:
        raise ShapeError(f"labels must be 1-D [N], got {list(labels_shape)}")
    if predictions_shape is not None and labels_shape is not None and labels_shape[0] != predictions_shape[0]:
        raise ShapeError(f"predictions are {list(predictions_shape)} but labels are "
                         f"{list(labels_shape)}: N must match")
    return predictions_shape


def _xent_rows(x, label, soft: bool) -> int | None:
    """N when known, after checking the labels against X."""
    int32_labels(None if soft else label)
    if x is None:
        return label.shape[0] if label is not None and label.shape else None
    if label is None:
        return batch_rows(x.shape)[0]
    return xent_labels(x.shape, label.shape, soft)[0]


def _batch_grad(dy, n: int | None, name: str = "dY") -> None:
    if dy is not None and n is not None:
        per_example_grad(dy.shape, n, name)


@rule("loss_label_cross_entropy")
def label_cross_entropy(op: OpView, inputs: list) -> list:
    """Y is float [N]; label is int32 [N] or [N, 1]."""
    n = _xent_rows(inputs[0], inputs[1], soft=False)
    return [None if n is None else loss_info(inputs[0], (n,))]


@rule("loss_label_cross_entropy_gradient")
def label_cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be [N]."""
    x, label, dy = inputs
    _batch_grad(dy, _xent_rows(x, label, soft=False))
    return [x]


@rule("loss_cross_entropy")
def cross_entropy(op: OpView, inputs: list) -> list:
    """Y is float [N]; label is [N, D] (or [N] when D = 1)."""
    n = _xent_rows(inputs[0], inputs[1], soft=True)
    return [None if n is None else loss_info(inputs[0], (n,))]


@rule("loss_cross_entropy_gradient")
def cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be [N]."""
    x, label, dy = inputs
    _batch_grad(dy, _xent_rows(x, label, soft=True))
    return [x]


@rule("loss_averaged_loss")
def averaged_loss(op: OpView, inputs: list) -> list:
    """Y is a 0-d float scalar whatever X's shape."""
    return [loss_info(inputs[0], ())]


@rule("loss_averaged_loss_gradient")
def averaged_loss_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must hold one element."""
    x, dy = inputs
    if dy is not None:
        scalar_grad(dy.shape)
    return [x]


def _distance_rows(x, y) -> int | None:
    same_shape(shape_of(x), shape_of(y), ("X", "Y"))
    known = x if x is not None else y
    return None if known is None else distance_rows(known.shape, known.shape)[0]


@rule("loss_squared_l2_distance")
def squared_l2_distance(op: OpView, inputs: list) -> list:
    """Z is [N] (N = dim 0, or 1 for 0-d inputs); X and Y must have the same shape."""
    x, y = inputs
    n = _distance_rows(x, y)
    return [None if n is None else TensorInfo((n,), (x if x is not None else y).dtype)]


@rule("loss_squared_l2_distance_gradient")
def squared_l2_distance_gradient(op: OpView, inputs: list) -> list:
    """dX is like X and dY like Y; dZ must be [N]."""
    x, y, dz = inputs
    _batch_grad(dz, _distance_rows(x, y), "dZ")
    return [x if x is not None else y, y if y is not None else x]


def _logits(op: OpView, logits, targets):
    """The known one of logits and targets, which must have the same shape."""
    sigmoid_xent_variant(op.arg("log_D_trick", 0), op.arg("unjoined_lr_loss", 0))
    same_shape(shape_of(logits), shape_of(targets), ("logits", "targets"))
    return logits if logits is not None else targets


@rule("loss_sigmoid_cross_entropy")
def sigmoid_cross_entropy(op: OpView, inputs: list) -> list:
    """xentropy drops the logits' last axis; targets must have the logits' shape."""
    known = _logits(op, *inputs)
    return [None if known is None else loss_info(known, known.shape[:-1])]


@rule("loss_sigmoid_cross_entropy_gradient")
def sigmoid_cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits; dY must have the logits' shape without the last axis."""
    dy, logits, targets = inputs
    known = _logits(op, logits, targets)
    if known is not None and dy is not None:
        row_grad(dy.shape, known.shape)
    return [known]


@rule("loss_weighted_sigmoid_cross_entropy")
def weighted_sigmoid_cross_entropy(op: OpView, inputs: list) -> list:
    """xentropy drops the logits' last axis; targets and weights have the logits' shape."""
    weighted_xent_shapes(*(shape_of(info) for info in inputs))
    known = next((info for info in inputs if info is not None), None)
    return [None if known is None else loss_info(known, known.shape[:-1])]


@rule("loss_weighted_sigmoid_cross_entropy_gradient")
def weighted_sigmoid_cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits; dY must have the logits' shape without the last axis."""
    dy, *rest = inputs
    weighted_xent_shapes(*(shape_of(info) for info in rest))
    known = next((info for info in rest if info is not None), None)
    if known is not None and dy is not None:
        row_grad(dy.shape, known.shape)
    return [known]


@rule("loss_accuracy")
def accuracy(op: OpView, inputs: list) -> list:
    """A 0-d float scalar; predictions [N, D], labels int32 [N], top_k <= D."""
    x, labels = inputs
    int32_labels(labels, "labels")
    accuracy_batch(x and x.shape, labels and labels.shape)
    if x is not None and op.arg("top_k", 1) > x.shape[1]:  # validation only: the kernels count all
        raise ShapeError(f"top_k {op.arg('top_k', 1)} exceeds the {x.shape[1]} classes "
                         f"of predictions {list(x.shape)}")
    return [SCALAR]
