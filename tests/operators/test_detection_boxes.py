"""Box detection family (BBoxTransform, BoxWithNMSLimit, HeatmapMaxKeypoint): each against an independent NumPy
reference written box by box (Detectron's formulas; greedy NMS by pairwise loops), over
batches, class layouts, Soft-NMS and the detection limit; shape inference; and clear errors,
rotated NMS among them (refused when the net is checked)."""
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer

rng = np.random.default_rng(11)
CLIP = math.log(1000.0 / 16.0)


def ref_transform(box, delta, weights=(1, 1, 1, 1), plus_one=1):
    x1, y1, x2, y2 = box
    w, h = x2 - x1 + plus_one, y2 - y1 + plus_one
    cx, cy = x1 + w / 2, y1 + h / 2
    dx, dy, dw, dh = (d / wt for d, wt in zip(delta, weights))
    cx, cy = cx + dx * w, cy + dy * h
    w, h = math.exp(min(dw, CLIP)) * w, math.exp(min(dh, CLIP)) * h
    return [cx - w / 2, cy - h / 2, cx + w / 2 - plus_one, cy + h / 2 - plus_one]


def ref_clip(box, height, width, plus_one=1):
    return [min(max(v, 0), (width if k % 2 == 0 else height) - plus_one) for k, v in enumerate(box)]


def ref_bbox_transform(rois, deltas, im_info, weights=(1, 1, 1, 1), apply_scale=1, legacy_plus_one=1, **_):
    """Box by box and class by class; rows belong to images by their batch index."""
    out = np.zeros(deltas.shape)
    counts = np.zeros(len(im_info))
    for r, roi in enumerate(rois.astype(np.float64)):
        b = int(roi[0]) if len(roi) == 5 else 0
        counts[b] += 1
        height, width, scale = im_info[b]
        box = [v / scale for v in roi[-4:]]
        for k in range(deltas.shape[1] // 4):
            moved = ref_transform(box, deltas[r, 4 * k:4 * k + 4], weights, legacy_plus_one)
            clipped = ref_clip(moved, int(height / scale + 0.5), int(width / scale + 0.5), legacy_plus_one)
            out[r, 4 * k:4 * k + 4] = [v * (scale if apply_scale else 1) for v in clipped]
    return out, counts


def ref_transform_rotated(box, delta, lo=-90, hi=90, bound=True):
    cx, cy, w, h, a = box
    dx, dy, dw, dh, da = delta
    angle = a + da * 180 / math.pi
    if bound and angle < lo:
        angle += hi - lo
    elif bound and angle > hi:
        angle -= hi - lo
    return [cx + dx * w, cy + dy * h, math.exp(min(dw, CLIP)) * w, math.exp(min(dh, CLIP)) * h, angle]


def make_rois(counts, size):
    rows = []
    for b, n in enumerate(counts):
        corners = np.sort(rng.uniform(0, size, (n, 2, 2)), axis=1)  # [x1 y1], [x2 y2]
        rows += [[b, *c[0], *c[1]] for c in corners]
    return np.array(rows, np.float32).reshape(-1, 5)


@pytest.mark.parametrize("counts, classes, args", [
    ([4], 3, {}),
    ([3, 0, 2], 2, {"weights": [10.0, 10.0, 5.0, 5.0]}),
    ([2, 3], 1, {"apply_scale": 0, "legacy_plus_one": 0}),
    ([5], 2, {"apply_scale": 1, "correct_transform_coords": 1}),
])
def test_bbox_transform_matches_reference(counts, classes, args):
    rois = make_rois(counts, 60)
    deltas = (rng.standard_normal((len(rois), 4 * classes)) * 0.5).astype(np.float32)
    im_info = np.array([[50 * 1.5, 70 * 1.5, 1.5]] * len(counts), np.float32)
    im_info[-1] = [40, 45, 1.0]
    rois[:, 1:] *= 1.5
    check_reference("BBoxTransform", [rois, deltas, im_info], ref_bbox_transform, args, num_outputs=2)


def test_bbox_transform_without_batch_column_is_one_image():
    rois = make_rois([3], 30)[:, 1:]
    deltas = rng.standard_normal((3, 8)).astype(np.float32)
    im_info = np.array([[32, 28, 1.0]], np.float32)
    (out,) = run_op("BBoxTransform", [rois, deltas, im_info])
    expected, _ = ref_bbox_transform(np.concatenate([np.zeros((3, 1)), rois], 1), deltas, im_info)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bound, thresh", [(1, 1.0), (0, -1.0), (1, 90.0)])
def test_bbox_transform_rotated(bound, thresh):
    rois = np.array([[0, 20, 15, 10, 8, 0.5], [0, 30, 30, 12, 20, 60], [0, 2, 3, 8, 10, -89]], np.float32)
    deltas = (rng.standard_normal((3, 10)) * 0.4).astype(np.float32)
    im_info = np.array([[40, 50, 1.0]], np.float32)
    (out,) = run_op("BBoxTransform", [rois, deltas, im_info],
                    {"rotated": 1, "apply_scale": 0, "angle_bound_on": bound, "clip_angle_thresh": thresh})
    for r in range(3):
        for k in range(2):
            box = ref_transform_rotated(rois[r, 1:], deltas[r, 5 * k:5 * k + 5], bound=bool(bound))
            if abs(box[4]) <= thresh:  # upright enough: clipped as an upright box
                cx, cy, w, h, a = box
                x1, y1, x2, y2 = ref_clip([cx - (w - 1) / 2, cy - (h - 1) / 2, cx + (w - 1) / 2, cy + (h - 1) / 2],
                                          40, 50)
                box = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1 + 1, y2 - y1 + 1, a]
            np.testing.assert_allclose(out[r, 5 * k:5 * k + 5], box, rtol=1e-4, atol=1e-3)


# -- BoxWithNMSLimit -------------------------------------------------------------------------------

def ref_iou(a, b, plus_one=1):
    w = max(min(a[2], b[2]) - max(a[0], b[0]) + plus_one, 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]) + plus_one, 0)
    area = lambda z: (z[2] - z[0] + plus_one) * (z[3] - z[1] + plus_one)
    return w * h / (area(a) + area(b) - w * h)


def ref_nms(boxes, scores, candidates, thresh):
    """Greedy NMS: the best remaining box suppresses those overlapping it by IoU > thresh."""
    order = sorted(candidates, key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(ref_iou(boxes[i], boxes[k]) <= thresh for k in keep):
            keep.append(i)
    return keep


def ref_soft_nms(boxes, scores, candidates, thresh, sigma, min_score, method):
    scores = {i: float(scores[i]) for i in candidates}
    keep = []
    while scores:
        i = max(scores, key=lambda k: (scores[k], -k))
        keep.append((i, scores.pop(i)))
        for k in list(scores):
            iou = ref_iou(boxes[i], boxes[k])
            scores[k] *= (1 - iou if iou > thresh else 1) if method == "linear" else math.exp(-iou * iou / sigma)
            if scores[k] < min_score:
                del scores[k]
    return keep


def ref_box_with_nms_limit(scores, boxes, *splits, score_thresh=0.05, nms=0.3, detections_per_im=100,
                           soft_nms_enabled=0, soft_nms_method="linear", soft_nms_sigma=0.5,
                           soft_nms_min_score_thres=0.001, **_):
    """Image by image, class by class (background 0 skipped), then the best over all classes."""
    splits = splits[0].astype(int) if splits else [len(scores)]
    out = ([], [], [], [], [], [])
    start = 0
    for n in splits:
        found = []  # (score, class, row, box)
        for j in range(1, scores.shape[1]):
            s, b = scores[start:start + n, j], boxes[start:start + n, 4 * j:4 * j + 4]
            candidates = [i for i in range(n) if s[i] > score_thresh]
            if soft_nms_enabled:
                kept = ref_soft_nms(b, s, candidates, nms, soft_nms_sigma, soft_nms_min_score_thres, soft_nms_method)
            else:
                kept = [(i, s[i]) for i in ref_nms(b, s, candidates, nms)]
            found += [(score, j, i, b[i]) for i, score in kept]
        if detections_per_im > 0:
            found = sorted(found, key=lambda f: -f[0])[:detections_per_im]
        found.sort(key=lambda f: (f[1], -f[0]))  # class by class, best first
        out[0].extend(f[0] for f in found)
        out[1].extend(f[3] for f in found)
        out[2].extend(float(f[1]) for f in found)
        out[3].append(len(found))
        out[4].extend(f[2] for f in found)
        out[5].append([sum(f[1] == j for f in found) for j in range(scores.shape[1])])
        start += n
    return (np.array(out[0], np.float32), np.array(out[1], np.float32).reshape(-1, 4),
            np.array(out[2], np.float32), np.array(out[3], np.float32), np.array(out[4], np.int32),
            np.array(out[5], np.int32))


def clustered(count, classes):
    """Boxes around a few centres (so NMS has work) with distinct scores."""
    centres = rng.uniform(0, 40, (3, 2))
    picks = centres[rng.integers(0, 3, (count, classes))]
    size = rng.uniform(6, 12, (count, classes, 2))
    jitter = rng.uniform(-3, 3, (count, classes, 2))
    boxes = np.concatenate([picks + jitter - size / 2, picks + jitter + size / 2], axis=-1)
    scores = rng.permutation(count * classes).reshape(count, classes) / (count * classes)
    return scores.astype(np.float32), boxes.reshape(count, 4 * classes).astype(np.float32)


@pytest.mark.parametrize("splits, classes, args", [
    ([12], 3, {"score_thresh": 0.1, "nms": 0.4}),
    ([7, 0, 9], 4, {"score_thresh": 0.2, "nms": 0.3, "detections_per_im": 5}),
    ([10, 6], 2, {"nms": 0.5, "detections_per_im": 0}),
    ([14], 3, {"soft_nms_enabled": 1, "nms": 0.3, "soft_nms_min_score_thres": 0.05}),
    ([8, 8], 3, {"soft_nms_enabled": 1, "soft_nms_method": "gaussian", "soft_nms_sigma": 0.4,
                 "detections_per_im": 6}),
])
def test_box_with_nms_limit_matches_reference(splits, classes, args):
    scores, boxes = clustered(sum(splits), classes)
    for split_type in (np.float32, np.int32):
        inputs = [scores, boxes, np.array(splits, split_type)]
        check_reference("BoxWithNMSLimit", inputs, ref_box_with_nms_limit, args, num_outputs=6)


def test_box_with_nms_limit_class_layouts():
    scores, boxes = clustered(9, 3)
    base = run_op("BoxWithNMSLimit", [scores, boxes], {"score_thresh": 0.1}, num_outputs=3)
    # boxes without the background's columns, scores with the background last
    moved = np.concatenate([scores[:, 1:], scores[:, :1]], axis=1)
    got = run_op("BoxWithNMSLimit", [moved, boxes[:, 4:]],
                 {"score_thresh": 0.1, "input_boxes_include_bg_cls": 0, "output_classes_include_bg_cls": 0},
                 num_outputs=3)
    for a, b in zip(base[:2], got[:2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[2], base[2] - 1)
    # one box per row for every class
    shared = np.tile(boxes[:, :4], (1, 3))
    expected = ref_box_with_nms_limit(scores, shared, score_thresh=0.1)
    got = run_op("BoxWithNMSLimit", [scores, boxes[:, :4]], {"score_thresh": 0.1, "cls_agnostic_bbox_reg": 1},
                 num_outputs=3)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b)


def test_box_with_nms_limit_takes_4d_inputs_and_no_boxes():
    scores, boxes = clustered(5, 2)
    flat = run_op("BoxWithNMSLimit", [scores, boxes], num_outputs=4)
    four = run_op("BoxWithNMSLimit", [scores[:, :, None, None], boxes[:, :, None, None]], num_outputs=4)
    for a, b in zip(flat, four):
        np.testing.assert_array_equal(a, b)
    empty = run_op("BoxWithNMSLimit", [np.zeros((0, 2), np.float32), np.zeros((0, 8), np.float32)], num_outputs=6)
    assert [e.shape for e in empty] == [(0,), (0, 4), (0,), (1,), (0,), (1, 2)]


# -- shape inference and errors ---------------------------------------------------------------------

def test_output_shapes():
    assert infer("BBoxTransform", [(5, 5), (5, 12), (2, 3)], n_out=2) == [TensorInfo((5, 12)), TensorInfo((2,))]
    assert infer("BBoxTransform", [(5, 6), (5, 10), (1, 3)], rotated=1) == [TensorInfo((5, 10))]
    assert infer("BoxWithNMSLimit", [(5, 3), (5, 12), (2,)], n_out=6) == [
        None, None, None, TensorInfo((2,)), None, TensorInfo((2, 3), "int32")]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("BBoxTransform", [(5, 5), (5, 12), (2, 3)], {"weights": [1.5, 1.0, 1.0]}, "weights has 3 values but must have 4"),
    ("BBoxTransform", [(5, 3), (5, 12), (2, 3)], {}, r"rois is \[5, 3\] but must be \[M, 4\] or \[M, 5\]"),
    ("BBoxTransform", [(5, 5), (4, 12), (2, 3)], {}, r"deltas is \[4, 12\] but must be \[5, 4 \* classes\]"),
    ("BBoxTransform", [(5, 4), (5, 4), (2, 3)], {}, "must describe one image"),
    ("BBoxTransform", [(5, 6), (5, 10), (1, 3)], {"rotated": 1, "angle_bound_hi": 100},
     "must be a positive multiple of 180"),
    ("BoxWithNMSLimit", [(5, 3), (5, 8)], {}, r"boxes is \[5, 8\] but must be \[5, 12\]"),
    ("BoxWithNMSLimit", [(5, 3), (5, 12)], {"rotated": 1}, r"boxes is \[5, 12\] but must be \[5, 15\]"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("BBoxTransform", [np.array([[3, 0, 0, 4, 4]], np.float32), np.zeros((1, 4), np.float32),
                       np.ones((2, 3), np.float32)], {}, r"rois row 0 has batch index 3.0 but im_info describes 2"),
    ("BBoxTransform", [np.array([[0, 0, 0, 4, 4]], np.float32), np.zeros((1, 4), np.float32),
                       np.array([[10, 10, 0]], np.float32)], {}, r"im_info row 0 is \[10.0, 10.0, 0.0\] but must be"),
    ("BoxWithNMSLimit", [np.zeros((4, 2), np.float32), np.zeros((4, 8), np.float32), np.array([1, 2], np.float32)],
     {}, "must be whole numbers >= 0 adding up to the 4 boxes"),
])
def test_bad_values_are_clear_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)


def test_validate_checks_rotated_boxes_in_a_file(tmp_path):
    from pycaffe2.validate import check_file

    path = tmp_path / "net.yaml"
    path.write_text("name: det\nexternal_input: [scores, boxes]\nop:\n  - type: BoxWithNMSLimit\n"
                    "    input: [scores, boxes]\n    output: [s, b, c]\n    arg: {rotated: 1}\n")
    shapes = {"scores": ((5, 3), "float32"), "boxes": ((5, 12), "float32")}
    problems = [str(p) for p in check_file(path, shapes)]
    assert len(problems) == 1 and r"boxes is [5, 12] but must be [5, 15]" in problems[0], problems
    assert check_file(path, {**shapes, "boxes": ((5, 15), "float32")}) == []


# -- rotated boxes ----------------------------------------------------------------------------------

def rotated_polygon(box):
    """Corners of a rotated box [cx, cy, w, h, angle (degrees, counter-clockwise as seen in an
    image, whose y axis points down)], in order."""
    cx, cy, w, h, a = box
    c, s = math.cos(math.radians(-a)), math.sin(math.radians(-a))
    return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in
            ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]


def polygon_area(points):
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))) / 2


def clip_polygon(subject, clipper):
    """Sutherland-Hodgman: subject clipped by each edge of the convex, counter-clockwise clipper."""
    def inside(p, a, b):
        return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

    def cut(p, q, a, b):
        dx, dy, ex, ey = q[0] - p[0], q[1] - p[1], b[0] - a[0], b[1] - a[1]
        t = ((a[0] - p[0]) * ey - (a[1] - p[1]) * ex) / (dx * ey - dy * ex)
        return (p[0] + t * dx, p[1] + t * dy)

    out = subject
    for a, b in zip(clipper, clipper[1:] + clipper[:1]):
        points, out = out, []
        for p, q in zip(points, points[1:] + points[:1]):
            if inside(q, a, b):
                if not inside(p, a, b):
                    out.append(cut(p, q, a, b))
                out.append(q)
            elif inside(p, a, b):
                out.append(cut(p, q, a, b))
        if not out:
            return []
    return out


def ref_rotated_iou(a, b):
    inter = polygon_area(clip_polygon(rotated_polygon(a), rotated_polygon(b)) or [(0, 0)])
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_rotated_nms_matches_polygon_clipping():
    rng_local = np.random.default_rng(3)
    count, classes = 14, 3
    centres = rng_local.uniform(0, 30, (3, 2))[rng_local.integers(0, 3, (count, classes))]
    boxes = np.concatenate([centres + rng_local.uniform(-2, 2, (count, classes, 2)),
                            rng_local.uniform(4, 10, (count, classes, 2)),
                            rng_local.uniform(-90, 90, (count, classes, 1))], axis=-1).astype(np.float32)
    scores = (rng_local.permutation(count * classes).reshape(count, classes) / (count * classes)).astype(np.float32)
    args = {"rotated": 1, "score_thresh": 0.1, "nms": 0.3, "detections_per_im": 8}
    got = run_op("BoxWithNMSLimit", [scores, boxes.reshape(count, -1)], args, num_outputs=3)
    found = []
    for j in range(1, classes):
        order = sorted((i for i in range(count) if scores[i, j] > 0.1), key=lambda i: -scores[i, j])
        keep = []
        for i in order:
            if all(ref_rotated_iou(boxes[i, j], boxes[k, j]) <= 0.3 for k in keep):
                keep.append(i)
        found += [(scores[i, j], j, boxes[i, j]) for i in keep]
    found = sorted(sorted(found, key=lambda f: -f[0])[:8], key=lambda f: (f[1], -f[0]))
    np.testing.assert_allclose(got[0], [f[0] for f in found])
    np.testing.assert_allclose(got[1], np.array([f[2] for f in found]).reshape(-1, 5))
    np.testing.assert_array_equal(got[2], [f[1] for f in found])


def test_rotated_intersection_against_polygon_clipping():
    from pycaffe2.operators._boxes import rotated_intersection

    rng_local = np.random.default_rng(4)
    first = np.concatenate([rng_local.uniform(0, 6, (200, 2)), rng_local.uniform(1, 6, (200, 2)),
                            rng_local.uniform(-180, 180, (200, 1))], axis=1)
    second = first.copy()
    second[:150] = np.concatenate([rng_local.uniform(0, 6, (150, 2)), rng_local.uniform(1, 6, (150, 2)),
                                   rng_local.uniform(-180, 180, (150, 1))], axis=1)
    second[150:175, 4] += 90  # the same box turned a quarter about its centre
    expected = [polygon_area(clip_polygon(rotated_polygon(a), rotated_polygon(b)) or [(0, 0)])
                for a, b in zip(first, second)]
    np.testing.assert_allclose(rotated_intersection(first, second), expected, atol=1e-6)


# -- HeatmapMaxKeypoint -----------------------------------------------------------------------------

def ref_heatmap_max_keypoint(heatmaps, boxes, should_output_softmax=0, **_):
    """Heatmap by heatmap: the first maximum, a Newton step on its 3x3 neighbourhood (mirrored
    at the border), at most 1.5 cells, into the box."""
    n, k, size, _ = heatmaps.shape
    out = np.zeros((n, 4, k))
    for r in range(n):
        x0, y0 = boxes[r, :2]
        w, h = max(boxes[r, 2] - x0, 1.0), max(boxes[r, 3] - y0, 1.0)
        for j in range(k):
            m = heatmaps[r, j].astype(np.float64)
            my, mx = divmod(int(np.argmax(m)), size)

            def at(dy, dx, my=my, mx=mx, m=m):
                y, x = my + dy, mx + dx
                y = y - 2 if y >= size else y + 2 if y < 0 else y
                x = x - 2 if x >= size else x + 2 if x < 0 else x
                return m[y, x]

            grad = np.array([(at(0, 1) - at(0, -1)) / 2, (at(1, 0) - at(-1, 0)) / 2])
            cross = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
            hess = np.array([[at(0, -1) - 2 * m[my, mx] + at(0, 1), cross],
                             [cross, at(-1, 0) - 2 * m[my, mx] + at(1, 0)]])
            if abs(np.linalg.det(hess)) < 1e-4:
                step, score = np.zeros(2), m[my, mx]
            else:
                step = np.linalg.solve(hess, -grad)
                if np.abs(step).max() > 1.5:
                    step = step / np.abs(step).max() * 1.5
                score = m[my, mx] + grad @ step + 0.5 * step @ hess @ step
            prob = np.exp(m[my, mx] - m.max()) / np.exp(m - m.max()).sum() if should_output_softmax else 0.0
            out[r, :, j] = [x0 + (0.5 + mx + step[0]) * w / size, y0 + (0.5 + my + step[1]) * h / size, score, prob]
    return out


@pytest.mark.parametrize("shape, softmax", [((4, 3, 7, 7), 1), ((2, 5, 2, 2), 0), ((0, 3, 4, 4), 1)])
def test_heatmap_max_keypoint_matches_reference(shape, softmax):
    heatmaps = rng.standard_normal(shape).astype(np.float32)
    heatmaps[:1, :1, 0, -1] = 9.0  # a maximum in a corner: its neighbourhood is mirrored
    boxes = np.sort(rng.uniform(0, 80, (shape[0], 2, 2)), axis=1).reshape(shape[0], 4).astype(np.float32)
    boxes = boxes[:, [0, 2, 1, 3]]
    check_reference("HeatmapMaxKeypoint", [heatmaps, boxes], ref_heatmap_max_keypoint,
                    {"should_output_softmax": softmax}, atol=1e-3)


def test_heatmap_max_keypoint_flat_neighbourhood_takes_no_step():
    heatmaps = np.full((1, 1, 4, 4), 2.0, np.float32)  # a plateau: the first cell, no step
    (out,) = run_op("HeatmapMaxKeypoint", [heatmaps, np.array([[0, 0, 8, 8, 0.9]], np.float32)])
    np.testing.assert_allclose(out[0, :, 0], [1.0, 1.0, 2.0, 0.0])


def test_heatmap_shapes_and_errors():
    assert infer("HeatmapMaxKeypoint", [(3, 17, 56, 56), (3, 5)]) == [TensorInfo((3, 4, 17))]
    with pytest.raises(ShapeError, match=r"heatmaps is \[3, 17, 56, 55\] but must be \[N, K, S, S\]"):
        infer("HeatmapMaxKeypoint", [(3, 17, 56, 55), (3, 5)])
    with pytest.raises(ShapeError, match=r"bboxes is \[2, 4\] but must be \[3, >= 4\]"):
        infer("HeatmapMaxKeypoint", [(3, 17, 56, 56), (2, 4)])
