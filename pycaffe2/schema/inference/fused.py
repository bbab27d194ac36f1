"""Inference rule of the fused family's FbFCPacked (ConvRelu uses conv's rule): FC's
shapes with a float16 or float32 weight and a float32 X."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.linalg import check_fc_bias, fc_output_shape, fc_sizes, fc_weights, matrix

WEIGHT_TYPES = ("float16", "float32")


def check_packed_types(x_dtype, w_dtype) -> None:
    if x_dtype is not None and str(x_dtype) != "float32":
        raise ShapeError(f"X is {x_dtype} but FbFCPacked takes float32 X")
    if w_dtype is not None and str(w_dtype) not in WEIGHT_TYPES:
        raise ShapeError(f"W is {w_dtype} but FbFCPacked takes float16 (or float32) W")


@rule("fused_fb_fc_packed")
def fb_fc_packed(op: OpView, inputs: list) -> list:
    x, w, b = inputs
    check_packed_types(None if x is None else x.dtype, None if w is None else w.dtype)
    if x is not None:
        matrix(x.shape, op.arg("axis"), "X", "axis")
    if w is None:
        return [None]
    if x is not None:
        _, _, n = fc_sizes(x.shape, w.shape, op.arg("axis"), op.arg("axis_w"), False)
    else:
        _, n = fc_weights(w.shape, op.arg("axis_w"), False)
    if b is not None:
        check_fc_bias(b.shape, w.shape, n)
    return [None if x is None else TensorInfo(fc_output_shape(x.shape, op.arg("axis"), n), "float32")]
