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


NUMERIC_KINDS = ("int", "uint", "float")


def one_hot_inputs(indices, indices_dtype, size, size_dtype, values, index_rules: str) -> None:
    """OneHot's inputs: Caffe2's 1-D int indices and int size, or ONNX's numeric ones;
    values holds [off, on]."""
    if index_rules == "caffe2":
        index_vector("indices", indices, indices_dtype)
        index_size_input(size, size_dtype)
    else:
        if not str(indices_dtype).startswith(NUMERIC_KINDS):
            raise ShapeError(f"indices must be numeric, got {indices_dtype}")
        if math.prod(size) != 1 or not str(size_dtype).startswith(NUMERIC_KINDS):
            raise ShapeError(f"index_size_tensor must hold one number, got {list(size)} {size_dtype}")
    if values is not None and tuple(values) != (2,):
        raise ShapeError(f"values must hold [off, on], got {list(values)}")


def one_hot_axis(rank: int, axis: int) -> int:
    """Where the one-hot dim goes among the output's rank + 1 dims."""
    if not -rank - 1 <= axis <= rank:
        raise ShapeError(f"axis {axis} is out of range for indices of rank {rank} (output rank {rank + 1})")
    return axis % (rank + 1)


@rule("one_hot_one_hot")
def one_hot(op: OpView, inputs: list) -> list:
    """OneHot: the size is a value (unknown)."""
    indices, size = inputs[0], inputs[1]
    values = inputs[2] if len(inputs) > 2 else None
    if indices is not None and size is not None:
        one_hot_inputs(indices.shape, indices.dtype, size.shape, size.dtype,
                       None if values is None else values.shape, op.arg("index_rules"))
    if indices is not None:
        one_hot_axis(len(indices.shape), op.arg("axis"))
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
