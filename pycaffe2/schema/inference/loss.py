"""Inference rules of the loss family.

Most losses see their first input as a batch [N, D]: SoftmaxWithLoss splits
before `axis`, the cross-entropy ops split after the first dim (a 1-D input
is one example). Per-example losses are [N], averages are 0-d scalars, both
of the first input's float type (float32 when unknown); Accuracy is always
float32. Every gradient op's main output is like the forward op's first
input. Integer class labels are int32, as Caffe2 reads them.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.nn import canonical_axis, check_same_shape

SCALAR = TensorInfo((), "float32")


def _loss_info(x, shape: tuple) -> TensorInfo:
    """A loss of this shape in X's float type (float32 when X is unknown or not float)."""
    return TensorInfo(shape, x.dtype if x is not None and x.dtype in FLOAT_TYPES else "float32")


def _int32_labels(op: OpView, label, name: str = "label") -> None:
    if label is not None and label.dtype != "int32":
        raise ShapeError(f"{op.type}: {name} must be int32 class indices, got {label.dtype}")


def batch_rows(op: OpView, x) -> tuple[int, int]:
    """(N, D) of X seen as a batch: [dim 0, the rest], a 1-D X being one example."""
    if not x.shape:
        raise ShapeError(f"{op.type}: X must have at least one dim, got []")
    if len(x.shape) == 1:
        return 1, x.shape[0]
    return x.shape[0], math.prod(x.shape[1:])


def _check_softmax_labels(op: OpView, x, labels, weights) -> None:
    """Labels (and weights) must fit logits coerced to [N, D] at `axis`."""
    axis = canonical_axis(op, op.arg("axis", 1), len(x.shape), "logits")
    n, d = math.prod(x.shape[:axis]), math.prod(x.shape[axis:])
    where = f"logits {list(x.shape)} give N={n}, D={d} at axis {axis}"
    if labels is not None:
        shape = labels.shape
        if op.arg("label_prob", 0):
            fits = len(shape) >= 2 and math.prod(shape[:axis]) == n and math.prod(shape[axis:]) == d
            need = f"label_prob=1 needs labels of N*D elements split [{n}, {d}] at axis {axis}"
        else:
            _int32_labels(op, labels, "labels")
            fits = (len(shape) >= axis and math.prod(shape[:axis]) == n
                    and math.prod(shape[axis:]) == 1)
            need = f"labels need N={n} elements (one per row)"
        if not fits:
            raise ShapeError(f"{op.type}: {where}, but labels are {list(shape)}: {need}")
    if weights is not None and math.prod(weights.shape) != n:
        raise ShapeError(f"{op.type}: {where}, but weights are {list(weights.shape)}: "
                         f"they need N={n} elements")


@rule("loss_softmax_with_loss")
def softmax_with_loss(op: OpView, inputs: list) -> list:
    """softmax is like the logits; the loss is a 0-d float scalar."""
    x, labels = inputs[0], inputs[1]
    weights = inputs[2] if len(inputs) > 2 else None
    if x is not None:
        _check_softmax_labels(op, x, labels, weights)
    return [x, _loss_info(x, ())]


@rule("loss_softmax_with_loss_gradient")
def softmax_with_loss_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits, which must match the softmax output."""
    x, labels, softmax = inputs[0], inputs[1], inputs[-2]
    weights = inputs[2] if len(inputs) == 5 else None
    check_same_shape(op, x, softmax, ("logits", "softmax"))
    if x is not None:
        _check_softmax_labels(op, x, labels, weights)
    return [x if x is not None else softmax]


def _check_xent_labels(op: OpView, x, label, soft: bool) -> int | None:
    """Checks the labels against X as [N, D]; returns N when known."""
    _int32_labels(op, None if soft else label)
    if x is None:
        return label.shape[0] if label is not None and label.shape else None
    n, d = batch_rows(op, x)
    if label is None:
        return n
    width = d if soft else 1  # a 1-D label only fits one value per example
    allowed = [(n,), (n, width)] if width == 1 else [(n, width)]
    if label.shape not in allowed:
        need = " or ".join(str(list(shape)) for shape in allowed)
        raise ShapeError(f"{op.type}: X {list(x.shape)} is a batch of N={n}, D={d}, but label is "
                         f"{list(label.shape)}: label must be {need}")
    return n


def _check_batch_grad(op: OpView, dy, n: int | None, name: str = "dY") -> None:
    if dy is not None and n is not None and dy.shape != (n,):
        raise ShapeError(f"{op.type}: {name} is {list(dy.shape)} but the batch has N={n}: "
                         f"{name} must be [{n}]")


@rule("loss_label_cross_entropy")
def label_cross_entropy(op: OpView, inputs: list) -> list:
    """Y is float [N]; label is int32 [N] or [N, 1]."""
    n = _check_xent_labels(op, inputs[0], inputs[1], soft=False)
    return [None if n is None else _loss_info(inputs[0], (n,))]


@rule("loss_label_cross_entropy_gradient")
def label_cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be [N]."""
    x, label, dy = inputs
    _check_batch_grad(op, dy, _check_xent_labels(op, x, label, soft=False))
    return [x]


@rule("loss_cross_entropy")
def cross_entropy(op: OpView, inputs: list) -> list:
    """Y is float [N]; label is [N, D] (or [N] when D = 1)."""
    n = _check_xent_labels(op, inputs[0], inputs[1], soft=True)
    return [None if n is None else _loss_info(inputs[0], (n,))]


@rule("loss_cross_entropy_gradient")
def cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be [N]."""
    x, label, dy = inputs
    _check_batch_grad(op, dy, _check_xent_labels(op, x, label, soft=True))
    return [x]


@rule("loss_averaged_loss")
def averaged_loss(op: OpView, inputs: list) -> list:
    """Y is a 0-d float scalar whatever X's shape."""
    return [_loss_info(inputs[0], ())]


@rule("loss_averaged_loss_gradient")
def averaged_loss_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must hold one element."""
    x, dy = inputs
    if dy is not None and math.prod(dy.shape) != 1:
        raise ShapeError(f"{op.type}: dY is {list(dy.shape)} but must hold one element "
                         f"(the gradient of a scalar)")
    return [x]


def _distance_rows(op: OpView, x, y) -> int | None:
    check_same_shape(op, x, y, ("X", "Y"))
    known = x if x is not None else y
    if known is None:
        return None
    return known.shape[0] if known.shape else 1


@rule("loss_squared_l2_distance")
def squared_l2_distance(op: OpView, inputs: list) -> list:
    """Z is [N] (N = dim 0, or 1 for 0-d inputs); X and Y must have the same shape."""
    x, y = inputs
    n = _distance_rows(op, x, y)
    return [None if n is None else TensorInfo((n,), (x if x is not None else y).dtype)]


@rule("loss_squared_l2_distance_gradient")
def squared_l2_distance_gradient(op: OpView, inputs: list) -> list:
    """dX is like X and dY like Y; dZ must be [N]."""
    x, y, dz = inputs
    _check_batch_grad(op, dz, _distance_rows(op, x, y), "dZ")
    return [x if x is not None else y, y if y is not None else x]


@rule("loss_sigmoid_cross_entropy")
def sigmoid_cross_entropy(op: OpView, inputs: list) -> list:
    """xentropy drops the logits' last axis; targets must have the logits' shape."""
    logits, targets = inputs
    check_same_shape(op, logits, targets, ("logits", "targets"))
    known = logits if logits is not None else targets
    return [None if known is None else _loss_info(known, known.shape[:-1])]


@rule("loss_sigmoid_cross_entropy_gradient")
def sigmoid_cross_entropy_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits; dY must have the logits' shape without the last axis."""
    dy, logits, targets = inputs
    check_same_shape(op, logits, targets, ("logits", "targets"))
    known = logits if logits is not None else targets
    if known is not None and dy is not None and math.prod(dy.shape) != math.prod(known.shape[:-1]):
        raise ShapeError(f"{op.type}: dY is {list(dy.shape)} but logits are {list(known.shape)}: "
                         f"dY needs one element per row, {list(known.shape[:-1])}")
    return [known]


@rule("loss_accuracy")
def accuracy(op: OpView, inputs: list) -> list:
    """A 0-d float scalar; predictions [N, D], labels int32 [N], top_k <= D."""
    x, labels = inputs
    _int32_labels(op, labels, "labels")
    if x is not None and len(x.shape) != 2:
        raise ShapeError(f"{op.type}: predictions must be 2-D [N, D], got {list(x.shape)}")
    if labels is not None and len(labels.shape) != 1:
        raise ShapeError(f"{op.type}: labels must be 1-D [N], got {list(labels.shape)}")
    if x is not None and labels is not None and labels.shape[0] != x.shape[0]:
        raise ShapeError(f"{op.type}: predictions are {list(x.shape)} but labels are "
                         f"{list(labels.shape)}: N must match")
    if x is not None and op.arg("top_k", 1) > x.shape[1]:
        raise ShapeError(f"{op.type}: top_k {op.arg('top_k', 1)} exceeds the {x.shape[1]} classes "
                         f"of predictions {list(x.shape)}")
    return [SCALAR]
