"""Inference rules of GenerateProposals and the FPN proposal ops, and the checks their
kernels call. Their outputs' lengths depend on the values (NMS, levels), so the rules
check shapes and counts and leave those outputs unknown."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.detection_boxes import check_angle_bounds


def generate_proposals_shapes(s_shape, d_shape, i_shape, a_shape) -> int:
    """Check GenerateProposals' inputs; returns the box size (4 upright, 5 rotated)."""
    if len(s_shape) != 4:
        raise ShapeError(f"scores is {list(s_shape)} but must be [N, A, H, W]")
    n, a, h, w = s_shape
    if len(a_shape) != 2 or a_shape[0] != a or a_shape[1] not in (4, 5):
        raise ShapeError(f"anchors is {list(a_shape)} but must be [{a}, 4] (or [{a}, 5] rotated) for scores "
                         f"{list(s_shape)}")
    box_dim = int(a_shape[1])
    if tuple(d_shape) != (n, box_dim * a, h, w):
        raise ShapeError(f"bbox_deltas is {list(d_shape)} but must be {[n, box_dim * a, h, w]} for scores "
                         f"{list(s_shape)} and anchors {list(a_shape)}")
    if tuple(i_shape) != (n, 3):
        raise ShapeError(f"im_info is {list(i_shape)} but must be [{n}, 3]")
    return box_dim


def level_count(args: dict, first: str, last: str) -> int:
    count = args[last] - args[first] + 1
    if count < 1:
        raise ShapeError(f"{last} {args[last]} must be >= {first} {args[first]}")
    return count


def check_collect_inputs(args: dict, n_inputs: int) -> int:
    levels = level_count(args, "rpn_min_level", "rpn_max_level")
    if n_inputs != 2 * levels:
        raise ShapeError(f"{n_inputs} inputs but RPN levels {args['rpn_min_level']}..{args['rpn_max_level']} "
                         f"need {2 * levels}: each level's rois, then each level's scores")
    return levels


def check_distribute_outputs(args: dict, n_outputs: int, extra: int) -> int:
    levels = level_count(args, "roi_min_level", "roi_max_level")
    if n_outputs != levels + extra:
        raise ShapeError(f"{n_outputs} outputs but RoI levels {args['roi_min_level']}..{args['roi_max_level']} "
                         f"need {levels + extra}")
    return levels


def check_level_inputs(r_shapes: list, s_shapes: list) -> None:
    """Each RPN level's rois [R, 5] and scores [R] (or [R, 1])."""
    for level, (r, s) in enumerate(zip(r_shapes, s_shapes)):
        if r is not None and (len(r) != 2 or r[1] != 5):
            raise ShapeError(f"rois of RPN level input {level} is {list(r)} but must be [R, 5]")
        if r is not None and s is not None and (s[0] != r[0] or len(s) > 2 or (len(s) == 2 and s[1] != 1)):
            raise ShapeError(f"scores of RPN level input {level} is {list(s)} but must be [{r[0]}] for rois {list(r)}")


def check_rois(r_shape, columns=(4, 5)) -> None:
    if len(r_shape) != 2 or r_shape[1] not in columns:
        raise ShapeError(f"rois is {list(r_shape)} but must be [R, {' or '.join(map(str, columns))}]")


@rule("detection_generate_proposals")
def generate_proposals(op: OpView, inputs: list) -> list:
    if all(info is not None for info in inputs):
        box_dim = generate_proposals_shapes(*(info.shape for info in inputs))
        check_angle_bounds(op.args, box_dim == 5)
    return [None, None]


@rule("detection_collect_and_distribute")
def collect_and_distribute(op: OpView, inputs: list) -> list:
    levels = check_collect_inputs(op.args, op.n_inputs)
    check_distribute_outputs(op.args, op.n_outputs, 2)
    shapes = [None if info is None else info.shape for info in inputs]
    check_level_inputs(shapes[:levels], shapes[levels:])
    return [None] * op.n_outputs


@rule("detection_collect_rpn")
def collect_rpn(op: OpView, inputs: list) -> list:
    levels = check_collect_inputs(op.args, op.n_inputs)
    shapes = [None if info is None else info.shape for info in inputs]
    check_level_inputs(shapes[:levels], shapes[levels:])
    return [None]


@rule("detection_distribute_fpn")
def distribute_fpn(op: OpView, inputs: list) -> list:
    check_distribute_outputs(op.args, op.n_outputs, 1)
    if inputs[0] is not None:
        check_rois(inputs[0].shape)
        return [None] * (op.n_outputs - 1) + [TensorInfo((inputs[0].shape[0],), "int32")]
    return [None] * op.n_outputs
