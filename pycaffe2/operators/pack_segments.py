"""NumPy kernels of the pack_segments family: packing segments (consecutive
rows, lengths[i] each) into a padded [segments, max_length, ...] tensor and
back, adding and removing padding rows around each segment (with GatherPadding
for AddPadding's gradient), PadEmptySamples, and PackRNNSequence /
UnpackRNNSequence (sequences as columns of a time-major tensor and back).

Every kernel maps row positions with NumPy index arithmetic, no loop over
segments; checks are schema.inference.pack_segments' and lengths_util's.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import GradientError
from pycaffe2.files import check_alloc
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.lengths_util import check_lengths
from pycaffe2.schema.inference.pack_segments import (
    check_max_length,
    check_padding_block,
    check_rnn_sequence,
    check_rows,
    padding_widths,
)
from pycaffe2.schema.inference.segment import index_vector


def _segments(lengths: np.ndarray) -> tuple:
    """(segment of each row, each row's position within its segment)."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    return rows, np.arange(len(rows)) - starts[rows]


def _blank(shape, dtype, pad_minf: bool = False) -> np.ndarray:
    """Padding: zeros, -inf for floats under pad_minf, empty strings for strings."""
    if dtype == object:
        out = np.empty(shape, object)
        out.fill(b"")
        return out
    fill = -np.inf if pad_minf and np.issubdtype(dtype, np.floating) else 0
    return np.full(shape, fill, dtype)


# -- PackSegments / UnpackSegments -------------------------------------------------------------

@register_cpu("PackSegments")
def pack_segments(lengths, data, *, pad_minf, return_presence_mask, max_length, num_outputs):
    check_max_length(max_length)
    check_rows(data.shape, "tensor")
    values = check_lengths(lengths, total=data.shape[0], what="tensor's first dim")
    width = max_length if max_length != -1 else int(values.max(initial=0))
    out = _blank(check_alloc((len(values), width, *data.shape[1:]), data.dtype), data.dtype, pad_minf)
    rows, position = _segments(values)
    kept = position < width  # max_length cuts longer segments
    out[rows[kept], position[kept]] = data[kept]
    if num_outputs == 1:
        return (out,)
    presence = np.arange(width)[None, :] < np.minimum(values, width)[:, None]
    return out, presence


@register_cpu("UnpackSegments")
def unpack_segments(lengths, data, *, max_length):
    check_max_length(max_length)
    if data.ndim < 2 or data.shape[0] != len(lengths):
        raise ValueError(f"tensor {list(data.shape)} must have rank >= 2 and one row per length ({len(lengths)})")
    values = check_lengths(lengths)
    if max_length != -1:
        values = np.minimum(values, max_length)
    if values.size and values.max() > data.shape[1]:
        raise ValueError(f"length {int(values.max())} is longer than the packed segments ({data.shape[1]})")
    rows, position = _segments(values)
    return data[rows, position]


@register_gradient("PackSegments")
def make_pack_segments_gradient(g):
    return [g.Op("UnpackSegments", [g.I(0), g.GO(0)], [g.GI(1)])]


@register_gradient("UnpackSegments")
def make_unpack_segments_gradient(g):
    return [g.Op("PackSegments", [g.I(0), g.GO(0)], [g.GI(1)])]


# -- AddPadding / RemovePadding / GatherPadding ------------------------------------------------

def _padding_segments(data, lengths, widths: int, grow: bool) -> np.ndarray:
    """The segment lengths as int64: the lengths input, or all rows as one segment."""
    check_rows(data.shape)
    if lengths is None:
        return np.array([data.shape[0]], np.int64)
    index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))  # Caffe2 reads int32 here
    values = check_lengths(lengths, total=data.shape[0], what="data_in's first dim")
    if not grow and values.size and values.min() < widths:
        raise ValueError(f"segment of length {int(values.min())} is shorter than its padding ({widths} rows)")
    return values


@register_cpu("AddPadding")
def add_padding(data, lengths=None, start_padding=None, end_padding=None, *, padding_width, end_padding_width,
                num_outputs):
    start, end = padding_widths(padding_width, end_padding_width)
    values = _padding_segments(data, lengths, 0, grow=True)
    end_padding = start_padding if end_padding is None else end_padding
    for name, pad in (("start_padding", start_padding), ("end_padding", end_padding)):
        if pad is not None:
            check_padding_block(name, np.shape(pad), data.shape)
            if np.asarray(pad).dtype != data.dtype:
                raise ValueError(f"{name} ({np.asarray(pad).dtype}) must have data_in's type ({data.dtype})")
    out = np.zeros(check_alloc((data.shape[0] + (start + end) * len(values), *data.shape[1:]), data.dtype),
                   data.dtype)
    out_starts = np.cumsum(values + start + end) - (values + start + end)
    rows, _ = _segments(values)
    out[np.arange(data.shape[0]) + rows * (start + end) + start] = data
    for pad, offsets, width in ((start_padding, out_starts, start), (end_padding, out_starts + start + values, end)):
        if pad is not None and width:
            out[(offsets[:, None] + np.arange(width)).reshape(-1)] = np.reshape(pad, data.shape[1:])
    return (out, (values + start + end).astype(np.int32))[:num_outputs]


@register_cpu("RemovePadding")
def remove_padding(data, lengths=None, *, padding_width, end_padding_width, num_outputs):
    start, end = padding_widths(padding_width, end_padding_width)
    values = _padding_segments(data, lengths, start + end, grow=False)
    rows, position = _segments(values)
    kept = (position >= start) & (position < values[rows] - end)
    return (data[kept], (values - start - end).astype(np.int32))[:num_outputs]


@register_cpu("GatherPadding")
def gather_padding(data, lengths=None, *, padding_width, end_padding_width, num_outputs):
    start, end = padding_widths(padding_width, end_padding_width)
    if data.dtype == bool:
        raise ValueError("data_in must not be bool (its paddings are summed)")
    values = _padding_segments(data, lengths, start + end, grow=False)
    rows, position = _segments(values)
    at_start, at_end = position < start, position >= values[rows] - end
    sums = [data[at_start].sum(axis=0, dtype=data.dtype), data[at_end].sum(axis=0, dtype=data.dtype)]
    if num_outputs == 1:  # one padding for both ends: one sum
        return (sums[0] + sums[1],)
    return tuple(sums)


def _padding_gradient_inputs(g) -> list:
    """The inputs of AddPadding's and RemovePadding's gradient ops: the output gradient, and
    the forward op's lengths_out when it had a lengths input."""
    inputs = [g.GO(0)]
    if len(g.op.input) > 1:
        if len(g.op.output) < 2:
            raise GradientError(f"{g.op.type}'s gradient needs its lengths_out output when it has a lengths input")
        inputs.append(g.O(1))
    return inputs


@register_gradient("AddPadding")
def make_add_padding_gradient(g):
    inputs = _padding_gradient_inputs(g)
    ops = [g.Op("RemovePadding", inputs, [g.GI(0)])]
    if len(g.op.input) >= 3:
        ops.append(g.Op("GatherPadding", inputs, [g.GI(k) for k in range(2, len(g.op.input))]))
    return ops


@register_gradient("RemovePadding")
def make_remove_padding_gradient(g):
    inputs = _padding_gradient_inputs(g)
    return [g.Op("AddPadding", inputs, [g.GI(0)])]


# -- PadEmptySamples ---------------------------------------------------------------------------

@register_cpu("PadEmptySamples")
def pad_empty_samples(lengths, *features, num_outputs):
    if num_outputs != len(features) + 1:
        raise ValueError(f"{num_outputs} outputs for {len(features) + 1} inputs (one per input)")
    index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))
    values = check_lengths(lengths)
    empty = values == 0
    rows, _ = _segments(values)
    shift = (np.cumsum(empty) - empty)[rows]  # empty samples before each row's
    outputs = [np.maximum(values, 1).astype(np.int32)]
    for k, feature in enumerate(features, 1):
        check_rows(feature.shape, f"input {k}")
        if feature.shape[0] != len(rows):
            raise ValueError(f"input {k} has {feature.shape[0]} rows, but the lengths add up to {len(rows)}")
        out = _blank(check_alloc((len(rows) + int(empty.sum()), *feature.shape[1:]), feature.dtype), feature.dtype)
        out[np.arange(len(rows)) + shift] = feature
        outputs.append(out)
    return tuple(outputs)


# -- PackRNNSequence / UnpackRNNSequence -------------------------------------------------------

def _rnn_sequence(values, lengths, forward: bool):
    """(lengths as int64, each row's (time step, column)) after the checks."""
    counts = check_lengths(lengths)
    check_rnn_sequence(values.shape, values.dtype.name, len(counts), forward)
    column, step = _segments(counts)
    return counts, step, column


@register_cpu("PackRNNSequence")
def pack_rnn_sequence(values, lengths):
    counts, step, column = _rnn_sequence(values, lengths, forward=True)
    if len(step) > values.shape[0]:
        raise ShapeError(f"lengths add up to {len(step)}, but values has {values.shape[0]} rows")
    steps = int(counts.max(initial=0))
    out = np.zeros(check_alloc((steps, len(counts), *values.shape[1:]), values.dtype), values.dtype)
    out[step, column] = values[:len(step)]
    return out


@register_cpu("UnpackRNNSequence")
def unpack_rnn_sequence(values, lengths):
    counts, step, column = _rnn_sequence(values, lengths, forward=False)
    if counts.size and counts.max() > values.shape[0]:
        raise ShapeError(f"lengths go up to {int(counts.max())}, but values has {values.shape[0]} time steps")
    return values[step, column]


gradient_op("PackRNNSequence", "GO0 I1", gradient_type="UnpackRNNSequence")
gradient_op("UnpackRNNSequence", "GO0 I1", gradient_type="PackRNNSequence")
