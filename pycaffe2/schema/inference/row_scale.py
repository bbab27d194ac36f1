"""Inference rules of the row_scale family (RowMul, ReduceTailSum,
SquareRootDivide), and the checks its kernels share with them.

The scaled tensor is N rows split after its first dim (it must have one); the
per-row factors hold N elements (SquareRootDivide's scale has N as its first
dim, as Caffe2 compares, and the first N values count).
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

SCALE_TYPES = ("float32", "float64", "int32", "int64")


def row_count(shape, name: str) -> int:
    """N of a tensor of rows: its first dim (it needs one)."""
    if not shape:
        raise ShapeError(f"{name} must have a first dim of rows, got a 0-d tensor")
    return shape[0]


def float_rows(info, name: str) -> None:
    if info is not None and not info.dtype.startswith("float"):
        raise ShapeError(f"{name} must be float, got {info.dtype}")


def row_factors(mat_shape, w_shape) -> None:
    """RowMul: w holds one factor per row of mat."""
    n = row_count(mat_shape, "mat")
    if math.prod(w_shape) != n:
        raise ShapeError(f"mat has N={n} rows but w is {list(w_shape)}: w must hold {n} elements")


def row_scales(data_shape, scale_shape, scale_dtype) -> None:
    """SquareRootDivide: scale is [N, ...], float, int32 or int64."""
    n = row_count(data_shape, "data")
    if scale_dtype is not None and scale_dtype not in SCALE_TYPES:
        raise ShapeError(f"scale must be float, int32 or int64, got {scale_dtype}")
    if scale_shape is not None and (not scale_shape or scale_shape[0] != n):
        raise ShapeError(f"data has N={n} rows but scale is {list(scale_shape)}: scale's first dim "
                         f"must be {n}")


@rule("row_scale_row_mul")
def row_mul(op: OpView, inputs: list) -> list:
    mat, w = inputs
    float_rows(mat, "mat")
    if mat is not None and w is not None:
        row_factors(mat.shape, w.shape)
    return [mat]


@rule("row_scale_reduce_tail_sum")
def reduce_tail_sum(op: OpView, inputs: list) -> list:
    (mat,) = inputs
    float_rows(mat, "mat")
    return [None if mat is None else TensorInfo((row_count(mat.shape, "mat"),), mat.dtype)]


@rule("row_scale_square_root_divide")
def square_root_divide(op: OpView, inputs: list) -> list:
    data, scale = inputs
    float_rows(data, "data")
    if data is not None:
        row_scales(data.shape, None if scale is None else scale.shape, None if scale is None else scale.dtype)
    return [data]
