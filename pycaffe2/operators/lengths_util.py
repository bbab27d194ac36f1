"""NumPy kernels of the lengths_util family: turning lengths into ids, ranges,
weights and shapes and back, LengthsTile and LengthsSplit
(SegmentOneHot is the one_hot family's).

A lengths tensor splits the rows of another into consecutive segments, segment
i holding lengths[i] rows. Checks live in schema.inference.lengths_util; sizes
that come from input values pass check_alloc before anything is allocated.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.lengths_util import (
    check_lengths,
    check_sorted_ids,
    index_vector,
    n_split_value,
    segment_count,
)


def _segment_of_each(lengths: np.ndarray) -> np.ndarray:
    """For each row the lengths cover, the index of its segment (int64)."""
    check_alloc((int(lengths.sum()),), np.int64, "the segments")
    return np.repeat(np.arange(len(lengths)), lengths)


@register_cpu("LengthsTile")
def lengths_tile(data, lengths):
    values = check_lengths(lengths, "LENGTHS")
    if data.ndim < 1 or data.shape[0] != len(values):
        raise ValueError(f"LENGTHS {list(lengths.shape)} must hold one length per row of DATA {list(data.shape)}")
    check_alloc((int(values.sum()), *data.shape[1:]), data.dtype)
    return np.repeat(data, values, axis=0)


# Row i of DATA went to LENGTHS[i] output rows: its gradient sums them (as Caffe2's maker).
gradient_op("LengthsTile", "GO0 I1", gradient_type="LengthsSum")


@register_cpu("LengthsToSegmentIds")
def lengths_to_segment_ids(lengths):
    return _segment_of_each(check_lengths(lengths)).astype(np.int32)


@register_cpu("SegmentIdsToLengths")
def segment_ids_to_lengths(segment_ids, like=None):
    ids = _ids_vector(segment_ids)
    count = segment_count(ids, None if like is None else _rows(like))
    return np.bincount(ids, minlength=count).astype(np.int32)


@register_cpu("SegmentIdsToRanges")
def segment_ids_to_ranges(segment_ids, like=None):
    ids = _ids_vector(segment_ids)
    count = segment_count(ids, None if like is None else _rows(like))
    lengths = np.bincount(ids, minlength=count)
    starts = np.searchsorted(ids, np.arange(count))  # an empty segment starts where the next id does
    starts[int(ids[-1]) + 1 if ids.size else 0:] = 0  # ... but one after the last id at 0, as in Caffe2
    return np.stack([starts, lengths], axis=1).astype(np.int32).reshape(count, 2)


def _ids_vector(segment_ids) -> np.ndarray:
    # Caffe2 takes a [1, N] or [N, 1] matrix as a vector too (SegmentIdsToLengths).
    if segment_ids.ndim == 2 and 1 in segment_ids.shape:
        segment_ids = segment_ids.reshape(-1)
    check_sorted_ids(segment_ids)
    ids = segment_ids.astype(np.int64)
    check_alloc((int(ids[-1]) + 1 if ids.size else 0,), np.int32, "the segments")
    return ids


def _rows(like) -> int:
    if np.ndim(like) < 1:
        raise ValueError("the second input must have rank >= 1")
    return np.shape(like)[0]


@register_cpu("LengthsToWeights")
def lengths_to_weights(lengths, *, power):
    values = check_lengths(lengths)
    each = _segment_of_each(values)
    weights = np.power(values[each].astype(np.float64), -float(power))  # 1 / length ** power
    return weights.astype(np.float32)


@register_cpu("LengthsToShape")
def lengths_to_shape(lengths):
    index_vector("lengths", lengths.shape, lengths.dtype)
    if lengths.size == 0:
        raise ValueError("lengths must not be empty (its first value is the shape's second dim)")
    if (lengths != lengths[0]).any():
        raise ValueError(f"all lengths must be equal, got {lengths.tolist()[:8]}")
    return np.array([len(lengths), lengths[0]], np.int32)


@register_cpu("LengthsSplit")
def lengths_split(lengths, n_split_input=None, *, n_split):
    index_vector("LENGTHS", lengths.shape, lengths.dtype, ("int32",))
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"LENGTHS must be >= 0, got {int(lengths.min())}")
    if n_split_input is not None:
        if n_split_input.shape != (1,):
            raise ValueError(f"n_split must be a 1-D tensor of one element, got {list(n_split_input.shape)}")
        n_split = int(n_split_input[0])
    parts = n_split_value(n_split)
    check_alloc((len(lengths) * parts,), np.int32)
    # each length into n_split parts as equal as can be, the larger ones first
    base, extra = np.divmod(lengths.astype(np.int64), parts)
    out = base[:, None] + (np.arange(parts)[None, :] < extra[:, None])
    return out.reshape(-1).astype(np.int32)
