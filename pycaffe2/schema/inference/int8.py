"""Inference rules of the int8 family (Caffe2's quantized fills, Quantize, Dequantize,
Int8Conv, Int8ConvTranspose, Int8FC, Int8Add/Sum) and the checks its kernels call.

An Int8 blob shows as its data: TensorInfo(shape, "uint8") (int32 for the biases of
Int8GivenIntTensorFill); its scale and zero point are values, known at run time only.
The window of the convolutions is conv's; FC's sizes are linalg's.
"""
from __future__ import annotations

import math

from pycaffe2.files import check_alloc
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape, shape_of
from pycaffe2.schema.inference.conv import conv_window, image_shape
from pycaffe2.schema.inference.linalg import fc_output_shape, fc_sizes, matrix

UINT8 = "uint8"


def check_blob_size(shape, name: str = "Y") -> None:
    """A uint8 output that args or fed shapes make too large is refused before it is made."""
    check_alloc(shape, "uint8", name)


def check_values(count: int, shape) -> None:
    """A given fill's values must fill `shape` exactly."""
    if count != math.prod(shape):
        raise ShapeError(f"values hold {count} elements but shape {list(shape)} needs "
                         f"{math.prod(shape)}")


def check_codes(dtype: str, name: str) -> None:
    """Activations and weights of the Int8 ops are uint8 codes."""
    if dtype != UINT8:
        raise ShapeError(f"{name} holds {dtype} data but the Int8 ops take uint8 codes")


def check_bias(bias_shape, m: int) -> None:
    if math.prod(bias_shape) != m:
        raise ShapeError(f"bias is {list(bias_shape)} but the filter gives {m} output channels")


def check_one_value(shape, name: str) -> None:
    if math.prod(shape) != 1:
        raise ShapeError(f"{name} is {list(shape)} but must hold one value")


def conv_geometry(args: dict, x_shape, w_shape, transposed: bool):
    """(window, M) of Int8Conv / Int8ConvTranspose (2-D images only, as QNNPACK)."""
    if len(x_shape) != 4:
        raise ShapeError(f"X {list(x_shape)} must be a 4-D image (2 spatial dims)")
    return conv_window({"group": 1, **args}, x_shape, w_shape, transposed)


@rule("int8_given_fill")
def given_fill(op: OpView, inputs: list) -> list:
    """Int8GivenTensorFill (uint8, one byte per value) and Int8GivenIntTensorFill (int32)."""
    shape = tuple(op.arg("shape"))
    values = op.arg("values")
    if values is not None:
        check_values(len(values), shape)
    return [TensorInfo(shape, UINT8 if op.type == "Int8GivenTensorFill" else "int32")]


@rule("int8_quantize")
def quantize(op: OpView, inputs: list) -> list:
    for info, name in zip(inputs[1:], ("Scale qparam", "Zero-point qparam")):
        if info is not None:
            check_one_value(info.shape, name)
    x = inputs[0]
    return [None if x is None else TensorInfo(x.shape, UINT8)]


@rule("int8_dequantize")
def dequantize(op: OpView, inputs: list) -> list:
    x = inputs[0]
    return [None if x is None else TensorInfo(x.shape, "float32")]


def _conv(op: OpView, inputs: list, transposed: bool) -> list:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    if x is None or w is None:
        return [None]
    check_codes(w.dtype, "filter")
    g, m = conv_geometry(op.args, x.shape, w.shape, transposed)
    if bias is not None:
        check_bias(bias.shape, m)
    return [TensorInfo(image_shape(x.shape[0], m, g.out, op.arg("order")), UINT8)]


@rule("int8_conv")
def conv(op: OpView, inputs: list) -> list:
    return _conv(op, inputs, transposed=False)


@rule("int8_conv_transpose")
def conv_transpose(op: OpView, inputs: list) -> list:
    return _conv(op, inputs, transposed=True)


def fc_geometry(x_shape, w_shape, b_shape, axis: int, axis_w: int) -> tuple[int, int, int]:
    """(M, K, N) of Int8FC, the bias checked."""
    m, k, n = fc_sizes(x_shape, w_shape, axis, axis_w, False)
    if b_shape is not None and math.prod(b_shape) != n:
        raise ShapeError(f"b is {list(b_shape)} but W {list(w_shape)} gives N = {n}")
    return m, k, n


@rule("int8_fc")
def fc(op: OpView, inputs: list) -> list:
    x, w, b = inputs
    if x is not None:
        matrix(x.shape, op.arg("axis"), "X", "axis")
    if x is None or w is None:
        return [None]
    check_codes(w.dtype, "W")
    _, _, n = fc_geometry(x.shape, w.shape, shape_of(b), op.arg("axis"), op.arg("axis_w"))
    dtype = "float32" if op.arg("dequantize_output") else UINT8
    return [TensorInfo(fc_output_shape(x.shape, op.arg("axis"), n), dtype)]


@rule("int8_add")
def add(op: OpView, inputs: list) -> list:
    a, b = inputs
    same_shape(shape_of(a), shape_of(b), ("A", "B"))
    known = a or b
    for info, name in ((a, "A"), (b, "B")):
        if info is not None:
            check_codes(info.dtype, name)
    return [None if known is None else TensorInfo(known.shape, UINT8)]
