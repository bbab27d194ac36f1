"""Inference rules of the RoI detection ops (RoIAlign, RoIPool, BatchPermutation and their
gradient ops), and the checks their kernels call: shapes here, and the checks on RoI
values (batch indices in range, finite coordinates, a bounded sampling grid) that only a
kernel can run but that should read the same on every device.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.files import max_blob_bytes
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

# RoIAlign's adaptive grid takes ceil(RoI size / pooled size) samples per bin along each
# axis: a RoI of absurd size (a corrupt file) would sample without end. Real RoIs on a
# feature map sample far fewer points than this.
MAX_SAMPLES_PER_ROI = 1 << 24


def check_feature_map(x_shape) -> None:
    if len(x_shape) != 4:
        raise ShapeError(f"X is {list(x_shape)} but must be a 4-D feature map")


def roi_count(r_shape, columns: tuple, name: str = "RoIs") -> int:
    """R of RoIs [R, k] with k among `columns` (an empty RoIs of any shape is R = 0)."""
    if 0 in tuple(r_shape) and len(r_shape) <= 2:
        return 0
    if len(r_shape) != 2 or r_shape[1] not in columns:
        wanted = " or ".join(str(c) for c in columns)
        raise ShapeError(f"{name} is {list(r_shape)} but must be [R, {wanted}]")
    return int(r_shape[0])


def channels(x_shape, order: str) -> int:
    return int(x_shape[1] if order == "NCHW" else x_shape[3])


def pooled_shape(args: dict, x_shape, rois: int) -> tuple:
    c = channels(x_shape, args["order"])
    ph, pw = args["pooled_h"], args["pooled_w"]
    return (rois, c, ph, pw) if args["order"] == "NCHW" else (rois, ph, pw, c)


def roi_output_shape(args: dict, x_shape, r_shape, columns=(4, 5), name="RoIs") -> tuple:
    """Y's shape for feature map X and RoIs, checking both (and that Y fits the blob size cap,
    which absurd pooled sizes would break before any kernel allocates it)."""
    check_feature_map(x_shape)
    shape = pooled_shape(args, x_shape, roi_count(r_shape, columns, name))
    if math.prod(shape) * 4 > max_blob_bytes() or args["pooled_h"] * args["pooled_w"] > MAX_SAMPLES_PER_ROI:
        raise ShapeError(f"Y would be {list(shape)}: pooled_h {args['pooled_h']} x pooled_w {args['pooled_w']} "
                         "is too large")
    return shape


def check_gradient_shape(dy_shape, expected) -> None:
    if tuple(dy_shape) != tuple(expected):
        raise ShapeError(f"dY is {list(dy_shape)} but the forward op's Y is {list(expected)}")


def check_batch_indices(batch: np.ndarray, images: int, name: str = "RoIs") -> None:
    """Column 0 of RoIs names an image of X: an integer-valued 0 <= b < N."""
    bad = ~np.isfinite(batch) | (batch < 0) | (batch >= images) | (batch != np.floor(batch))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ShapeError(f"{name} row {row} has batch index {batch[row]} but X holds {images} image(s)")


def check_finite(values: np.ndarray, name: str = "RoIs") -> None:
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=-1))[0])
        raise ShapeError(f"{name} row {row} holds a non-finite coordinate")


def check_sampling_grid(grid_h: np.ndarray, grid_w: np.ndarray, args: dict) -> None:
    """Refuse RoIs whose adaptive sampling grid would be unbounded."""
    samples = grid_h.astype(np.float64) * grid_w * args["pooled_h"] * args["pooled_w"]
    if samples.size and samples.max() > MAX_SAMPLES_PER_ROI:
        row = int(np.argmax(samples))
        raise ShapeError(f"RoI row {row} would take {int(samples[row])} bilinear samples (more than "
                         f"{MAX_SAMPLES_PER_ROI}): its size is absurd for X; give sampling_ratio > 0")


def check_int_indices(dtype: str, name: str = "indices") -> None:
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise ShapeError(f"{name} is {dtype} but must be int32 or int64")


def check_permutation_shapes(x_shape, i_shape) -> None:
    if len(x_shape) < 1:
        raise ShapeError("X is a scalar but BatchPermutation reorders its first axis")
    if len(i_shape) != 1 or i_shape[0] != x_shape[0]:
        raise ShapeError(f"indices is {list(i_shape)} but must be [{x_shape[0]}], one per row of X "
                         f"{list(x_shape)}")


def check_indices_in_range(indices: np.ndarray, n: int) -> None:
    bad = (indices < 0) | (indices >= n)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ShapeError(f"indices[{at}] is {indices[at]} but must lie in [0, {n})")


def check_average_mode(mode: str, where: str) -> None:
    """RoIAlign's mode max (ONNX's) runs forward on the CPU only."""
    if mode != "avg":
        raise ShapeError(f"mode {mode!r} has no {where} (only mode avg does)")


@rule("detection_roi_align")
def roi_align(op: OpView, inputs: list) -> list:
    x, r = inputs
    if x is None or r is None:
        if x is not None:
            check_feature_map(x.shape)
        return [None]
    return [TensorInfo(roi_output_shape(op.args, x.shape, r.shape), x.dtype)]


@rule("detection_roi_align_gradient")
def roi_align_gradient(op: OpView, inputs: list) -> list:
    x, r, dy = inputs
    check_average_mode(op.args.get("mode") or "avg", "gradient")
    if x is None:
        return [None]
    if r is not None:
        expected = roi_output_shape(op.args, x.shape, r.shape)
        if dy is not None:
            check_gradient_shape(dy.shape, expected)
    return [TensorInfo(x.shape, dy.dtype if dy is not None else x.dtype)]


@rule("detection_roi_align_rotated")
def roi_align_rotated(op: OpView, inputs: list) -> list:
    x, r = inputs
    if x is None or r is None:
        return [None]
    return [TensorInfo(roi_output_shape(op.args, x.shape, r.shape, (5, 6)), x.dtype)]


@rule("detection_roi_align_rotated_gradient")
def roi_align_rotated_gradient(op: OpView, inputs: list) -> list:
    x, r, dy = inputs
    if x is None:
        return [None]
    if r is not None and dy is not None:
        check_gradient_shape(dy.shape, roi_output_shape(op.args, x.shape, r.shape, (5, 6)))
    return [TensorInfo(x.shape, dy.dtype if dy is not None else x.dtype)]


@rule("detection_roi_pool")
def roi_pool(op: OpView, inputs: list) -> list:
    x, r = inputs
    if x is None or r is None:
        return [None] * op.n_outputs
    shape = roi_output_shape(op.args, x.shape, r.shape, (5,), "rois")
    return [TensorInfo(shape, x.dtype), TensorInfo(shape, "int32")][:op.n_outputs]


@rule("detection_roi_pool_gradient")
def roi_pool_gradient(op: OpView, inputs: list) -> list:
    x, r, argmaxes, dy = inputs
    if x is None:
        return [None]
    if r is not None:
        expected = roi_output_shape(op.args, x.shape, r.shape, (5,), "rois")
        for name, info in (("argmaxes", argmaxes), ("dY", dy)):
            if info is not None and tuple(info.shape) != expected:
                raise ShapeError(f"{name} is {list(info.shape)} but the forward op's Y is {list(expected)}")
    return [TensorInfo(x.shape, dy.dtype if dy is not None else x.dtype)]


@rule("detection_batch_permutation")
def batch_permutation(op: OpView, inputs: list) -> list:
    x, indices = inputs
    if indices is not None:
        check_int_indices(indices.dtype)
    if x is not None and indices is not None:
        check_permutation_shapes(x.shape, indices.shape)
    return [x]


@rule("detection_batch_permutation_gradient")
def batch_permutation_gradient(op: OpView, inputs: list) -> list:
    indices, dy = inputs
    if indices is not None:
        check_int_indices(indices.dtype)
    if indices is not None and dy is not None:
        check_permutation_shapes(dy.shape, indices.shape)
    return [dy]
