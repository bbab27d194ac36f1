"""Inference rules of the segment family (Unique, UnsortedSegmentSum/Mean and
their gradients). An output whose length depends on the values (Unique's, a
segment reduction's without num_segments) is unknown here.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

INDEX_TYPES = ("int32", "int64")


def index_vector(name: str, shape, dtype, types=INDEX_TYPES) -> None:
    """Raise unless input `name` is a 1-D tensor of one of `types` (int32 or int64 unless
    given): the check of every lengths, ids and indices vector."""
    if len(shape) != 1 or str(dtype) not in types:
        raise ShapeError(f"{name} must be a 1-D {' or '.join(types)} tensor, got {list(shape)} {dtype}")


def segments(data_shape, ids_shape, ids_dtype, num_segments: int) -> None:
    """Raise unless SEGMENT_IDS gives one id per slice of DATA, and num_segments is -1 or >= 0."""
    index_vector("SEGMENT_IDS", ids_shape, ids_dtype)
    if len(data_shape) < 1 or data_shape[0] != ids_shape[0]:
        raise ShapeError(f"SEGMENT_IDS {list(ids_shape)} must hold one id per slice of DATA {list(data_shape)}")
    if num_segments < -1:
        raise ShapeError(f"num_segments must be -1 or >= 0, got {num_segments}")


@rule("segment_unique")
def unique(op: OpView, inputs: list) -> list:
    (indices,) = inputs
    if indices is None:
        return [None] * op.n_outputs
    index_vector("indices", indices.shape, indices.dtype)
    first = TensorInfo(indices.shape, indices.dtype) if indices.shape[0] <= 1 else None
    return [first, TensorInfo(indices.shape, "int32")][:op.n_outputs]


@rule("segment_unsorted")
def unsorted(op: OpView, inputs: list) -> list:
    data, ids = inputs
    num_segments = op.arg("num_segments")
    if data is None or ids is None:
        return [None]
    segments(data.shape, ids.shape, ids.dtype, num_segments)
    return [TensorInfo((num_segments, *data.shape[1:]), data.dtype) if num_segments >= 0 else None]


@rule("segment_unsorted_gradient")
def unsorted_gradient(op: OpView, inputs: list) -> list:
    grad, ids = inputs
    if grad is None or ids is None:
        return [None]
    index_vector("SEGMENT_IDS", ids.shape, ids.dtype)
    if len(grad.shape) < 1:
        raise ShapeError(f"dOUTPUT must have rank >= 1, got {list(grad.shape)}")
    return [TensorInfo((ids.shape[0], *grad.shape[1:]), grad.dtype)]
