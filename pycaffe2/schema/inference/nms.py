"""Inference rule of the nms family (ONNX's NonMaxSuppression), and the checks its
kernel shares with it. The number of boxes kept is a value: the output is [?, 3] int64."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES

THRESHOLD_NAMES = ("max_output_boxes_per_class", "iou_threshold", "score_threshold")


def nms_inputs(boxes, scores) -> None:
    """boxes [B, S, 4] and scores [B, C, S] of a float type (None: unknown)."""
    if boxes is not None and (len(boxes.shape) != 3 or boxes.shape[2] != 4):
        raise ShapeError(f"boxes must be [num_batches, spatial_dimension, 4], got {list(boxes.shape)}")
    if scores is not None and len(scores.shape) != 3:
        raise ShapeError(f"scores must be [num_batches, num_classes, spatial_dimension], got {list(scores.shape)}")
    if boxes is not None and scores is not None and (boxes.shape[0] != scores.shape[0]
                                                     or boxes.shape[1] != scores.shape[2]):
        raise ShapeError(f"boxes {list(boxes.shape)} and scores {list(scores.shape)} disagree on the batches "
                         f"or boxes")
    for name, info in (("boxes", boxes), ("scores", scores)):
        if info is not None and info.dtype not in FLOAT_TYPES:
            raise ShapeError(f"{name} must be float, got {info.dtype}")


def threshold_input(name: str, shape) -> None:
    """An optional threshold: empty (absent) or one value."""
    if math.prod(shape) > 1:
        raise ShapeError(f"{name} must be one value (or empty), got {list(shape)}")


@rule("nms_non_max_suppression")
def non_max_suppression(op: OpView, inputs: list) -> list:
    nms_inputs(inputs[0], inputs[1])
    for name, info in zip(THRESHOLD_NAMES, inputs[2:]):
        if info is not None:
            threshold_input(name, info.shape)
    return [None]
