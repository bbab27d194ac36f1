"""ONNX's NonMaxSuppression in NumPy (CPU): per batch and class a greedy pass over the
boxes by falling score, each kept box suppressing the rest whose IoU with it exceeds
the threshold (one vectorised IoU per kept box)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.nms import THRESHOLD_NAMES, nms_inputs, threshold_input


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[S, 4] as (y_min, x_min, y_max, x_max) in float64."""
    boxes = boxes.astype(np.float64)
    if center_point_box:
        x, y, w, h = boxes.T
        return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=1)
    return np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one box with each of `others`; 0 where either area or the overlap is empty."""
    low, high = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    sides = high - low
    inter = np.where((sides > 0).all(axis=1), sides.prod(axis=1), 0.0)
    area, areas = np.prod(box[2:] - box[:2]), np.prod(others[:, 2:] - others[:, :2], axis=1)
    union = area + areas - inter
    ok = (inter > 0) & (area > 0) & (areas > 0) & (union > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _select(corners, scores, limit: int, iou_threshold: float, score_threshold) -> list[int]:
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    kept: list[int] = []
    alive = np.ones(len(order), bool)
    for k, index in enumerate(order):
        if len(kept) >= limit:
            break
        if not alive[k]:
            continue
        kept.append(int(index))
        rest = order[k + 1:]
        alive[k + 1:] &= _iou(corners[index], corners[rest]) <= iou_threshold
    return kept


def _scalar(value, cast):
    return None if value is None or value.size == 0 else cast(value.reshape(-1)[0])


@register_cpu("NonMaxSuppression")
def non_max_suppression(boxes, scores, *thresholds, center_point_box):
    nms_inputs(info_of(boxes), info_of(scores))
    for name, value in zip(THRESHOLD_NAMES, thresholds):
        threshold_input(name, value.shape)
    limit, iou, score = (list(thresholds) + [None] * 3)[:3]
    limit = max(_scalar(limit, int) or 0, 0)
    iou = _scalar(iou, float) or 0.0
    score = _scalar(score, float)
    rows = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], center_point_box)
        for c in range(scores.shape[1]):
            rows.extend((b, c, index) for index in _select(corners, scores[b, c], limit, iou, score))
    return np.array(rows, np.int64).reshape(-1, 3)
