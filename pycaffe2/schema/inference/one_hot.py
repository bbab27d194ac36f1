"""Inference rules of the one_hot family (OneHot, SegmentOneHot, BatchOneHot,
BatchBucketOneHot), and the checks its kernels share with them. OneHot's and
SegmentOneHot's width is a value (index_size_tensor): unknown here.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.segment import INDEX_TYPES, index_vector


def index_size_input(shape, dtype) -> None:
    if math.prod(shape) != 1 or str(dtype) not in INDEX_TYPES:
        raise ShapeError(f"index_size_tensor must hold one int32 or int64, got {list(shape)} {dtype}")


def batch_inputs(data, lengths, lengths_dtype, table, table_name: str) -> None:
    """data [N, D...], lengths int32 [D], and the table of values or boundaries."""
    if len(data) < 1:
        raise ShapeError(f"data must have rank >= 1, got {list(data)}")
    columns = math.prod(data[1:])
    if len(lengths) != 1 or lengths[0] != columns or str(lengths_dtype) not in INDEX_TYPES:
        raise ShapeError(f"lengths must be a 1-D int32 tensor of data's {columns} columns, "
                         f"got {list(lengths)} {lengths_dtype}")
    if table is not None and len(table) != 1:
        raise ShapeError(f"{table_name} must be 1-D, got {list(table)}")


def float_data(dtype) -> None:
    if str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"data must be float, got {dtype}")


@rule("one_hot_one_hot")
def one_hot(op: OpView, inputs: list) -> list:
    indices, size = inputs
    if indices is not None:
        index_vector("indices", indices.shape, indices.dtype)
    if size is not None:
        index_size_input(size.shape, size.dtype)
    return [None]


@rule("one_hot_segment_one_hot")
def segment_one_hot(op: OpView, inputs: list) -> list:
    for name, info in zip(("lengths", "indices"), inputs):
        if info is not None:
            index_vector(name, info.shape, info.dtype)
    if inputs[2] is not None:
        index_size_input(inputs[2].shape, inputs[2].dtype)
    return [None]


@rule("one_hot_batch_one_hot")
def batch_one_hot(op: OpView, inputs: list) -> list:
    """[N, len(values)] of data's type."""
    data, lengths, values = inputs
    if data is None or lengths is None or values is None:
        return [None]
    batch_inputs(data.shape, lengths.shape, lengths.dtype, values.shape, "values")
    return [TensorInfo((data.shape[0], values.shape[0]), data.dtype)]


@rule("one_hot_batch_bucket_one_hot")
def batch_bucket_one_hot(op: OpView, inputs: list) -> list:
    """float [N, len(boundaries) + D]."""
    data, lengths, boundaries = inputs
    if data is None or lengths is None or boundaries is None:
        return [None]
    batch_inputs(data.shape, lengths.shape, lengths.dtype, boundaries.shape, "boundaries")
    float_data(data.dtype)
    return [TensorInfo((data.shape[0], boundaries.shape[0] + lengths.shape[0]), "float32")]
