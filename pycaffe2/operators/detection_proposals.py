"""GenerateProposals and the FPN proposal ops (NumPy, float32 as Caffe2): RPN anchors
(upright, or rotated as RRPN's) to RoIs per image (sort, transform, clip, filter, NMS:
_boxes.py), and collecting RoIs over pyramid levels and distributing them back by size.
Loops run over images and levels.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _boxes as boxes_util
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.detection_boxes import check_angle_bounds, check_im_info
from pycaffe2.schema.inference.detection_proposals import (
    check_collect_inputs,
    check_distribute_outputs,
    check_level_inputs,
    check_rois,
    generate_proposals_shapes,
)

F32 = np.float32


def _keep_by_size(proposals, min_size: float, im_info, plus_one: int) -> np.ndarray:
    """Rows whose sides are at least min_size (in the scaled image) and whose centre is inside."""
    if proposals.shape[1] == 5:  # rotated: [ctr_x, ctr_y, w, h, angle]
        ws, hs, x_ctr, y_ctr = proposals[:, 2], proposals[:, 3], proposals[:, 0], proposals[:, 1]
    else:
        ws = proposals[:, 2] - proposals[:, 0] + F32(plus_one)
        hs = proposals[:, 3] - proposals[:, 1] + F32(plus_one)
        x_ctr, y_ctr = proposals[:, 0] + ws / F32(2), proposals[:, 1] + hs / F32(2)
    smallest = min_size * float(im_info[2])
    return np.flatnonzero((ws >= smallest) & (hs >= smallest) & (x_ctr < im_info[1]) & (y_ctr < im_info[0]))


def _moved_and_clipped(anchors, deltas, im_info, args: dict) -> np.ndarray:
    """Anchors moved by their deltas (unit weights) and clipped to the image."""
    plus_one = int(bool(args["legacy_plus_one"]))
    height, width = np.floor(im_info[0]), np.floor(im_info[1])
    weights = (1.0, 1.0, 1.0, 1.0)
    if anchors.shape[1] == 5:
        bound = (args["angle_bound_lo"], args["angle_bound_hi"]) if args["angle_bound_on"] else None
        moved = boxes_util.transform_rotated(anchors, deltas, weights, bound)
        return boxes_util.clip_rotated(moved, height, width, args["clip_angle_thresh"], plus_one)
    return boxes_util.clip_upright(boxes_util.transform_upright(anchors, deltas, weights, plus_one), height, width,
                                   plus_one)


def _proposals_one_image(scores, deltas, im_info, anchors, args: dict):
    """(boxes [R, 4 or 5], scores [R]) of one image's proposals, best first."""
    a_count, height, width = scores.shape
    box_dim, cells = anchors.shape[1], height * width
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    if 0 < args["pre_nms_topN"] < flat.size:
        order = order[:args["pre_nms_topN"]]
    anchor, cell = order // cells, order % cells
    stride = F32(1.0 / args["spatial_scale"])
    shift = np.zeros((len(order), box_dim), F32)  # rotated anchors move their centre only
    shift[:, 0], shift[:, 1] = (cell % width).astype(F32) * stride, (cell // width).astype(F32) * stride
    if box_dim == 4:
        shift[:, 2:] = shift[:, :2]
    proposals = _moved_and_clipped(anchors[anchor] + shift, deltas.reshape(a_count, box_dim, cells)[anchor, :, cell],
                                   im_info, args)
    plus_one = int(bool(args["legacy_plus_one"]))
    keep = _keep_by_size(proposals, args["min_size"], im_info, plus_one)
    post = args["post_nms_topN"]
    keep = boxes_util.nms(proposals, keep, args["nms_thresh"], post if 0 < post < len(keep) else -1, plus_one)
    return proposals[keep], flat[order][keep]


@register_cpu("GenerateProposals", "GenerateProposalsCPP")
def generate_proposals(scores, bbox_deltas, im_info, anchors, *, spatial_scale, pre_nms_topN, post_nms_topN,
                       nms_thresh, min_size, angle_bound_on, angle_bound_lo, angle_bound_hi, clip_angle_thresh,
                       legacy_plus_one):
    box_dim = generate_proposals_shapes(scores.shape, bbox_deltas.shape, im_info.shape, anchors.shape)
    args = {"spatial_scale": spatial_scale, "pre_nms_topN": pre_nms_topN, "post_nms_topN": post_nms_topN,
            "nms_thresh": nms_thresh, "min_size": min_size, "legacy_plus_one": legacy_plus_one,
            "angle_bound_on": angle_bound_on, "angle_bound_lo": angle_bound_lo, "angle_bound_hi": angle_bound_hi,
            "clip_angle_thresh": clip_angle_thresh}
    check_angle_bounds(args, box_dim == 5)
    scores, bbox_deltas = scores.astype(F32), bbox_deltas.astype(F32)
    im_info, anchors = im_info.astype(F32), anchors.astype(F32)
    check_im_info(im_info)
    rois, probs = [], []
    for i in range(scores.shape[0]):
        boxes, kept = _proposals_one_image(scores[i], bbox_deltas[i], im_info[i], anchors, args)
        rois.append(np.concatenate([np.full((len(boxes), 1), i, F32), boxes], axis=1))
        probs.append(kept)
    if not rois:
        return np.zeros((0, box_dim + 1), F32), np.zeros(0, F32)
    return np.concatenate(rois).astype(F32), np.concatenate(probs).astype(F32)


# -- FPN ------------------------------------------------------------------------------------------

def _collect(inputs: list, args: dict) -> np.ndarray:
    """The rpn_post_nms_topN best rois over all levels, best first (ties in input order)."""
    levels = check_collect_inputs(args, len(inputs))
    check_level_inputs([x.shape for x in inputs[:levels]], [x.shape for x in inputs[levels:]])
    rois = np.concatenate([x.reshape(-1, 5) for x in inputs[:levels]]).astype(F32)
    scores = np.concatenate([x.reshape(-1) for x in inputs[levels:]]).astype(F32)
    order = np.argsort(-scores, kind="stable")
    top = args["rpn_post_nms_topN"]
    return rois[order[:top] if 0 < top < len(order) else order]


def _levels(rois: np.ndarray, args: dict) -> np.ndarray:
    """Each RoI's FPN level: floor(lvl0 + log2(sqrt(area) / s0 + 1e-6)), clipped to the RoI levels."""
    plus_one = F32(int(bool(args["legacy_plus_one"])))
    areas = (rois[:, 3] - rois[:, 1] + plus_one) * (rois[:, 4] - rois[:, 2] + plus_one)
    if np.any(areas < 0) or not np.all(np.isfinite(areas)):
        row = int(np.flatnonzero(~(areas >= 0))[0])
        raise ShapeError(f"rois row {row} has area {areas[row]}: boxes must have x2 >= x1 and y2 >= y1")
    target = np.floor(F32(args["roi_canonical_level"])
                      + np.log2(np.sqrt(areas) / F32(args["roi_canonical_scale"]) + F32(1e-6)))
    return np.clip(target, args["roi_min_level"], args["roi_max_level"])


def _distribute(rois: np.ndarray, args: dict) -> list:
    """The rois of each RoI level, then rois_idx_restore (int32)."""
    levels = _levels(rois, args)
    outputs, order = [], []
    for level in range(args["roi_min_level"], args["roi_max_level"] + 1):
        rows = np.flatnonzero(levels == level)
        outputs.append(rois[rows])
        order.append(rows)
    restore = np.argsort(np.concatenate(order), kind="stable") if len(rois) else np.zeros(0, np.int64)
    return [*outputs, restore.astype(np.int32)]


@register_cpu("CollectAndDistributeFpnRpnProposals")
def collect_and_distribute(*inputs, num_outputs, roi_canonical_scale, roi_canonical_level, roi_max_level,
                           roi_min_level, rpn_max_level, rpn_min_level, rpn_post_nms_topN, legacy_plus_one):
    args = {"roi_canonical_scale": roi_canonical_scale, "roi_canonical_level": roi_canonical_level,
            "roi_max_level": roi_max_level, "roi_min_level": roi_min_level, "rpn_max_level": rpn_max_level,
            "rpn_min_level": rpn_min_level, "rpn_post_nms_topN": rpn_post_nms_topN,
            "legacy_plus_one": legacy_plus_one}
    check_distribute_outputs(args, num_outputs, 2)
    rois = _collect(list(inputs), args)
    return (rois, *_distribute(rois, args))


@register_cpu("CollectRpnProposals")
def collect_rpn_proposals(*inputs, rpn_max_level, rpn_min_level, rpn_post_nms_topN):
    return _collect(list(inputs), {"rpn_max_level": rpn_max_level, "rpn_min_level": rpn_min_level,
                                   "rpn_post_nms_topN": rpn_post_nms_topN})


@register_cpu("DistributeFpnProposals")
def distribute_fpn_proposals(rois, *, num_outputs, roi_canonical_scale, roi_canonical_level, roi_max_level,
                             roi_min_level, legacy_plus_one):
    args = {"roi_canonical_scale": roi_canonical_scale, "roi_canonical_level": roi_canonical_level,
            "roi_max_level": roi_max_level, "roi_min_level": roi_min_level, "legacy_plus_one": legacy_plus_one}
    check_distribute_outputs(args, num_outputs, 1)
    check_rois(rois.shape)
    padded = np.zeros((len(rois), 5), F32)
    padded[:, 5 - rois.shape[1]:] = rois
    return tuple(_distribute(padded, args))
