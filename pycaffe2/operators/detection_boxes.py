"""BBoxTransform, BoxWithNMSLimit and HeatmapMaxKeypoint (NumPy, float32 as Caffe2): the box
arithmetic is _boxes.py's; BBoxTransform runs over all RoIs and classes at once,
BoxWithNMSLimit loops over images and classes (bounded by the inputs' shapes) with NMS
vectorized per kept box, HeatmapMaxKeypoint fits every heatmap's maximum at once.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _boxes as boxes_util
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.detection_boxes import (
    bbox_transform_shapes,
    check_batch_splits,
    check_im_info,
    heatmap_shapes,
    nms_limit_shapes,
    rois_per_image,
)

F32 = np.float32


@register_cpu("BBoxTransform")
def bbox_transform(rois, deltas, im_info, *, weights, apply_scale, rotated, correct_transform_coords,
                   angle_bound_on, angle_bound_lo, angle_bound_hi, clip_angle_thresh, legacy_plus_one):
    args = {"weights": weights, "rotated": rotated, "angle_bound_on": angle_bound_on, "angle_bound_lo": angle_bound_lo,
            "angle_bound_hi": angle_bound_hi}
    images = bbox_transform_shapes(args, rois.shape, deltas.shape, im_info.shape)
    box_dim, plus_one = (5 if rotated else 4), int(bool(legacy_plus_one))
    rois, deltas, im_info = rois.astype(F32), deltas.astype(F32), im_info.astype(F32)
    check_im_info(im_info)
    if rois.shape[1] == box_dim:
        counts = np.array([len(rois)])
    else:
        counts = rois_per_image(rois[:, 0], images)
    # RoIs come grouped by image in increasing order (as GenerateProposals writes them)
    image = np.repeat(np.arange(images), counts)
    scale = im_info[image, 2]
    height = np.floor(im_info[image, 0] / scale + F32(0.5))  # int(v + 0.5) of sizes >= 0
    width = np.floor(im_info[image, 1] / scale + F32(0.5))
    boxes = rois[:, -box_dim:].copy()
    boxes[:, :4] /= scale[:, None]  # angles are not scaled
    tiled = deltas.reshape(len(rois), deltas.shape[1] // box_dim, box_dim)
    if rotated:
        bound = (angle_bound_lo, angle_bound_hi) if angle_bound_on else None
        out = boxes_util.transform_rotated(boxes[:, None, :], tiled, weights, bound)
        out = boxes_util.clip_rotated(out, height[:, None], width[:, None], clip_angle_thresh, plus_one)
    else:
        out = boxes_util.transform_upright(boxes[:, None, :], tiled, weights, plus_one)
        out = boxes_util.clip_upright(out, height[:, None], width[:, None], plus_one)
    if apply_scale:
        out[..., :4] *= scale[:, None, None]
    return out.reshape(deltas.shape).astype(F32), counts.astype(F32)


def _two_d(array: np.ndarray) -> np.ndarray:
    return array.reshape(array.shape[0], array.shape[1])


class _Classes:
    """BoxWithNMSLimit's class bookkeeping: which column of scores and boxes a class id
    (0 background, then foreground) reads."""

    def __init__(self, args: dict):
        self.agnostic = args["cls_agnostic_bbox_reg"]
        self.bg_first = args["input_boxes_include_bg_cls"]
        self.box_dim = 5 if args["rotated"] else 4

    def box(self, j: int) -> int:
        return 0 if self.agnostic else (j if self.bg_first else j - 1)

    def boxes(self, boxes: np.ndarray, j: int) -> np.ndarray:
        """Class j's boxes [rows, box_dim] out of boxes [rows, classes * box_dim]."""
        start = self.box(j) * self.box_dim
        return boxes[:, start:start + self.box_dim]

    def score(self, j: int) -> int:
        return j - 1 + int(bool(self.bg_first))


def _nms_one_image(scores, boxes, args: dict, classes: _Classes):
    """Per foreground class j, the kept rows; and the scores they are ranked by (Soft-NMS rescores)."""
    num_classes = scores.shape[1]
    keeps: list[list[int]] = [[] for _ in range(num_classes)]
    ranked = scores.copy()
    plus_one = int(bool(args["legacy_plus_one"]))
    for j in range(1, num_classes):
        column = scores[:, classes.score(j)]
        cls_boxes = classes.boxes(boxes, j)
        inds = np.flatnonzero(column > F32(args["score_thresh"]))
        if args["soft_nms_enabled"]:
            keeps[j], ranked[:, classes.score(j)] = boxes_util.soft_nms(
                cls_boxes, column, inds, args["soft_nms_sigma"], args["nms"], args["soft_nms_min_score_thres"],
                args["soft_nms_method"], -1, plus_one)
        else:
            order = inds[np.argsort(-column[inds], kind="stable")]
            limit = args["detections_per_im"] if args["detections_per_im"] > 0 else -1
            keeps[j] = boxes_util.nms(cls_boxes, order, args["nms"], limit, plus_one)
    total = sum(len(k) for k in keeps)
    limit = args["detections_per_im"]
    if limit > 0 and total > limit:  # the best `limit` over all classes, class by class
        pairs = [(j, i) for j in range(1, num_classes) for i in keeps[j]]
        values = np.array([ranked[i, classes.score(j)] for j, i in pairs], F32)
        best = np.argsort(-values, kind="stable")[:limit]
        keeps = [[] for _ in range(num_classes)]
        for k in best:
            j, i = pairs[k]
            keeps[j].append(i)
    return keeps, ranked


@register_cpu("BoxWithNMSLimit")
def box_with_nms_limit(scores, boxes, *batch_splits, score_thresh, nms, detections_per_im, soft_nms_enabled,
                       soft_nms_method, soft_nms_sigma, soft_nms_min_score_thres, rotated, cls_agnostic_bbox_reg,
                       input_boxes_include_bg_cls, output_classes_include_bg_cls, legacy_plus_one):
    args = {"score_thresh": score_thresh, "nms": nms, "detections_per_im": detections_per_im,
            "soft_nms_enabled": soft_nms_enabled, "soft_nms_method": soft_nms_method, "soft_nms_sigma": soft_nms_sigma,
            "soft_nms_min_score_thres": soft_nms_min_score_thres, "rotated": rotated,
            "cls_agnostic_bbox_reg": cls_agnostic_bbox_reg, "input_boxes_include_bg_cls": input_boxes_include_bg_cls,
            "legacy_plus_one": legacy_plus_one}
    count, num_classes = nms_limit_shapes(args, scores.shape, boxes.shape)
    scores, boxes = _two_d(scores).astype(F32), _two_d(boxes).astype(F32)
    splits = check_batch_splits(np.asarray(batch_splits[0]), count) if batch_splits else np.array([count])
    classes = _Classes(args)
    out_scores, out_boxes, out_classes, out_keeps = [], [], [], []
    keeps_size = np.zeros((len(splits), num_classes), np.int32)
    offset = 0
    for b, n in enumerate(splits):
        keeps, ranked = _nms_one_image(scores[offset:offset + n], boxes[offset:offset + n], args, classes)
        for j in range(1, num_classes):
            rows = np.array(keeps[j], np.int64)
            out_scores.append(ranked[rows, classes.score(j)])
            out_boxes.append(classes.boxes(boxes[offset:offset + n], j)[rows])
            out_classes.append(np.full(len(rows), j - (0 if output_classes_include_bg_cls else 1), F32))
            out_keeps.append(rows.astype(np.int32))
        keeps_size[b] = [len(k) for k in keeps]
        offset += n
    return (np.concatenate(out_scores).astype(F32) if out_scores else np.zeros(0, F32),
            np.concatenate(out_boxes).reshape(-1, classes.box_dim).astype(F32) if out_boxes
            else np.zeros((0, classes.box_dim), F32),
            np.concatenate(out_classes) if out_classes else np.zeros(0, F32),
            keeps_size.sum(axis=1).astype(F32),
            np.concatenate(out_keeps) if out_keeps else np.zeros(0, np.int32),
            keeps_size)


MAX_DELTA = F32(1.5)  # HeatmapMaxKeypoint's sub-cell step, at most (in cells)


def _neighbourhood(maps: np.ndarray, at_y: np.ndarray, at_x: np.ndarray) -> np.ndarray:
    """[M, 3, 3] values around each maximum; a neighbour past the border is mirrored about the maximum."""
    size = maps.shape[-1]
    offsets = np.arange(-1, 2)
    ys, xs = at_y[:, None] + offsets, at_x[:, None] + offsets
    ys = np.where(ys >= size, ys - 2, np.where(ys < 0, ys + 2, ys))
    xs = np.where(xs >= size, xs - 2, np.where(xs < 0, xs + 2, xs))
    rows = np.arange(len(maps))[:, None, None]
    return maps[rows, ys[:, :, None], xs[:, None, :]]


def _quadratic_step(f: np.ndarray):
    """Per [3, 3] neighbourhood f: the step to the fitted quadratic's peak (b = -f', A = f''
    by central differences; none where A is near singular) and the fitted value there."""
    b = np.stack([-(f[:, 1, 2] - f[:, 1, 0]) / F32(2), -(f[:, 2, 1] - f[:, 0, 1]) / F32(2)], axis=1)
    cross = (f[:, 2, 2] - f[:, 2, 0] - f[:, 0, 2] + f[:, 0, 0]) / F32(4)
    a00 = f[:, 1, 0] - F32(2) * f[:, 1, 1] + f[:, 1, 2]
    a11 = f[:, 0, 1] - F32(2) * f[:, 1, 1] + f[:, 2, 1]
    det = a00 * a11 - cross * cross
    flat = np.abs(det) < F32(1e-4)
    safe = np.where(flat, F32(1), det)
    delta = np.stack([(a11 * b[:, 0] - cross * b[:, 1]) / safe, (a00 * b[:, 1] - cross * b[:, 0]) / safe], axis=1)
    delta = np.where(flat[:, None], F32(0), delta)
    largest = np.abs(delta).max(axis=1)
    delta = np.where((largest > MAX_DELTA)[:, None], delta / np.maximum(largest, MAX_DELTA)[:, None] * MAX_DELTA,
                     delta)
    quad = delta[:, 0] * (a00 * delta[:, 0] + cross * delta[:, 1]) + delta[:, 1] * (cross * delta[:, 0] + a11 * delta[:, 1])
    score = f[:, 1, 1] - (b * delta).sum(axis=1) + F32(0.5) * quad
    return delta.astype(F32), np.where(flat, f[:, 1, 1], score).astype(F32)


@register_cpu("HeatmapMaxKeypoint")
def heatmap_max_keypoint(heatmaps, bboxes, *, should_output_softmax):
    n, _, k = heatmap_shapes(heatmaps.shape, bboxes.shape)
    size = heatmaps.shape[-1]
    maps = heatmaps.astype(F32).reshape(n * k, size, size)
    if n * k == 0:
        return np.zeros((n, 4, k), F32)
    best = maps.reshape(n * k, -1).argmax(axis=1)  # the first maximum, row-major
    at_y, at_x = best // size, best % size
    delta, score = _quadratic_step(_neighbourhood(maps, at_y, at_x))
    boxes = np.repeat(bboxes.astype(F32), k, axis=0)
    width = np.maximum(boxes[:, 2] - boxes[:, 0], F32(1))
    height = np.maximum(boxes[:, 3] - boxes[:, 1], F32(1))
    x = boxes[:, 0] + (F32(0.5) + at_x + delta[:, 0]) * width / F32(size)
    y = boxes[:, 1] + (F32(0.5) + at_y + delta[:, 1]) * height / F32(size)
    prob = np.zeros(n * k, F32)
    if should_output_softmax:
        flat = maps.reshape(n * k, -1).astype(np.float64)
        shifted = np.exp(flat - flat.max(axis=1, keepdims=True))
        prob = (shifted[np.arange(n * k), best] / shifted.sum(axis=1)).astype(F32)
    return np.stack([x, y, score, prob]).reshape(4, n, k).transpose(1, 0, 2).astype(F32)
