"""Inference rules of the rand_quantized family (FloatToFusedRandRowwiseQuantized
and FusedRandRowwiseQuantizedToFloat) and the checks its kernels share. The
decoder's width depends on the header bytes, so it is unknown here."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

HEADER = 10  # bitwidth, tail, min (float32), max (float32)
BITWIDTHS = (1, 2, 4, 8)


def check_bitwidth(bitwidth: int) -> None:
    if bitwidth not in BITWIDTHS:
        raise ShapeError(f"bitwidth must be 1, 2, 4 or 8, got {bitwidth}")


def fused_width(columns: int, bitwidth: int) -> int:
    """10 header bytes + ceil(columns / (8 / bitwidth)) data bytes."""
    per_byte = 8 // bitwidth
    return HEADER + -(-columns // per_byte)


def check_float_matrix(dims, dtype: str) -> None:
    if len(dims) != 2 or dtype != "float32":
        raise ShapeError(f"input must be a float32 matrix [rows, columns], got {list(dims)} {dtype}")


def check_fused(dims, dtype: str) -> None:
    if len(dims) != 2 or dtype != "uint8":
        raise ShapeError(f"quantized_input must be a uint8 matrix, got {list(dims)} {dtype}")
    if dims[0] < 1 or dims[1] < HEADER:
        raise ShapeError(f"quantized_input {list(dims)} needs at least one row of {HEADER} header bytes")


@rule("rand_quantized_quantize")
def quantize(op: OpView, inputs: list) -> list:
    """uint8 [rows, 10 + ceil(columns * bitwidth / 8)]."""
    check_bitwidth(op.arg("bitwidth"))
    x = inputs[0]
    if x is None:
        return [None]
    check_float_matrix(x.shape, x.dtype)
    return [TensorInfo((x.shape[0], fused_width(x.shape[1], op.arg("bitwidth"))), "uint8")]


@rule("rand_quantized_dequantize")
def dequantize(op: OpView, inputs: list) -> list:
    """float32 [rows, ?]: the width comes from the header bytes."""
    if inputs[0] is not None:
        check_fused(inputs[0].shape, inputs[0].dtype)
    return [None]
