"""Inference rules of the lengths_util family (LengthsTile, LengthsToSegmentIds,
SegmentIdsToLengths/Ranges, LengthsToWeights, LengthsToShape,
LengthsSplit), and the checks on lengths, ids and value-dependent output sizes
that the lengths, pack_segments, sparse_dense and partition families share.

Most outputs here have a length that depends on the values of a lengths or
ids input; the rules check what the shapes and types say and leave those
unknown. A kernel checks the size such values ask for with `files.check_alloc`
before allocating it, so a bad file meets a clear error, not a MemoryError.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

# --- checks shared with the kernels (and the sibling families) --------------------------------

def check_lengths(lengths: np.ndarray, name: str = "lengths", total: int | None = None,
                  what: str = "") -> np.ndarray:
    """A 1-D int32/int64 lengths tensor of values >= 0 (adding up to `total` when
    given), as int64."""
    index_vector(name, lengths.shape, lengths.dtype)
    values = lengths.astype(np.int64)
    if values.size and values.min() < 0:
        raise ShapeError(f"{name} must be >= 0, got {int(values.min())}")
    if values.size and float(values.sum(dtype=np.float64)) >= 2.0**62:  # before the int64 sum wraps
        raise ShapeError(f"{name} add up to more than 2**62")
    if total is not None and int(values.sum()) != total:
        raise ShapeError(f"{name} add up to {int(values.sum())}, but {what} has {total}")
    return values


def check_sorted_ids(ids: np.ndarray) -> None:
    """Segment ids must be >= 0 and sorted (Caffe2's SegmentIdsTo* walk them in order)."""
    index_vector("segment_ids", ids.shape, ids.dtype)
    if ids.size and ids[0] < 0:
        raise ShapeError(f"segment ids must be >= 0, got {int(ids[0])}")
    drop = np.flatnonzero(np.diff(ids) < 0)
    if drop.size:
        i = int(drop[0])
        raise ShapeError(f"segment ids must be sorted: {int(ids[i])} vs {int(ids[i + 1])}")


def segment_count(ids: np.ndarray, like_rows: int | None) -> int:
    """The number of segments: last id + 1, or the rows of the optional second input."""
    count = int(ids[-1]) + 1 if ids.size else 0
    if like_rows is not None:
        if count > like_rows:
            raise ShapeError(f"the ids name {count} segments, more than the second input's {like_rows} rows")
        count = like_rows
    return count


def n_split_value(n_split: int) -> int:
    if n_split <= 0:
        raise ShapeError(f"n_split must be > 0 (the arg, or a second input), got {n_split}")
    return n_split


# --- rules ------------------------------------------------------------------------------------

@rule("lengths_tile")
def lengths_tile(op: OpView, inputs: list) -> list:
    """LengthsTile: DATA's type; the first dim (the sum of LENGTHS) is unknown."""
    data, lengths = inputs
    if lengths is not None:
        index_vector("LENGTHS", lengths.shape, lengths.dtype)
    if data is not None and not data.shape:
        raise ShapeError("DATA must have rank >= 1")
    if data is not None and lengths is not None and data.shape[0] != lengths.shape[0]:
        raise ShapeError(f"LENGTHS {list(lengths.shape)} must hold one length per row of DATA {list(data.shape)}")
    return [None]


@rule("lengths_to_values")
def lengths_to_values(op: OpView, inputs: list) -> list:
    """LengthsToSegmentIds, LengthsToWeights: 1-D of the sum of the lengths (unknown)."""
    if inputs[0] is not None:
        index_vector("lengths", inputs[0].shape, inputs[0].dtype)
    return [None]


@rule("lengths_segment_ids")
def segment_ids(op: OpView, inputs: list) -> list:
    """SegmentIdsToLengths [K] / SegmentIdsToRanges [K, 2] int32, K the rows of the optional
    second input (else the last id + 1, unknown)."""
    ids = inputs[0]
    if ids is not None:
        index_vector("segment_ids", ids.shape, ids.dtype)
    like = inputs[1] if len(inputs) > 1 else None
    if like is None:
        return [None]
    if not like.shape:
        raise ShapeError("the second input must have rank >= 1")
    tail = (2,) if op.type == "SegmentIdsToRanges" else ()
    return [TensorInfo((like.shape[0], *tail), "int32")]


@rule("lengths_to_shape")
def lengths_to_shape(op: OpView, inputs: list) -> list:
    """LengthsToShape: int32 [2]."""
    if inputs[0] is not None:
        index_vector("lengths", inputs[0].shape, inputs[0].dtype)
    return [TensorInfo((2,), "int32")]


@rule("lengths_split")
def lengths_split(op: OpView, inputs: list) -> list:
    """LengthsSplit: int32 [len(LENGTHS) * n_split] (n_split from the arg, or a value)."""
    lengths = inputs[0]
    if lengths is not None:
        index_vector("LENGTHS", lengths.shape, lengths.dtype, ("int32",))
    if len(inputs) > 1:
        if inputs[1] is not None and inputs[1].shape != (1,):
            raise ShapeError(f"n_split must be a 1-D tensor of one element, got {list(inputs[1].shape)}")
        return [None]
    n_split = n_split_value(op.arg("n_split", 0))
    return [None if lengths is None else TensorInfo((lengths.shape[0] * n_split,), "int32")]
