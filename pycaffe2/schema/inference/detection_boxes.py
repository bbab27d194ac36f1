"""Inference rules of BBoxTransform, BoxWithNMSLimit and HeatmapMaxKeypoint, and the checks
their kernels call (shapes, and the values only a kernel sees: batch indices and splits)."""
from __future__ import annotations

import numpy as np

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def check_angle_bounds(args: dict, rotated: bool | None = None) -> None:
    """Rotated boxes' angle bounds must span a positive multiple of 180 degrees."""
    if (args["rotated"] if rotated is None else rotated) and args["angle_bound_on"]:
        period = args["angle_bound_hi"] - args["angle_bound_lo"]
        if period <= 0 or period % 180:
            raise ShapeError(f"angle_bound_hi - angle_bound_lo is {period} but must be a positive "
                             "multiple of 180")


def check_weights(weights) -> None:
    if len(weights) != 4:
        raise ShapeError(f"weights has {len(weights)} values but must have 4: [wx, wy, ww, wh]")


def bbox_transform_shapes(args: dict, r_shape, d_shape, i_shape) -> int:
    """Check BBoxTransform's inputs; returns the batch size (im_info's rows)."""
    check_weights(args["weights"])
    check_angle_bounds(args)
    box_dim = 5 if args["rotated"] else 4
    if len(r_shape) != 2 or r_shape[1] not in (box_dim, box_dim + 1):
        raise ShapeError(f"rois is {list(r_shape)} but must be [M, {box_dim}] or [M, {box_dim + 1}]"
                         + (" (rotated boxes)" if args["rotated"] else ""))
    if len(d_shape) != 2 or d_shape[0] != r_shape[0] or d_shape[1] % box_dim:
        raise ShapeError(f"deltas is {list(d_shape)} but must be [{r_shape[0]}, {box_dim} * classes] "
                         f"for rois {list(r_shape)}")
    if len(i_shape) != 2 or i_shape[1] != 3:
        raise ShapeError(f"im_info is {list(i_shape)} but must be [batch_size, 3]")
    if r_shape[1] == box_dim and i_shape[0] != 1:
        raise ShapeError(f"rois {list(r_shape)} has no batch index column, so im_info {list(i_shape)} "
                         "must describe one image")
    return int(i_shape[0])


def check_im_info(im_info: np.ndarray) -> None:
    """Rows [height, width, scale]: finite, with a positive scale."""
    bad = ~np.isfinite(im_info).all(axis=1) | (im_info[:, 2] <= 0) | (im_info[:, :2] < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ShapeError(f"im_info row {row} is {im_info[row].tolist()} but must be [height >= 0, width >= 0, "
                         "scale > 0], finite")


def rois_per_image(batch: np.ndarray, images: int) -> np.ndarray:
    """How many RoIs each image has, from the batch index column."""
    bad = ~np.isfinite(batch) | (batch < 0) | (batch >= images)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ShapeError(f"rois row {row} has batch index {batch[row]} but im_info describes {images} image(s)")
    return np.bincount(batch.astype(np.int64), minlength=images)


def num_box_classes(args: dict, num_classes: int) -> int:
    """How many classes `boxes` holds a box for, given scores' classes."""
    if args["cls_agnostic_bbox_reg"]:
        return 1
    return num_classes - 1 if not args["input_boxes_include_bg_cls"] else num_classes


def nms_limit_shapes(args: dict, s_shape, b_shape) -> tuple[int, int]:
    """(count, num_classes) of BoxWithNMSLimit's scores and boxes, checked."""
    for name, shape in (("scores", s_shape), ("boxes", b_shape)):
        if not (len(shape) == 2 or (len(shape) == 4 and tuple(shape[2:]) == (1, 1))):
            raise ShapeError(f"{name} is {list(shape)} but must be [count, k] (or [count, k, 1, 1])")
    count, classes = int(s_shape[0]), int(s_shape[1])
    if classes < 1:
        raise ShapeError(f"scores is {list(s_shape)} but needs a class column")
    wanted = num_box_classes(args, classes) * (5 if args["rotated"] else 4)
    if b_shape[0] != count or b_shape[1] != wanted:
        raise ShapeError(f"boxes is {list(b_shape)} but must be [{count}, {wanted}] for scores {list(s_shape)}")
    return count, classes


def check_batch_splits(splits: np.ndarray, count: int) -> np.ndarray:
    """BoxWithNMSLimit's batch_splits: whole, non-negative, adding up to count."""
    if splits.ndim != 1:
        raise ShapeError(f"batch_splits is {list(splits.shape)} but must be 1-D")
    if not np.all(np.isfinite(splits)) or np.any(splits < 0) or np.any(splits != np.floor(splits)) \
            or splits.sum() != count:
        raise ShapeError(f"batch_splits {splits.tolist()[:8]} must be whole numbers >= 0 adding up to "
                         f"the {count} boxes")
    return splits.astype(np.int64)


@rule("detection_bbox_transform")
def bbox_transform(op: OpView, inputs: list) -> list:
    r, d, i = inputs
    check_weights(op.args["weights"])
    check_angle_bounds(op.args)
    if r is None or d is None or i is None:
        return [d, None][:op.n_outputs]
    batch = bbox_transform_shapes(op.args, r.shape, d.shape, i.shape)
    return [TensorInfo(d.shape, "float32"), TensorInfo((batch,), "float32")][:op.n_outputs]


@rule("detection_box_with_nms_limit")
def box_with_nms_limit(op: OpView, inputs: list) -> list:
    scores, boxes = inputs[:2]
    if scores is not None and boxes is not None:
        nms_limit_shapes(op.args, scores.shape, boxes.shape)
    splits = inputs[2] if len(inputs) > 2 else None
    if splits is not None and len(splits.shape) != 1:
        raise ShapeError(f"batch_splits is {list(splits.shape)} but must be 1-D")
    outputs = [None, None, None, None, None, None]
    batch = splits.shape[0] if splits is not None else (1 if len(inputs) == 2 else None)
    if batch is not None:
        outputs[3] = TensorInfo((batch,), "float32")
        if scores is not None:
            outputs[5] = TensorInfo((batch, scores.shape[1]), "int32")
    return outputs[:op.n_outputs]


def heatmap_shapes(h_shape, b_shape) -> tuple:
    """HeatmapMaxKeypoint's keypoints shape [N, 4, K] from heatmaps [N, K, S, S] and boxes [N, >= 4]."""
    if len(h_shape) != 4 or h_shape[2] != h_shape[3] or h_shape[2] < 2:
        raise ShapeError(f"heatmaps is {list(h_shape)} but must be [N, K, S, S] with S >= 2")
    if len(b_shape) != 2 or b_shape[0] != h_shape[0] or b_shape[1] < 4:
        raise ShapeError(f"bboxes is {list(b_shape)} but must be [{h_shape[0]}, >= 4] for heatmaps {list(h_shape)}")
    return (int(h_shape[0]), 4, int(h_shape[1]))


@rule("detection_heatmap_max_keypoint")
def heatmap_max_keypoint(op: OpView, inputs: list) -> list:
    heatmaps, boxes = inputs
    if heatmaps is None or boxes is None:
        return [None]
    return [TensorInfo(heatmap_shapes(heatmaps.shape, boxes.shape), "float32")]
