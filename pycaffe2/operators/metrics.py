"""Metric kernels (NumPy) on the CPU: MultiClassAccuracy, Perplexity and
APMeter. APMeter keeps its buffer of past (score, label) pairs in the kernel
made for each op when its net is created (register_cpu(..., specialize=True)),
so each op instance has its own, as a Caffe2 operator object has. Shape checks
are the schema's (schema/inference/metrics.py).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import ShapeError, info_of
from pycaffe2.schema.inference import metrics as checks


@register_cpu("MultiClassAccuracy")
def multi_class_accuracy(prediction, labels):
    checks.multi_class_accuracy(None, [info_of(prediction), info_of(labels)])
    d = prediction.shape[1]
    checks.class_labels(labels, d)
    amounts = np.bincount(labels, minlength=d)
    hits = np.bincount(labels[np.argmax(prediction, axis=1) == labels], minlength=d) if d else amounts
    accuracies = np.divide(hits, amounts, out=np.zeros(d), where=amounts > 0)
    return accuracies.astype(np.float32), amounts.astype(np.int32)


@register_cpu("Perplexity")
def perplexity(probabilities):
    checks.perplexity(None, [info_of(probabilities)])
    if probabilities.size == 0:
        return np.array(1.0, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array(np.exp(-np.mean(np.log(probabilities.astype(np.float64)))), np.float32)


class _APBuffer:
    """The last `size` (score, label) pairs of each class, each class kept sorted
    by descending score after every run as Caffe2's buffer is."""

    def __init__(self, size: int):
        self.size = size
        self.scores: np.ndarray | None = None  # [used, D]
        self.labels: np.ndarray | None = None

    def add(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        predictions, labels = predictions[-self.size:], labels[-self.size:]  # a big batch: its last rows
        if self.scores is None:
            self.scores, self.labels = predictions[:0].astype(np.float64), labels[:0]
        if self.scores.shape[1] != predictions.shape[1]:
            raise ShapeError(f"APMeter saw {self.scores.shape[1]} classes before but predictions now have "
                             f"{predictions.shape[1]}")
        # Room for the new rows: the first rows of the (sorted) buffer go.
        start = max(self.scores.shape[0] + predictions.shape[0] - self.size, 0)
        self.scores = np.concatenate([self.scores[start:], predictions.astype(np.float64)])
        self.labels = np.concatenate([self.labels[start:], labels])

    def average_precision(self) -> np.ndarray:
        order = np.argsort(-self.scores, axis=0, kind="stable")
        self.scores = np.take_along_axis(self.scores, order, axis=0)
        self.labels = np.take_along_axis(self.labels, order, axis=0)
        ranks = np.arange(1, self.labels.shape[0] + 1)[:, None]
        precision = np.cumsum(self.labels, axis=0, dtype=np.float64) / ranks
        positive = self.labels == 1
        total = np.where(positive, precision, 0.0).sum(axis=0)
        return (total / np.maximum(positive.sum(axis=0), 1)).astype(np.float32)


@register_cpu("APMeter", specialize=True)
def apmeter(*, buffer_size):
    buffer = _APBuffer(buffer_size)

    def run(predictions, labels):
        checks.ap_inputs(info_of(predictions), info_of(labels))
        buffer.add(predictions, labels)
        return buffer.average_precision()
    return run
