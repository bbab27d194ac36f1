"""NumPy kernels of the selection family: Compress, NonZero, UniqueWithCounts and
ReverseSequence (its own gradient: reversing twice restores the order). Shape checks
are the family's inference module's; the checks of values are here.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.indexing import index_type
from pycaffe2.schema.inference.selection import compress_axis, reverse_sequence_check, unique_axis


@register_cpu("Compress")
def compress(data, condition, *, axis):
    axis = compress_axis(data.shape, condition.shape, condition.dtype.name, axis)
    kept = np.flatnonzero(condition)
    if axis is None:
        return data.reshape(-1)[kept]
    return np.take(data, kept, axis=axis)


gradient_op("Compress", "I0 I1 GO0")


@register_cpu("CompressGradient")
def compress_gradient(data, condition, dy, *, axis):
    axis = compress_axis(data.shape, condition.shape, condition.dtype.name, axis)
    kept = np.flatnonzero(condition)
    expected = (kept.size,) if axis is None else data.shape[:axis] + (kept.size,) + data.shape[axis + 1:]
    if dy.shape != expected:
        raise ValueError(f"dY {list(dy.shape)} must have the compressed shape {list(expected)}")
    if axis is None:
        dx = np.zeros(data.size, dy.dtype)
        dx[kept] = dy
        return dx.reshape(data.shape)
    dx = np.zeros(data.shape, dy.dtype)
    np.moveaxis(dx, axis, 0)[kept] = np.moveaxis(dy, axis, 0)  # a view: writes reach dx
    return dx


@register_cpu("NonZero")
def non_zero(x):
    if x.ndim == 0:  # no dims to index, one column per non-zero scalar
        return np.zeros((0, int(bool(x))), np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


def _first_occurrence_order(values, first, inverse, counts):
    """np.unique's sorted outputs reordered by first occurrence."""
    order = np.argsort(first, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return values[order], first[order], position[inverse], counts[order]


@register_cpu("UniqueWithCounts")
def unique_with_counts(x, *, axis, sorted, num_outputs):
    axis = unique_axis(x.shape, axis)
    if axis is None:
        x = x.reshape(-1)
    values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                               return_counts=True, axis=0 if axis is None else axis)
    inverse = inverse.reshape(-1)
    if not sorted:
        values, first, inverse, counts = _first_occurrence_order(
            np.moveaxis(values, axis or 0, 0), first, inverse, counts)
        values = np.moveaxis(values, 0, axis or 0)
    outputs = (values, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64))
    return outputs[:num_outputs]


@register_cpu("ReverseSequence")
def reverse_sequence(data, sequence_lens, *, batch_axis, time_axis):
    index_type(sequence_lens.shape, sequence_lens.dtype.name)
    reverse_sequence_check(data.shape, sequence_lens.shape, batch_axis, time_axis)
    steps = data.shape[time_axis]
    lens = sequence_lens.astype(np.int64)
    check_in_range(lens, steps + 1, "sequence length")
    t = np.arange(steps)
    order = np.where(t < lens[:, None], lens[:, None] - 1 - t, t)  # [batch, time]: where each entry comes from
    moved = np.moveaxis(data, (batch_axis, time_axis), (0, 1))
    order = order.reshape(order.shape + (1,) * (moved.ndim - 2))
    out = np.take_along_axis(moved, order, axis=1)
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (batch_axis, time_axis)))


# Reversing the same prefixes again takes dY back to X's order; the lengths get none.
gradient_op("ReverseSequence", "GO0 I1", gradient_type="ReverseSequence")
