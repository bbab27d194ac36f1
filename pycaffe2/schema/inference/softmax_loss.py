"""Inference rules of the softmax_loss family (SoftmaxWithLoss), and the check
its kernels share with them.

SoftmaxWithLoss sees the logits as [N, D], split before `axis`; softmax is like
the logits and the loss a 0-d scalar of their float type (float32 when unknown).
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.loss import int32_labels, loss_info
from pycaffe2.schema.inference.nn import axis_index, check_same_shape


def softmax_labels(x_shape, axis: int, label_prob, labels_shape, weights_shape=None) -> tuple[int, int]:
    """(N, D) of the logits coerced to 2-D at `axis`, after checking that the labels
    (and weights; None where absent or unknown) fit them, as Caffe2 does."""
    axis = axis_index(axis, len(x_shape), "logits")
    n, d = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
    where = f"logits {list(x_shape)} give N={n}, D={d} at axis {axis}"
    if labels_shape is not None:
        shape = tuple(labels_shape)
        if label_prob:
            fits = len(shape) >= 2 and math.prod(shape[:axis]) == n and math.prod(shape[axis:]) == d
            need = f"label_prob=1 needs labels of N*D elements split [{n}, {d}] at axis {axis}"
        else:
            fits = len(shape) >= axis and math.prod(shape[:axis]) == n and math.prod(shape[axis:]) == 1
            need = f"labels need N={n} elements (one per row)"
        if not fits:
            raise ShapeError(f"{where}, but labels are {list(shape)}: {need}")
    if weights_shape is not None and math.prod(weights_shape) != n:
        raise ShapeError(f"{where}, but weights are {list(weights_shape)}: they need N={n} elements")
    return n, d


def _check(op: OpView, x, labels, weights) -> None:
    if not op.arg("label_prob", 0):
        int32_labels(labels, "labels")
    if x is not None:
        softmax_labels(x.shape, op.arg("axis", 1), op.arg("label_prob", 0),
                       labels and labels.shape, weights and weights.shape)


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
    check_same_shape(op, x, softmax, ("logits", "softmax"))
    _check(op, x, labels, inputs[2] if len(inputs) == 5 else None)
    return [x if x is not None else softmax]
