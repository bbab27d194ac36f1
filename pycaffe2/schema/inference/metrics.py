"""Inference rules of the metrics family (MultiClassAccuracy, Perplexity,
APMeter), and the checks its kernels share with them: scores are float,
labels int32; MultiClassAccuracy's labels are [N] class indices, APMeter's
[N, D] like its scores.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.loss import accuracy_batch


def _float(info, name: str) -> None:
    if info is not None and not info.dtype.startswith("float"):
        raise ShapeError(f"{name} must be float, got {info.dtype}")


def _int32(info, name: str) -> None:
    if info is not None and info.dtype != "int32":
        raise ShapeError(f"{name} must be int32, got {info.dtype}")


def class_labels(labels, d: int) -> None:
    """MultiClassAccuracy's labels must be class indices in [0, D)."""
    if labels.size and (labels.min() < 0 or labels.max() >= d):
        bad = labels[(labels < 0) | (labels >= d)][0]
        raise ShapeError(f"labels must be class indices in [0, {d}), got {int(bad)}")


@rule("metrics_multi_class_accuracy")
def multi_class_accuracy(op: OpView, inputs: list) -> list:
    """accuracies float32 [D] and amounts int32 [D]."""
    prediction, labels = inputs
    _float(prediction, "prediction")
    _int32(labels, "labels")
    accuracy_batch(None if prediction is None else prediction.shape, None if labels is None else labels.shape)
    if prediction is None:
        return [None, None]
    d = prediction.shape[1]
    return [TensorInfo((d,), "float32"), TensorInfo((d,), "int32")]


def probabilities_vector(shape) -> None:
    if len(shape) != 1:
        raise ShapeError(f"probabilities must be 1-D [N], got {list(shape)}")


@rule("metrics_perplexity")
def perplexity(op: OpView, inputs: list) -> list:
    (x,) = inputs
    _float(x, "probabilities")
    if x is not None:
        probabilities_vector(x.shape)
    return [TensorInfo((), "float32")]


def ap_inputs(predictions, labels) -> int | None:
    """D of APMeter's predictions [N, D] and labels [N, D] (None when unknown)."""
    _float(predictions, "predictions")
    _int32(labels, "labels")
    for name, info in (("predictions", predictions), ("labels", labels)):
        if info is not None and len(info.shape) != 2:
            raise ShapeError(f"{name} must be 2-D [N, D], got {list(info.shape)}")
    if predictions is not None and labels is not None and predictions.shape != labels.shape:
        raise ShapeError(f"predictions are {list(predictions.shape)} but labels are {list(labels.shape)}: "
                         f"they must have the same shape")
    known = predictions if predictions is not None else labels
    return None if known is None else known.shape[1]


@rule("metrics_apmeter")
def apmeter(op: OpView, inputs: list) -> list:
    d = ap_inputs(*inputs)
    return [None if d is None else TensorInfo((d,), "float32")]
