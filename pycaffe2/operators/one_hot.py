"""NumPy kernels of the one_hot family: OneHot, SegmentOneHot, BatchOneHot and
BatchBucketOneHot. Shape checks are the schema's (schema/inference/one_hot.py);
the checks that need values (indices in range, lengths summing up) are here.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.lengths_util import check_lengths
from pycaffe2.schema.inference.one_hot import (
    batch_inputs,
    float_data,
    index_size_input,
    one_hot_axis,
    one_hot_inputs,
)
from pycaffe2.schema.inference.segment import index_vector

MAX_ELEMENTS = 2**31 - 1  # Caffe2 sizes these with int64 but a float output this large is a bad file


def _index_size(tensor, rows: int, least: int) -> int:
    index_size_input(tensor.shape, tensor.dtype.name)
    size = int(tensor.reshape(()))
    if size < least or rows * size > MAX_ELEMENTS:
        raise ValueError(f"index_size {size} must be >= {least} and give at most {MAX_ELEMENTS} "
                         f"output elements ({rows} rows)")
    return size


def _in_range(indices, size: int):
    check_in_range(indices, size)
    return indices


def _onnx_size(tensor) -> int:
    value = tensor.reshape(())
    if not np.isfinite(value):
        raise ValueError(f"index_size must be a finite number, got {value}")
    size = int(value)  # ONNX casts a float depth to an int
    if size < 1:
        raise ValueError(f"index_size {size} must be >= 1")
    return size


@register_cpu("OneHot")
def one_hot(indices, index_size_tensor, values=None, *, axis, index_rules):
    one_hot_inputs(indices.shape, indices.dtype.name, index_size_tensor.shape, index_size_tensor.dtype.name,
                   None if values is None else values.shape, index_rules)
    axis = one_hot_axis(indices.ndim, axis)
    if index_rules == "caffe2":
        size = _index_size(index_size_tensor, indices.shape[0], 0)
        columns = _in_range(indices, size)
    else:
        size = _onnx_size(index_size_tensor)
        columns = indices.astype(np.int64)
        columns = np.where(columns < 0, columns + size, columns)  # out of range: matches no column
    check_alloc(indices.shape + (size,), np.float32 if values is None else values.dtype, "the one-hot output")
    hot = columns[..., None] == np.arange(size)  # the one-hot dim last, then moved to axis
    hot = np.moveaxis(hot, -1, axis)
    if values is None:
        return hot.astype(np.float32)
    return np.where(hot, values[1], values[0]).astype(values.dtype)


@register_cpu("SegmentOneHot")
def segment_one_hot(lengths, indices, index_size_tensor):
    index_vector("lengths", lengths.shape, lengths.dtype.name)
    index_vector("indices", indices.shape, indices.dtype.name)
    size = _index_size(index_size_tensor, lengths.shape[0], 1)
    if lengths.size and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0, got {int(lengths.min())}")
    total = int(lengths.sum(dtype=np.int64))
    if total > indices.shape[0]:
        raise ValueError(f"lengths sum to {total} but there are {indices.shape[0]} indices")
    out = np.zeros((lengths.shape[0], size), np.float32)
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    out[rows, _in_range(indices[:total], size)] = 1
    return out


def _columns(data, lengths, table, table_name):
    """data as [N, D] and lengths as int64, checked against the table's size."""
    batch_inputs(data.shape, lengths.shape, lengths.dtype.name, table.shape, table_name)
    lengths = check_lengths(lengths, total=table.shape[0], what=table_name)
    return data.reshape(data.shape[0], lengths.shape[0]), lengths


@register_cpu("BatchOneHot")
def batch_one_hot(data, lengths, values):
    rows, lengths = _columns(data, lengths, values, "values")
    column = np.repeat(np.arange(lengths.shape[0]), lengths)  # the data column of each output column
    return (rows[:, column] == values.astype(data.dtype)[None, :]).astype(data.dtype)


@register_cpu("BatchBucketOneHot")
def batch_bucket_one_hot(data, lengths, boundaries):
    float_data(data.dtype.name)
    rows, lengths = _columns(data, lengths, boundaries, "boundaries")
    if lengths.size and int(lengths.min()) < 1:
        raise ValueError(f"every column needs a boundary: lengths must be > 0, got {int(lengths.min())}")
    out = np.zeros((rows.shape[0], int(lengths.sum()) + lengths.shape[0]), np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for j in range(lengths.shape[0]):  # a loop over the columns, each bucketized at once
        edges = boundaries[starts[j]:starts[j + 1]]
        low = np.searchsorted(edges, rows[:, j], side="left")
        high = np.searchsorted(edges, rows[:, j], side="right")
        out[np.arange(rows.shape[0]), starts[j] + j + (low + high) // 2] = 1
    return out
