"""Proposal family (GenerateProposals, CollectAndDistributeFpnRpnProposals, CollectRpnProposals,
DistributeFpnProposals): each against an independent NumPy reference written anchor by anchor
and RoI by RoI, the FPN ops' halves against the whole, shape inference, and clear errors
(rotated anchors refused when the net is checked)."""
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.operators.test_detection_boxes import (
    ref_clip,
    ref_nms,
    ref_rotated_iou,
    ref_transform,
    ref_transform_rotated,
)
from tests.schema import infer

rng = np.random.default_rng(5)


def ref_generate_proposals(scores, deltas, im_info, anchors, spatial_scale=0.0625, pre_nms_topN=6000,
                           post_nms_topN=300, nms_thresh=0.7, min_size=16.0, **_):
    """Anchor by anchor: shift, move, clip, filter by size, NMS; image by image."""
    rois, probs = [], []
    stride = 1.0 / spatial_scale
    for i in range(len(scores)):
        found = []
        a_count, height, width = scores[i].shape
        for a in range(a_count):
            for y in range(height):
                for x in range(width):
                    anchor = anchors[a] + np.array([x, y, x, y]) * stride
                    found.append((scores[i, a, y, x], anchor, deltas[i, 4 * a:4 * a + 4, y, x]))
        found.sort(key=lambda f: -f[0])
        if 0 < pre_nms_topN < len(found):
            found = found[:pre_nms_topN]
        im_h, im_w, scale = im_info[i]
        boxes, kept_scores = [], []
        for score, anchor, delta in found:
            x1, y1, x2, y2 = ref_clip(ref_transform(anchor, delta), int(im_h), int(im_w))
            w, h = x2 - x1 + 1, y2 - y1 + 1
            if w >= min_size * scale and h >= min_size * scale and x1 + w / 2 < im_w and y1 + h / 2 < im_h:
                boxes.append([x1, y1, x2, y2])
                kept_scores.append(score)
        keep = ref_nms(boxes, kept_scores, range(len(boxes)), nms_thresh)
        if post_nms_topN > 0:
            keep = keep[:post_nms_topN]
        rois += [[i, *boxes[k]] for k in keep]
        probs += [kept_scores[k] for k in keep]
    return np.array(rois, np.float32).reshape(-1, 5), np.array(probs, np.float32)


def rpn_inputs(images, a_count, height, width, image_size):
    scores = rng.permutation(images * a_count * height * width).reshape(images, a_count, height, width)
    scores = (scores / scores.size).astype(np.float32)
    deltas = (rng.standard_normal((images, 4 * a_count, height, width)) * 0.3).astype(np.float32)
    sizes = rng.uniform(12, 40, (a_count, 2))
    anchors = np.concatenate([-sizes / 2, sizes / 2], axis=1).astype(np.float32)
    im_info = np.array([[image_size, image_size * 1.2, 1.0]] * images, np.float32)
    im_info[-1, 2] = 0.8
    return [scores, deltas, im_info, anchors]


@pytest.mark.parametrize("shape, args", [
    ((1, 3, 5, 6), {"spatial_scale": 0.125, "min_size": 4.0}),
    ((2, 2, 6, 4), {"spatial_scale": 0.125, "pre_nms_topN": 20, "post_nms_topN": 6, "nms_thresh": 0.5,
                    "min_size": 2.0}),
    ((2, 4, 3, 3), {"spatial_scale": 0.0625, "post_nms_topN": 0, "min_size": 8.0, "nms_thresh": 0.6}),
])
def test_generate_proposals_matches_reference(shape, args):
    inputs = rpn_inputs(*shape, image_size=50)
    check_reference("GenerateProposals", inputs, ref_generate_proposals, args, atol=1e-3)
    check_reference("GenerateProposalsCPP", inputs, ref_generate_proposals, args, atol=1e-3)


def ref_rotated_proposals(scores, deltas, im_info, anchors, spatial_scale=0.0625, pre_nms_topN=6000,
                          post_nms_topN=300, nms_thresh=0.7, min_size=16.0, clip_angle_thresh=1.0, **_):
    """RRPN, anchor by anchor: the centre shifts, the box moves and turns, nearly upright boxes
    clip as upright ones, small or outside ones drop, NMS by rotated IoU."""
    rois, probs = [], []
    for i in range(len(scores)):
        a_count, height, width = scores[i].shape
        found = sorted(((scores[i, a, y, x], anchors[a] + np.array([x, y, 0, 0, 0]) / spatial_scale,
                         deltas[i, 5 * a:5 * a + 5, y, x])
                        for a in range(a_count) for y in range(height) for x in range(width)), key=lambda f: -f[0])
        im_h, im_w, scale = im_info[i]
        boxes, kept = [], []
        for score, anchor, delta in found[:pre_nms_topN]:
            cx, cy, w, h, angle = ref_transform_rotated(anchor, delta)
            if abs(angle) <= clip_angle_thresh:
                x1, y1, x2, y2 = ref_clip([cx - (w - 1) / 2, cy - (h - 1) / 2, cx + (w - 1) / 2, cy + (h - 1) / 2],
                                          int(im_h), int(im_w))
                cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1 + 1, y2 - y1 + 1
            if w >= min_size * scale and h >= min_size * scale and cx < im_w and cy < im_h:
                boxes.append([cx, cy, w, h, angle])
                kept.append(score)
        keep = []
        for k in range(len(boxes)):
            if all(ref_rotated_iou(boxes[k], boxes[j]) <= nms_thresh for j in keep):
                keep.append(k)
        keep = keep[:post_nms_topN] if post_nms_topN > 0 else keep
        rois += [[i, *boxes[k]] for k in keep]
        probs += [kept[k] for k in keep]
    return np.array(rois, np.float32).reshape(-1, 6), np.array(probs, np.float32)


def test_generate_rotated_proposals_matches_reference():
    scores, _, im_info, _ = rpn_inputs(2, 3, 4, 5, image_size=40)
    deltas = (rng.standard_normal((2, 15, 4, 5)) * 0.3).astype(np.float32)
    anchors = np.array([[0, 0, 12, 8, 0.0], [0, 0, 20, 10, 45], [0, 0, 8, 16, -60]], np.float32)
    deltas[:, 4] *= 0.01  # anchor 0 stays nearly upright: clipped as an upright box
    args = {"spatial_scale": 0.125, "min_size": 3.0, "nms_thresh": 0.5, "post_nms_topN": 12}
    check_reference("GenerateProposals", [scores, deltas, im_info, anchors], ref_rotated_proposals, args, atol=1e-3)


def ref_levels(rois, scale=224, level=4, lo=2, hi=5):
    out = []
    for roi in rois:
        area = (roi[3] - roi[1] + 1) * (roi[4] - roi[2] + 1)
        out.append(min(max(math.floor(level + math.log2(math.sqrt(area) / scale + 1e-6)), lo), hi))
    return np.array(out)


def ref_distribute(rois, roi_canonical_scale=224, roi_canonical_level=4, roi_min_level=2, roi_max_level=5, **_):
    levels = ref_levels(rois, roi_canonical_scale, roi_canonical_level, roi_min_level, roi_max_level)
    per_level = [rois[levels == lvl] for lvl in range(roi_min_level, roi_max_level + 1)]
    order = [i for lvl in range(roi_min_level, roi_max_level + 1) for i in range(len(rois)) if levels[i] == lvl]
    restore = [order.index(i) for i in range(len(rois))]
    return [*per_level, np.array(restore, np.int32)]


def level_rois(count, scale):
    corner = rng.uniform(0, 500, (count, 2))
    size = np.exp(rng.uniform(np.log(4), np.log(scale * 8), (count, 2)))
    return np.concatenate([np.zeros((count, 1)), corner, corner + size], axis=1).astype(np.float32)


FPN_ARGS = [
    {"rpn_min_level": 2, "rpn_max_level": 4, "roi_min_level": 2, "roi_max_level": 5, "rpn_post_nms_topN": 25},
    {"rpn_min_level": 3, "rpn_max_level": 3, "roi_min_level": 1, "roi_max_level": 3, "rpn_post_nms_topN": 0,
     "roi_canonical_scale": 100, "roi_canonical_level": 2},
]


@pytest.mark.parametrize("args", FPN_ARGS)
def test_collect_and_distribute_matches_reference(args):
    levels = args["rpn_max_level"] - args["rpn_min_level"] + 1
    rois = [level_rois(n, 224) for n in rng.integers(3, 15, levels)]
    scores = [rng.uniform(0, 1, len(r)).astype(np.float32) for r in rois]
    every, every_score = np.concatenate(rois), np.concatenate(scores)
    top = args["rpn_post_nms_topN"]
    collected = every[np.argsort(-every_score, kind="stable")][:top if top > 0 else None]
    outputs = args["roi_max_level"] - args["roi_min_level"] + 3
    check_reference("CollectAndDistributeFpnRpnProposals", rois + scores,
                    lambda *_, **a: [collected, *ref_distribute(collected, **a)], args, num_outputs=outputs)
    check_reference("CollectRpnProposals", rois + [s[:, None] for s in scores], lambda *_, **__: [collected], {
        k: v for k, v in args.items() if k.startswith("rpn")})
    distribute_args = {k: v for k, v in args.items() if k.startswith("roi")}
    check_reference("DistributeFpnProposals", [collected], ref_distribute, distribute_args, num_outputs=outputs - 1)
    check_reference("DistributeFpnProposals", [collected[:, 1:]], lambda r, **a: ref_distribute(collected, **a),
                    distribute_args, num_outputs=outputs - 1)


# -- shape inference and errors ---------------------------------------------------------------------

def test_output_shapes():
    assert infer("GenerateProposals", [(1, 3, 4, 4), (1, 12, 4, 4), (1, 3), (3, 4)], n_out=2) == [None, None]
    assert infer("DistributeFpnProposals", [(7, 5)], n_out=5) == [None] * 4 + [TensorInfo((7,), "int32")]


@pytest.mark.parametrize("op_type, shapes, n_out, args, message", [
    ("GenerateProposals", [(1, 3, 4, 4), (1, 12, 4, 4), (1, 3), (3, 5)], 2, {},
     r"bbox_deltas is \[1, 12, 4, 4\] but must be \[1, 15, 4, 4\]"),
    ("GenerateProposals", [(1, 3, 4, 4), (1, 15, 4, 4), (1, 3), (3, 5)], 2, {"angle_bound_lo": -45},
     "angle_bound_hi - angle_bound_lo is 135 but must be a positive multiple of 180"),
    ("GenerateProposals", [(1, 3, 4, 4), (1, 12, 4, 4), (1, 3), (3, 6)], 2, {},
     r"anchors is \[3, 6\] but must be \[3, 4\] \(or \[3, 5\] rotated\)"),
    ("GenerateProposals", [(1, 3, 4, 4), (1, 12, 4, 5), (1, 3), (3, 4)], 2, {},
     r"bbox_deltas is \[1, 12, 4, 5\] but must be \[1, 12, 4, 4\]"),
    ("GenerateProposals", [(2, 3, 4, 4), (2, 12, 4, 4), (1, 3), (3, 4)], 2, {}, r"im_info is \[1, 3\] but must be \[2, 3\]"),
    ("CollectAndDistributeFpnRpnProposals", [(4, 5), (4,)], 6, {}, "2 inputs but RPN levels 2..6 need 10"),
    ("CollectAndDistributeFpnRpnProposals", [(4, 5), (4,)], 3, {"rpn_max_level": 2},
     "3 outputs but RoI levels 2..5 need 6"),
    ("CollectRpnProposals", [(4, 5), (3,)], 1, {"rpn_max_level": 2}, r"scores of RPN level input 0 is \[3\]"),
    ("DistributeFpnProposals", [(4, 6)], 5, {}, r"rois is \[4, 6\] but must be \[R, 4 or 5\]"),
    ("DistributeFpnProposals", [(4, 5)], 5, {"roi_max_level": 1}, "roi_max_level 1 must be >= roi_min_level 2"),
])
def test_inference_errors(op_type, shapes, n_out, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=n_out, **args)


def test_bad_im_info_is_a_clear_error():
    inputs = rpn_inputs(1, 2, 3, 3, image_size=40)
    inputs[2][0, 0] = np.nan
    with pytest.raises((OpFailure, NetError), match="im_info row 0 is"):
        run_op("GenerateProposals", inputs, num_outputs=2)


def test_negative_areas_are_a_clear_error():
    rois = np.array([[0, 10, 10, 2, 20]], np.float32)
    with pytest.raises((OpFailure, NetError), match="rois row 0 has area"):
        run_op("DistributeFpnProposals", [rois], num_outputs=5)


# -- the ops together, as Detectron's exported nets chain them ------------------------------------------

def run_net(ops, feeds):
    from pycaffe2.executor import Workspace
    from pycaffe2.proto import caffe2_pb2

    workspace = Workspace("detection_net")
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    net = caffe2_pb2.NetDef(name="det", op=ops, external_input=list(feeds))
    workspace.RunNetOnce(net)
    return workspace


def test_faster_rcnn_inference_chain():
    from pycaffe2.testing import make_op

    scores, deltas, im_info, anchors = rpn_inputs(1, 3, 6, 6, image_size=48)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w_cls, w_box = (rng.standard_normal((k, 4 * 2 * 2)).astype(np.float32) * 0.1 for k in (3, 12))
    ops = [
        make_op("GenerateProposals", ["rpn_scores", "rpn_deltas", "im_info", "anchors"], ["rois", "rois_probs"],
                {"spatial_scale": 0.125, "post_nms_topN": 10, "min_size": 2.0}),
        make_op("RoIAlign", ["x", "rois"], ["pooled"], {"spatial_scale": 0.125, "pooled_h": 2, "pooled_w": 2,
                                                       "sampling_ratio": 2}),
        make_op("FC", ["pooled", "w_cls", "b_cls"], ["logits"]),
        make_op("Softmax", ["logits"], ["cls_prob"]),
        make_op("FC", ["pooled", "w_box", "b_box"], ["box_deltas"]),
        make_op("BBoxTransform", ["rois", "box_deltas", "im_info"], ["pred_boxes", "splits"],
                {"weights": [10.0, 10.0, 5.0, 5.0], "apply_scale": 0}),
        make_op("BoxWithNMSLimit", ["cls_prob", "pred_boxes", "splits"], ["det_scores", "det_boxes", "det_classes"],
                {"score_thresh": 0.0, "nms": 0.5, "detections_per_im": 5}),
    ]
    ws = run_net(ops, {"rpn_scores": scores, "rpn_deltas": deltas, "im_info": im_info, "anchors": anchors, "x": x,
                       "w_cls": w_cls, "b_cls": np.zeros(3, np.float32), "w_box": w_box,
                       "b_box": np.zeros(12, np.float32)})
    rois = ws.FetchBlob("rois")
    assert 0 < len(rois) <= 10 and ws.FetchBlob("pred_boxes").shape == (len(rois), 12)
    assert ws.FetchBlob("det_scores").shape == (5,) and set(ws.FetchBlob("det_classes")) <= {1.0, 2.0}


def test_fpn_distribution_and_restore_give_the_collected_order():
    """RoIAlign level by level, concatenated and put back by rois_idx_restore, is RoIAlign over
    the collected RoIs (one feature map stands in for every level)."""
    from pycaffe2.testing import make_op

    rois = [level_rois(n, 224) for n in (9, 7)]
    rois[1][:, 1:] *= 0.3  # smaller boxes: lower levels
    feeds = {"r2": rois[0], "r3": rois[1], "s2": rng.uniform(size=9).astype(np.float32),
             "s3": rng.uniform(size=7).astype(np.float32), "x": rng.standard_normal((1, 2, 40, 40)).astype(np.float32)}
    levels = ["fpn2", "fpn3", "fpn4", "fpn5"]
    align = {"spatial_scale": 0.0625, "pooled_h": 2, "pooled_w": 2, "sampling_ratio": 2}
    ops = [make_op("CollectAndDistributeFpnRpnProposals", ["r2", "r3", "s2", "s3"], ["rois", *levels, "restore"],
                   {"rpn_min_level": 2, "rpn_max_level": 3, "rpn_post_nms_topN": 12}),
           *[make_op("RoIAlign", ["x", level], [f"pooled_{level}"], align) for level in levels],
           make_op("Concat", [f"pooled_{level}" for level in levels], ["pooled_shuffled", "split"], {"axis": 0}),
           make_op("BatchPermutation", ["pooled_shuffled", "restore"], ["pooled"]),
           make_op("RoIAlign", ["x", "rois"], ["expected"], align)]
    ws = run_net(ops, feeds)
    assert len({len(ws.FetchBlob(level)) for level in levels}) > 1  # the RoIs really were spread
    np.testing.assert_allclose(ws.FetchBlob("pooled"), ws.FetchBlob("expected"), rtol=1e-6)
