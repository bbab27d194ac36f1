"""Inference rules of the softmax_loss family (SoftmaxWithLoss, SpatialSoftmaxWithLoss),
and the checks its kernels share with them.

SoftmaxWithLoss sees the logits as [N, D], split before `axis`; softmax is like
the logits and the loss a 0-d scalar of their float type (float32 when unknown).
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule, same_shape, shape_of
from pycaffe2.schema.inference.loss import int32_labels, loss_info
from pycaffe2.schema.inference.nn import axis_index


def _need(n: int, d: int, axis: int, label_prob) -> str:
    if label_prob:
        return f"label_prob=1 needs labels of N*D elements split [{n}, {d}] at axis {axis}"
    return f"labels need N={n} elements (one per row)"


def softmax_labels(x_shape, axis: int, label_prob, labels_shape, weights_shape=None) -> tuple[int, int]:
    """(N, D) of the logits coerced to 2-D at `axis`, after checking that the labels
    hold N (N*D with label_prob) elements and the weights N (None where absent or unknown)."""
    axis = axis_index(axis, len(x_shape), "logits")
    n, d = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
    where = f"logits {list(x_shape)} give N={n}, D={d} at axis {axis}"
    if labels_shape is not None and math.prod(labels_shape) != (n * d if label_prob else n):
        raise ShapeError(f"{where}, but labels are {list(labels_shape)}: {_need(n, d, axis, label_prob)}")
    if weights_shape is not None and math.prod(weights_shape) != n:
        raise ShapeError(f"{where}, but weights are {list(weights_shape)}: they need N={n} elements")
    return n, d


def _label_layout(x_shape, axis: int, label_prob, labels_shape) -> None:
    """Validation also asks for Caffe2's layout of the labels: split at `axis` into
    [N, D] (label_prob) or [N, 1]; the kernels read them by element count."""
    axis = axis_index(axis, len(x_shape), "logits")
    n, d = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
    shape = tuple(labels_shape)
    fits = ((len(shape) >= 2 if label_prob else len(shape) >= axis) and math.prod(shape[:axis]) == n
            and math.prod(shape[axis:]) == (d if label_prob else 1))
    if not fits:
        raise ShapeError(f"logits {list(x_shape)} give N={n}, D={d} at axis {axis}, but labels are "
                         f"{list(shape)}: {_need(n, d, axis, label_prob)}")


def _check(op: OpView, x, labels, weights) -> None:
    if not op.arg("label_prob", 0):
        int32_labels(labels, "labels")
    if x is not None:
        axis, label_prob = op.arg("axis", 1), op.arg("label_prob", 0)
        softmax_labels(x.shape, axis, label_prob, labels and labels.shape, weights and weights.shape)
        if labels is not None:
            _label_layout(x.shape, axis, label_prob, labels.shape)


@rule("softmax_loss")
def softmax_with_loss(op: OpView, inputs: list) -> list:
    """softmax is like the logits; the loss is a 0-d float scalar."""
    x, labels = inputs[0], inputs[1]
    _check(op, x, labels, inputs[2] if len(inputs) > 2 else None)
    return [x, loss_info(x, ())]


@rule("softmax_loss_gradient")
def softmax_with_loss_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits, which must match the softmax output."""
    x, labels, softmax = inputs[0], inputs[1], inputs[-2]
    same_shape(shape_of(x), shape_of(softmax), ("logits", "softmax"))
    _check(op, x, labels, inputs[2] if len(inputs) == 5 else None)
    return [x if x is not None else softmax]


def spatial_labels(x_shape, labels_shape, weights_shape=None) -> tuple[int, int, int, int]:
    """(N, D, H, W) of SpatialSoftmaxWithLoss's logits, after checking that they are 4-D
    and that the labels (and the weights, None where absent or unknown) are [N, H, W]."""
    if len(x_shape) != 4:
        raise ShapeError(f"logits are {list(x_shape)} but must be 4-D [N, D, H, W]")
    n, d, h, w = x_shape
    for name, shape in (("labels", labels_shape), ("weights", weights_shape)):
        if shape is not None and tuple(shape) != (n, h, w):
            raise ShapeError(f"logits {list(x_shape)} need {name} [N, H, W] = {[n, h, w]}, got {list(shape)}")
    return n, d, h, w


def _check_spatial(labels, x, weights) -> None:
    int32_labels(labels, "labels")
    if x is not None:
        spatial_labels(x.shape, shape_of(labels), shape_of(weights))


@rule("softmax_loss_spatial")
def spatial_softmax_with_loss(op: OpView, inputs: list) -> list:
    """softmax is like the logits [N, D, H, W]; the loss is a 0-d float scalar."""
    x, labels = inputs[0], inputs[1]
    _check_spatial(labels, x, inputs[2] if len(inputs) > 2 else None)
    return [x, loss_info(x, ())]


@rule("softmax_loss_spatial_gradient")
def spatial_softmax_with_loss_gradient(op: OpView, inputs: list) -> list:
    """dlogits is like the logits, which must match the softmax output."""
    x, labels, softmax = inputs[0], inputs[1], inputs[-2]
    same_shape(shape_of(x), shape_of(softmax), ("logits", "softmax"))
    _check_spatial(labels, x if x is not None else softmax, inputs[2] if len(inputs) == 5 else None)
    return [x if x is not None else softmax]
