"""Inference rules of the int8_nn family (Int8 pooling and activations) and the checks
its kernels call. The window is conv's; Int8 blobs show as their uint8 data."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.int8 import UINT8, check_blob_size
from pycaffe2.schema.inference.pooling import pooled

PROBABILITY_SCALE = 1.0 / 256


def pool_geometry(args: dict, x_shape):
    """(window, Y's shape) of an Int8 pooling op (2-D images, as QNNPACK)."""
    if len(x_shape) != 4:
        raise ShapeError(f"X {list(x_shape)} must be a 4-D image (2 spatial dims)")
    return pooled(args, x_shape)


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ShapeError(f"alpha is {alpha} but must be in (0, 1)")


def check_probability_output(scale: float, zero_point: int) -> None:
    """QNNPACK's Sigmoid and SoftArgMax write only codes of scale 1/256, zero point 0."""
    if abs(scale - PROBABILITY_SCALE) > 1e-12 or zero_point != 0:
        raise ShapeError(f"Y_scale {scale} and Y_zero_point {zero_point}: QNNPACK takes only "
                         "1/256 and 0 for this op")


def check_softmax_input(x_shape) -> None:
    """Int8Softmax normalizes each X[n] as one row: X needs a batch dim."""
    if len(x_shape) < 1:
        raise ShapeError("X is a scalar but Int8Softmax needs a batch dim")


@rule("int8_nn_pool")
def pool(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None]
    return [TensorInfo(pool_geometry(op.args, x.shape)[1], UINT8)]


@rule("int8_nn_elementwise")
def elementwise(op: OpView, inputs: list) -> list:
    if op.type == "Int8LeakyRelu":
        check_alpha(op.arg("alpha"))
    if op.type in ("Int8Sigmoid", "Int8Softmax"):
        check_probability_output(op.arg("Y_scale"), op.arg("Y_zero_point"))
    x = inputs[0]
    if x is not None and op.type == "Int8Softmax":
        check_softmax_input(x.shape)
    return [None if x is None else TensorInfo(x.shape, UINT8)]


def roi_align_shape(x_shape, rois_shape, pooled_h: int, pooled_w: int) -> tuple:
    """Y [R, pooled_h, pooled_w, C] of Int8RoIAlign, X and RoIs checked."""
    if len(x_shape) != 4:
        raise ShapeError(f"X {list(x_shape)} must be an NHWC feature map [N, H, W, C]")
    if len(rois_shape) != 2 or rois_shape[1] not in (4, 5):
        raise ShapeError(f"RoIs {list(rois_shape)} must be [R, 4] or [R, 5]")
    shape = (rois_shape[0], pooled_h, pooled_w, x_shape[3])
    check_blob_size(shape)
    return shape


@rule("int8_nn_roi_align")
def roi_align(op: OpView, inputs: list) -> list:
    x, rois = inputs
    if x is None or rois is None:
        return [None]
    return [TensorInfo(roi_align_shape(x.shape, rois.shape, op.arg("pooled_h"), op.arg("pooled_w")), UINT8)]
