"""nms family (ONNX's NonMaxSuppression) against a pairwise-loop reference written here:
corner and centre box formats, flipped corners, score and IoU thresholds, output limits,
several batches and classes, absent thresholds; inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer


def box_iou(a, b, centre):
    if centre:
        a = [a[1] - a[3] / 2, a[0] - a[2] / 2, a[1] + a[3] / 2, a[0] + a[2] / 2]
        b = [b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2]
    ya0, ya1 = sorted([a[0], a[2]])
    xa0, xa1 = sorted([a[1], a[3]])
    yb0, yb1 = sorted([b[0], b[2]])
    xb0, xb1 = sorted([b[1], b[3]])
    w, h = min(xa1, xb1) - max(xa0, xb0), min(ya1, yb1) - max(ya0, yb0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area_a, area_b = (xa1 - xa0) * (ya1 - ya0), (xb1 - xb0) * (yb1 - yb0)
    return inter / (area_a + area_b - inter)


def reference(boxes, scores, limit=None, iou=None, score=None, center_point_box=0):
    limit = 0 if limit is None or limit.size == 0 else int(limit.reshape(-1)[0])
    iou = 0.0 if iou is None or iou.size == 0 else float(iou.reshape(-1)[0])
    score = None if score is None or score.size == 0 else float(score.reshape(-1)[0])
    out = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            candidates = [i for i in range(boxes.shape[1]) if score is None or scores[b, c, i] > score]
            candidates.sort(key=lambda i: (-scores[b, c, i], i))
            kept = []
            for i in candidates:
                if len(kept) == limit:
                    break
                if all(box_iou(boxes[b, i], boxes[b, k], center_point_box) <= iou for k in kept):
                    kept.append(i)
            out += [[b, c, k] for k in kept]
    return np.array(out, np.int64).reshape(-1, 3)


def scalar(value, dtype):
    return np.array([value], dtype)


BOXES = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [0, 10.1, 1, 11.1],
                   [0, 100, 1, 101]]], np.float32)
SCORES = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3]]], np.float32)


@pytest.mark.parametrize("limit, iou, score", [(3, 0.5, None), (3, 0.5, 0.4), (2, 0.5, None), (10, 0.0, None),
                                               (10, 0.9, 0.0), (0, 0.5, None)])
def test_corner_boxes(limit, iou, score):
    inputs = [BOXES, SCORES, scalar(limit, np.int64), scalar(iou, np.float32)]
    if score is not None:
        inputs.append(scalar(score, np.float32))
    check_reference("NonMaxSuppression", inputs, reference)


def test_flipped_corners_and_centre_format():
    flipped = BOXES[:, :, [2, 3, 0, 1]]
    check_reference("NonMaxSuppression", [flipped, SCORES, scalar(3, np.int64), scalar(0.5, np.float32)], reference)
    centre = np.array([[[0.5, 0.5, 1, 1], [0.5, 0.6, 1, 1], [0.5, 0.4, 1, 1], [0.5, 10.5, 1, 1]]], np.float32)
    check_reference("NonMaxSuppression", [centre, SCORES[:, :, :4], scalar(3, np.int64), scalar(0.5, np.float32)],
                    reference, {"center_point_box": 1})


def test_batches_classes_and_ties():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 10, (2, 12, 2)).astype(np.float32)
    boxes = np.concatenate([corner, corner + rng.uniform(0.5, 4, (2, 12, 2)).astype(np.float32)], axis=2)
    scores = rng.choice(np.float32([0.1, 0.5, 0.7, 0.9]), (2, 3, 12))  # ties: lower index first
    got = check_reference("NonMaxSuppression", [boxes, scores, scalar(4, np.int64), scalar(0.3, np.float32),
                                                scalar(0.2, np.float32)], reference)[0]
    assert got.dtype == np.int64 and got.shape[1] == 3


def test_absent_thresholds():
    empty = np.zeros(0, np.float32)
    check_reference("NonMaxSuppression", [BOXES, SCORES, scalar(2, np.int64), empty, scalar(0.5, np.float32)],
                    reference)
    assert run_op("NonMaxSuppression", [BOXES, SCORES])[0].shape == (0, 3)  # no limit given: none kept


def test_inference_and_errors():
    assert infer("NonMaxSuppression", [(1, 6, 4), (1, 2, 6)]) == [None]
    with pytest.raises(ShapeError, match=r"boxes must be \[num_batches, spatial_dimension, 4\]"):
        infer("NonMaxSuppression", [(1, 6, 5), (1, 2, 6)])
    with pytest.raises(ShapeError, match="disagree on the batches or boxes"):
        infer("NonMaxSuppression", [(1, 6, 4), (1, 2, 5)])
    with pytest.raises(ShapeError, match="iou_threshold must be one value"):
        infer("NonMaxSuppression", [(1, 6, 4), (1, 2, 6), TensorInfo((1,), "int64"), (2,)])
    with pytest.raises(ShapeError, match="scores must be float"):
        infer("NonMaxSuppression", [(1, 6, 4), TensorInfo((1, 2, 6), "int32")])
    with pytest.raises((OpFailure, NetError), match="scores must be"):
        run_op("NonMaxSuppression", [BOXES, SCORES[0]])
