"""NumPy kernels of the segment_util family: top-k per segment (LengthsTopK) and
per row (FlexibleTopK) with their gradient ops, LengthsPad, ReversePackedSegs,
RemoveDataBlocks and PrependDim/MergeDim.

Both top-k ops order a segment's values by decreasing value, ties by
increasing position, as Caffe2's heaps do.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators.lengths_reducer import checked_indices, segment_ids
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.segment_util import (
    flexible_top_k_shapes,
    lengths_pad_shapes,
    lengths_top_k_gradient_shapes,
    merge_dim_shape,
    packed_segs_shapes,
    prepend_dim_shape,
    remove_blocks_shapes,
    top_k_arg,
)
from pycaffe2.schema.inference.segment_util import float_vector as _float_vector


def _ranks(seg, lengths) -> np.ndarray:
    """Each entry's position within its segment."""
    return np.arange(seg.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)


# -- LengthsTopK -------------------------------------------------------------------------------------

@register_cpu("LengthsTopK")
def lengths_top_k(data, lengths, *, k, num_outputs):
    top_k_arg(k)
    _float_vector("DATA", info_of(data))
    seg, lengths = segment_ids(lengths, data.size, "entries of DATA")
    check_alloc((lengths.size, k), data.dtype)
    position = _ranks(seg, lengths)
    order = np.lexsort((position, -data, seg))  # by segment, then decreasing value, then position
    keep = position < k  # seg is sorted: the order keeps each segment's entries where they were
    rows, cols = seg[keep], position[keep]
    values = np.zeros((lengths.size, k), data.dtype)
    indices = np.full((lengths.size, k), -1, np.int32)
    values[rows, cols] = data[order][keep]
    indices[rows, cols] = position[order][keep]
    return (values, indices)[:num_outputs]


@register_cpu("LengthsTopKGradient")
def lengths_top_k_gradient(lengths, indices, d_values, *, k):
    lengths_top_k_gradient_shapes(info_of(lengths), info_of(indices), info_of(d_values), k)
    _, lengths = segment_ids(lengths, None, "", d_values.reshape(-1))  # d_data: 1-D, dY's type
    total = int(lengths.sum())
    d_data = np.zeros(total, d_values.dtype)
    used = np.arange(k)[None, :] < np.minimum(lengths, k)[:, None]  # as Caffe2: the first min(length, k)
    picked = indices.astype(np.int64)[used]
    bound = np.broadcast_to(lengths[:, None], used.shape)[used]
    bad = (picked < 0) | (picked >= bound)
    if bad.any():
        raise ValueError(f"TopKIndices entry {int(picked[np.argmax(bad)])} is out of range for its segment "
                         f"of length {int(bound[np.argmax(bad)])}")
    offsets = np.broadcast_to((np.cumsum(lengths) - lengths)[:, None], used.shape)[used]
    d_data[offsets + picked] = d_values[used]
    return d_data


gradient_op("LengthsTopK", "I1 O1 GO0")


# -- FlexibleTopK ------------------------------------------------------------------------------------

def _flexible_counts(x, k) -> tuple[np.ndarray, np.ndarray]:
    """X as rows of its last dim, and K as int64 checked to be in 1..r."""
    flexible_top_k_shapes(info_of(x), info_of(k))
    rows = x.reshape(-1, x.shape[-1])
    counts = k.reshape(-1).astype(np.int64)
    bad = (counts < 1) | (counts > rows.shape[1])
    if bad.any():
        at = int(np.argmax(bad))
        raise ValueError(f"K[{at}] = {int(counts[at])} must be in 1..{rows.shape[1]} (X's last dim)")
    return rows, counts


@register_cpu("FlexibleTopK")
def flexible_top_k(x, k, *, num_outputs):
    rows, counts = _flexible_counts(x, k)
    order = np.argsort(-rows, axis=1, kind="stable")  # decreasing, ties by position
    keep = np.arange(rows.shape[1])[None, :] < counts[:, None]
    values = np.take_along_axis(rows, order, axis=1)[keep]
    return (values, order[keep].astype(np.int64))[:num_outputs]


@register_cpu("FlexibleTopKGradient")
def flexible_top_k_gradient(x, k, d_values, indices):
    rows, counts = _flexible_counts(x, k)
    _float_vector("dValues", info_of(d_values))
    if d_values.shape != indices.shape or indices.shape[0] != int(counts.sum()):
        raise ValueError(f"dValues {list(d_values.shape)} and Indices {list(indices.shape)} must both hold "
                         f"sum(K) = {int(counts.sum())} entries")
    picked = indices.astype(np.int64)
    bad = (picked < 0) | (picked >= rows.shape[1])
    if bad.any():
        raise ValueError(f"Indices entry {int(picked[np.argmax(bad)])} is out of range for X's last dim "
                         f"({rows.shape[1]})")
    out = np.zeros(rows.shape, d_values.dtype)
    out[np.repeat(np.arange(rows.shape[0]), counts), picked] = d_values
    return out.reshape(x.shape).astype(x.dtype, copy=False)


gradient_op("FlexibleTopK", "I0 I1 GO0 O1")


# -- LengthsPad, ReversePackedSegs, RemoveDataBlocks -------------------------------------------------

@register_cpu("LengthsPad")
def lengths_pad(data, lengths, *, padding_value, target_length):
    lengths_pad_shapes(info_of(data), info_of(lengths), target_length)
    seg, lengths = segment_ids(lengths, data.shape[0], "slices of DATA")
    if lengths.size and int(lengths.max()) > target_length:
        at = int(np.argmax(lengths))
        raise ValueError(f"LENGTHS[{at}] = {int(lengths[at])} is larger than target_length ({target_length})")
    check_alloc((lengths.size * target_length, *data.shape[1:]), data.dtype, "the padded output")
    out = np.full((lengths.size * target_length, *data.shape[1:]), padding_value, data.dtype)
    out[seg * target_length + _ranks(seg, lengths)] = data
    return out


@register_cpu("ReversePackedSegs")
def reverse_packed_segs(data, lengths):
    packed_segs_shapes(info_of(data), info_of(lengths))
    steps = data.shape[0]
    lengths = lengths.astype(np.int64)
    bad = (lengths < 0) | (lengths > steps)
    if bad.any():
        at = int(np.argmax(bad))
        raise ValueError(f"LENGTHS[{at}] = {int(lengths[at])} must be in 0..{steps} (DATA's first dim)")
    t = np.arange(steps)[:, None]
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [steps, batch]
    return data[source, np.arange(data.shape[1])[None, :]]


gradient_op("ReversePackedSegs", "GO0 I1", gradient_type="ReversePackedSegs")


@register_cpu("RemoveDataBlocks")
def remove_data_blocks(data, indices):
    remove_blocks_shapes(info_of(data), info_of(indices))
    if indices.shape[0] == 0:
        return data.copy()
    return np.delete(data, np.unique(checked_indices(indices, data.shape[0])), axis=0)


# -- PrependDim, MergeDim ------------------------------------------------------------------------------

@register_cpu("PrependDim")
def prepend_dim(data, *, dim_size):
    return data.reshape(prepend_dim_shape(data.shape, dim_size)).copy()


@register_cpu("MergeDim")
def merge_dim(data):
    return data.reshape(merge_dim_shape(data.shape)).copy()


@register_gradient("PrependDim")
def _make_prepend_dim_gradient(g):
    return [g.Op("MergeDim", [g.GO(0)], [g.GI(0)], inherit_args=False)]  # as Caffe2: no args copied
