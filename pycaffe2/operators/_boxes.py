"""Box arithmetic the detection kernels share (detection_boxes.py, detection_proposals.py):
Detectron's box transform, clipping, NMS and Soft-NMS (IoU of upright boxes, or of rotated
ones by polygon intersection), in float32 as Caffe2 computes them. `plus_one` is legacy_plus_one as 0 or 1. Boxes are the last axis:
[x1, y1, x2, y2], or [ctr_x, ctr_y, w, h, angle] for rotated ones.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32
BBOX_XFORM_CLIP = F32(np.log(1000.0 / 16.0))  # largest log-space size change


def transform_upright(boxes, deltas, weights, plus_one: int) -> np.ndarray:
    """Boxes [..., 4] moved by deltas [..., 4] / weights (Detectron's bbox_transform)."""
    boxes, deltas = boxes.astype(F32), deltas.astype(F32)
    wx, wy, ww, wh = (F32(w) for w in weights)
    widths = boxes[..., 2] - boxes[..., 0] + F32(plus_one)
    heights = boxes[..., 3] - boxes[..., 1] + F32(plus_one)
    ctr_x = boxes[..., 0] + F32(0.5) * widths
    ctr_y = boxes[..., 1] + F32(0.5) * heights
    dw = np.minimum(deltas[..., 2] / ww, BBOX_XFORM_CLIP)
    dh = np.minimum(deltas[..., 3] / wh, BBOX_XFORM_CLIP)
    pred_x = deltas[..., 0] / wx * widths + ctr_x
    pred_y = deltas[..., 1] / wy * heights + ctr_y
    with np.errstate(over="ignore"):
        pred_w, pred_h = np.exp(dw) * widths, np.exp(dh) * heights
    return np.stack([pred_x - F32(0.5) * pred_w, pred_y - F32(0.5) * pred_h,
                     pred_x + F32(0.5) * pred_w - F32(plus_one), pred_y + F32(0.5) * pred_h - F32(plus_one)],
                    axis=-1).astype(F32)


def transform_rotated(boxes, deltas, weights, bound) -> np.ndarray:
    """Rotated boxes [..., 5] moved by deltas [..., 5]; `bound` is (lo, hi) or None."""
    boxes, deltas = boxes.astype(F32), deltas.astype(F32)
    wx, wy, ww, wh = (F32(w) for w in weights)
    dw = np.minimum(deltas[..., 2] / ww, BBOX_XFORM_CLIP)
    dh = np.minimum(deltas[..., 3] / wh, BBOX_XFORM_CLIP)
    angle = deltas[..., 4] * F32(180.0) / F32(np.pi) + boxes[..., 4]
    if bound is not None:
        lo, hi = bound
        period = F32(hi - lo)
        angle = np.where(angle < lo, angle + period, np.where(angle > hi, angle - period, angle))
    with np.errstate(over="ignore"):
        size = np.exp(dw) * boxes[..., 2], np.exp(dh) * boxes[..., 3]
    return np.stack([deltas[..., 0] / wx * boxes[..., 2] + boxes[..., 0],
                     deltas[..., 1] / wy * boxes[..., 3] + boxes[..., 1], *size, angle], axis=-1).astype(F32)


def clip_upright(boxes, height, width, plus_one: int) -> np.ndarray:
    """Corners clipped to [0, size - plus_one]; height and width broadcast over boxes' rows."""
    limits = np.stack([width, height, width, height], axis=-1).astype(F32) - F32(plus_one)
    return np.maximum(np.minimum(boxes, limits), F32(0)).astype(F32)


def clip_rotated(boxes, height, width, angle_thresh: float, plus_one: int) -> np.ndarray:
    """Only boxes within angle_thresh degrees of upright are clipped (as upright boxes)."""
    upright = np.abs(boxes[..., 4]) <= F32(angle_thresh)
    half_w, half_h = (boxes[..., 2] - F32(plus_one)) / F32(2), (boxes[..., 3] - F32(plus_one)) / F32(2)
    corners = np.stack([boxes[..., 0] - half_w, boxes[..., 1] - half_h,
                        boxes[..., 0] + half_w, boxes[..., 1] + half_h], axis=-1)
    x1, y1, x2, y2 = np.moveaxis(clip_upright(corners, height, width, plus_one), -1, 0)
    clipped = np.stack([(x1 + x2) / F32(2), (y1 + y2) / F32(2), x2 - x1 + F32(plus_one), y2 - y1 + F32(plus_one),
                        boxes[..., 4]], axis=-1)
    return np.where(upright[..., None], clipped, boxes).astype(F32)


def rotated_corners(boxes: np.ndarray) -> np.ndarray:
    """[M, 4, 2] corners of rotated boxes [M, 5] (angle in degrees, counter-clockwise)."""
    theta = -boxes[:, 4].astype(np.float64) * (np.pi / 180.0)
    b, a = np.cos(theta) * 0.5, np.sin(theta) * 0.5
    cx, cy, w, h = (boxes[:, k].astype(np.float64) for k in range(4))
    p0 = np.stack([cx - a * h - b * w, cy + b * h - a * w], axis=-1)
    p1 = np.stack([cx + a * h - b * w, cy - b * h - a * w], axis=-1)
    centre = np.stack([cx, cy], axis=-1)
    return np.stack([p0, p1, 2 * centre - p0, 2 * centre - p1], axis=1)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _corners_inside(points: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """[M, 4] whether each of points [M, 4, 2] lies in rectangle rect [M, 4, 2]."""
    ab, ad = rect[:, 1] - rect[:, 0], rect[:, 3] - rect[:, 0]
    ap = points - rect[:, :1]
    along_ab, along_ad = (ap * ab[:, None]).sum(-1), (ap * ad[:, None]).sum(-1)
    return ((along_ab >= 0) & (along_ab <= (ab * ab).sum(-1)[:, None])
            & (along_ad >= 0) & (along_ad <= (ad * ad).sum(-1)[:, None]))


def rotated_intersection(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Intersection areas of rotated boxes first[m] and second[m] ([M, 5] each), vectorized:
    the intersection polygon's vertices are the edge crossings and the corners of each box
    inside the other; ordered by angle about their mean, the shoelace formula gives its area."""
    pa, pb = rotated_corners(first), rotated_corners(second)
    va, vb = np.roll(pa, -1, axis=1) - pa, np.roll(pb, -1, axis=1) - pb
    det = _cross(vb[:, None, :, :], va[:, :, None, :])  # [M, 4 (edges of a), 4 (edges of b)]
    between = pb[:, None, :, :] - pa[:, :, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = _cross(vb[:, None, :, :], between) / det
        t2 = _cross(va[:, :, None, :], between) / det
    crossing = (np.abs(det) > 1e-14) & (t1 >= 0) & (t1 <= 1) & (t2 >= 0) & (t2 <= 1)
    hits = pa[:, :, None, :] + np.where(crossing, t1, 0.0)[..., None] * va[:, :, None, :]
    points = np.concatenate([hits.reshape(-1, 16, 2), pa, pb], axis=1)
    valid = np.concatenate([crossing.reshape(-1, 16), _corners_inside(pa, pb), _corners_inside(pb, pa)], axis=1)
    count = valid.sum(axis=1)
    points = np.where(valid[..., None], points, 0.0)
    centre = points.sum(axis=1) / np.maximum(count, 1)[:, None]
    angle = np.where(valid, np.arctan2(points[..., 1] - centre[:, None, 1], points[..., 0] - centre[:, None, 0]),
                     np.inf)
    order = np.argsort(angle, axis=1)
    ordered = np.take_along_axis(points, order[..., None], axis=1)
    ordered = np.where(np.take_along_axis(valid, order, axis=1)[..., None], ordered, ordered[:, :1])
    area = np.abs(_cross(ordered, np.roll(ordered, -1, axis=1)).sum(axis=1)) / 2
    same = np.all(np.abs(pa - pb) <= 1e-5, axis=(1, 2))  # one box twice: its whole area
    whole = np.minimum(first[:, 2] * first[:, 3], second[:, 2] * second[:, 3])
    return np.where(same, whole, np.where(count <= 2, 0.0, area))


def iou_with(boxes: np.ndarray, i: int, rest: np.ndarray, areas: np.ndarray, plus_one: int) -> np.ndarray:
    """IoU of box i with boxes[rest], vectorized (upright or rotated boxes)."""
    if boxes.shape[1] == 5:
        inter = rotated_intersection(np.repeat(boxes[i:i + 1], len(rest), axis=0), boxes[rest]).astype(F32)
    else:
        lo = np.maximum(boxes[rest, :2], boxes[i, :2])
        hi = np.minimum(boxes[rest, 2:], boxes[i, 2:])
        wh = np.maximum(hi - lo + F32(plus_one), F32(0))
        inter = wh[:, 0] * wh[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (areas[i] + areas[rest] - inter)


def box_areas(boxes: np.ndarray, plus_one: int) -> np.ndarray:
    if boxes.shape[1] == 5:  # rotated: w * h
        return boxes[:, 2] * boxes[:, 3]
    return (boxes[:, 2] - boxes[:, 0] + F32(plus_one)) * (boxes[:, 3] - boxes[:, 1] + F32(plus_one))


def nms(boxes: np.ndarray, order, thresh: float, top_n: int, plus_one: int) -> list[int]:
    """Greedy NMS over boxes[order] (best first): keeps a box unless an earlier kept one
    overlaps it by IoU > thresh; at most top_n (< 0: no limit)."""
    boxes = boxes.astype(F32)
    areas = box_areas(boxes, plus_one)
    order = np.asarray(order, np.int64)
    keep: list[int] = []
    while order.size and (top_n < 0 or len(keep) < top_n):
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        order = rest[iou_with(boxes, i, rest, areas, plus_one) <= F32(thresh)]
    return keep


def soft_nms(boxes, scores, indices, sigma: float, thresh: float, min_score: float, method: str,
             top_n: int, plus_one: int) -> tuple[list[int], np.ndarray]:
    """Soft-NMS: repeatedly keep the best pending box and rescale the others' scores by their
    IoU with it (linear: 1 - IoU above thresh; gaussian: exp(-IoU^2 / sigma)); boxes rescored
    below min_score drop out. Returns the kept indices and every box's new score."""
    boxes = boxes.astype(F32)
    areas = box_areas(boxes, plus_one)
    out = scores.astype(F32).copy()
    pending = np.asarray(indices, np.int64)
    keep: list[int] = []
    while pending.size and (top_n < 0 or len(keep) < top_n):
        at = int(np.argmax(out[pending]))
        i = int(pending[at])
        keep.append(i)
        swapped = pending.copy()  # as Caffe2: the best swaps places with the first pending box
        swapped[at] = pending[0]
        rest = swapped[1:]
        iou = iou_with(boxes, i, rest, areas, plus_one)
        if method == "linear":
            weight = np.where(iou > thresh, F32(1) - iou, F32(1))
        else:
            weight = np.exp(-iou * iou / F32(sigma))
        out[rest] = out[rest] * weight.astype(F32)
        pending = rest[out[rest] >= F32(min_score)]
    return keep, out
