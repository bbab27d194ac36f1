"""Inference rules of the segment_util family: LengthsTopK, FlexibleTopK (and their
gradient ops), LengthsPad, ReversePackedSegs, RemoveDataBlocks, PrependDim and
MergeDim, with the checks the kernels
(operators/segment_util.py) share.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

FLOATS = ("float32", "float64")


def float_vector(name: str, info) -> None:
    if len(info.shape) != 1 or info.dtype not in FLOATS:
        raise ShapeError(f"{name} must be a 1-D float tensor, got {info.describe()}")


def top_k_arg(k: int) -> None:
    if k < 1:
        raise ShapeError(f"k must be >= 1, got {k}")


@rule("segment_util_lengths_top_k")
def lengths_top_k(op: OpView, inputs: list) -> list:
    data, lengths = inputs
    k = op.arg("k")
    top_k_arg(k)
    if data is not None:
        float_vector("DATA", data)
    if lengths is None:
        return [None, None][:op.n_outputs]
    index_vector("LENGTHS", lengths.shape, lengths.dtype)
    dtype = data.dtype if data is not None else "float32"
    return [TensorInfo((lengths.shape[0], k), dtype), TensorInfo((lengths.shape[0], k), "int32")][:op.n_outputs]


def lengths_top_k_gradient_shapes(lengths, indices, d_values, k: int) -> None:
    """LENGTHS 1-D int, TopKIndices int32 and dTopKValue float, both [len(LENGTHS), k]."""
    top_k_arg(k)
    if lengths is not None:
        index_vector("LENGTHS", lengths.shape, lengths.dtype)
    for name, info, types in (("TopKIndices", indices, ("int32", "int64")), ("dTopKValue", d_values, FLOATS)):
        if info is None:
            continue
        if info.dtype not in types:
            raise ShapeError(f"{name} must be {' or '.join(types)}, got {info.describe()}")
        if lengths is not None and tuple(info.shape) != (lengths.shape[0], k):
            raise ShapeError(f"{name} {list(info.shape)} must be [len(LENGTHS), k] = [{lengths.shape[0]}, {k}]")


@rule("segment_util_lengths_top_k_gradient")
def lengths_top_k_gradient(op: OpView, inputs: list) -> list:
    lengths, indices, d_values = inputs
    lengths_top_k_gradient_shapes(lengths, indices, d_values, op.arg("k"))
    return [None]  # sum(LENGTHS) entries


def flexible_top_k_shapes(x, k) -> None:
    """X of rank >= 1, K a 1-D int64 holding one count per row of X (its dims but the last)."""
    if x is not None and (len(x.shape) < 1 or x.dtype not in FLOATS):
        raise ShapeError(f"X must be a float tensor of rank >= 1, got {x.describe()}")
    if k is not None and (k.dtype not in ("int32", "int64") or len(k.shape) < 1):
        raise ShapeError(f"K must be an int64 tensor, got {k.describe()}")
    if x is not None and k is not None:
        rows = math.prod(x.shape[:-1])
        if math.prod(k.shape) != rows:
            raise ShapeError(f"K {list(k.shape)} must hold one count per row of X {list(x.shape)} ({rows})")


@rule("segment_util_flexible_top_k")
def flexible_top_k(op: OpView, inputs: list) -> list:
    flexible_top_k_shapes(*inputs)
    return [None, None][:op.n_outputs]  # sum(K) entries


@rule("segment_util_flexible_top_k_gradient")
def flexible_top_k_gradient(op: OpView, inputs: list) -> list:
    x, k, d_values, indices = inputs
    flexible_top_k_shapes(x, k)
    if d_values is not None:
        float_vector("dValues", d_values)
    if indices is not None:
        index_vector("Indices", indices.shape, indices.dtype)
    if d_values is not None and indices is not None and d_values.shape != indices.shape:
        raise ShapeError(f"dValues {list(d_values.shape)} and Indices {list(indices.shape)} must have the same shape")
    return [None if x is None else TensorInfo(x.shape, x.dtype)]


PAD_TYPES = ("float32", "float64", "int32", "int64")


def lengths_pad_shapes(data, lengths, target_length: int) -> None:
    if target_length < 1:
        raise ShapeError(f"target_length must be >= 1, got {target_length}")
    if data is not None and (len(data.shape) < 1 or data.dtype not in PAD_TYPES):
        raise ShapeError(f"DATA must be a float32/float64/int32/int64 tensor of rank >= 1, got {data.describe()}")
    if lengths is not None:
        index_vector("LENGTHS", lengths.shape, lengths.dtype)


@rule("segment_util_lengths_pad")
def lengths_pad(op: OpView, inputs: list) -> list:
    data, lengths = inputs
    target = op.arg("target_length")
    lengths_pad_shapes(data, lengths, target)
    if data is None or lengths is None:
        return [None]
    return [TensorInfo((lengths.shape[0] * target, *data.shape[1:]), data.dtype)]


def packed_segs_shapes(data, lengths) -> None:
    """DATA [max_length, batch, block], LENGTHS one entry per batch column."""
    if data is not None and len(data.shape) != 3:
        raise ShapeError(f"DATA must be a 3-D [lengths, segments, embeddings] tensor, got {data.describe()}")
    if lengths is not None:
        index_vector("LENGTHS", lengths.shape, lengths.dtype)
        if data is not None and lengths.shape[0] != data.shape[1]:
            raise ShapeError(f"LENGTHS {list(lengths.shape)} must hold one length per segment of DATA "
                             f"{list(data.shape)} (its second dim)")


@rule("segment_util_reverse_packed_segs")
def reverse_packed_segs(op: OpView, inputs: list) -> list:
    data, lengths = inputs
    packed_segs_shapes(data, lengths)
    return [None if data is None else TensorInfo(data.shape, data.dtype)]


def remove_blocks_shapes(data, indices) -> None:
    if data is not None and len(data.shape) < 1:
        raise ShapeError(f"DATA must have rank >= 1, got {data.describe()}")
    if indices is not None and indices.shape[:1] != (0,):
        index_vector("INDICES", indices.shape, indices.dtype)


@rule("segment_util_remove_data_blocks")
def remove_data_blocks(op: OpView, inputs: list) -> list:
    data, indices = inputs
    remove_blocks_shapes(data, indices)
    if data is not None and indices is not None and indices.shape[:1] == (0,):
        return [TensorInfo(data.shape, data.dtype)]
    return [None]  # DATA's rows less the distinct indices


def prepend_dim_shape(shape, dim_size: int) -> tuple:
    if dim_size < 1:
        raise ShapeError(f"dim_size must be >= 1, got {dim_size}")
    if len(shape) < 1 or shape[0] % dim_size:
        raise ShapeError(f"the first dim of data {list(shape)} must be a multiple of dim_size ({dim_size})")
    return (dim_size, shape[0] // dim_size, *shape[1:])


def merge_dim_shape(shape) -> tuple:
    if len(shape) < 2:
        raise ShapeError(f"data must have rank >= 2, got {list(shape)}")
    return (shape[0] * shape[1], *shape[2:])


@rule("segment_util_prepend_dim")
def prepend_dim(op: OpView, inputs: list) -> list:
    (data,) = inputs
    if data is None:
        prepend_dim_shape((op.arg("dim_size"),), op.arg("dim_size"))
        return [None]
    return [TensorInfo(prepend_dim_shape(data.shape, op.arg("dim_size")), data.dtype)]


@rule("segment_util_merge_dim")
def merge_dim(op: OpView, inputs: list) -> list:
    (data,) = inputs
    return [None if data is None else TensorInfo(merge_dim_shape(data.shape), data.dtype)]