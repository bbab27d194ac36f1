"""Inference rules of the pack_segments family: PackSegments / UnpackSegments,
AddPadding / RemovePadding / GatherPadding and PadEmptySamples.

Segments are consecutive rows of a tensor, `lengths[i]` rows each. Sizes
that depend on the lengths' values (the longest segment, the empty samples)
are unknown here unless an arg fixes them (PackSegments' max_length).
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

# --- checks shared with the kernels -----------------------------------------------------------

def check_max_length(max_length: int) -> None:
    if max_length < -1:
        raise ShapeError(f"max_length must be -1 (the longest segment) or >= 0, got {max_length}")


def padding_widths(padding_width: int, end_padding_width: int) -> tuple[int, int]:
    """(start, end) widths; end -1 takes the start width."""
    if padding_width < 0:
        raise ShapeError(f"padding_width must be >= 0, got {padding_width}")
    return padding_width, (padding_width if end_padding_width < 0 else end_padding_width)


def check_rows(data_shape, what: str = "data_in") -> None:
    if len(data_shape) < 1:
        raise ShapeError(f"{what} must have rank >= 1")


def check_padding_block(name: str, shape, data_shape) -> None:
    """A padding input holds one row of data (Caffe2 compares sizes)."""
    if math.prod(shape) != math.prod(data_shape[1:]):
        raise ShapeError(f"{name} {list(shape)} must hold one row of data_in {list(data_shape)}")


# --- rules ------------------------------------------------------------------------------------

@rule("pack_segments_pack")
def pack(op: OpView, inputs: list) -> list:
    """[len(lengths), max_length] + the data's dims after the first; the presence mask
    bool [len(lengths), max_length] (max_length from the arg, else unknown)."""
    lengths, data = inputs
    max_length = op.arg("max_length", -1)
    check_max_length(max_length)
    if op.n_outputs > 1 and not op.arg("return_presence_mask", 0):
        raise ShapeError("a second output (presence_mask) needs return_presence_mask=1")
    if lengths is not None:
        index_vector("lengths", lengths.shape, lengths.dtype)
    if data is not None:
        check_rows(data.shape, "tensor")
    if lengths is None or data is None or max_length == -1:
        return [None] * op.n_outputs
    head = (lengths.shape[0], max_length)
    return [TensorInfo((*head, *data.shape[1:]), data.dtype), TensorInfo(head, "bool")][:op.n_outputs]


@rule("pack_segments_unpack")
def unpack(op: OpView, inputs: list) -> list:
    """The data's type and dims after the first two; the row count depends on the lengths."""
    lengths, data = inputs
    check_max_length(op.arg("max_length", -1))
    if lengths is not None:
        index_vector("lengths", lengths.shape, lengths.dtype)
    if data is not None and len(data.shape) < 2:
        raise ShapeError(f"tensor must have rank >= 2, got {list(data.shape)}")
    if lengths is not None and data is not None and data.shape[0] != lengths.shape[0]:
        raise ShapeError(f"tensor {list(data.shape)} must have one row per length ({lengths.shape[0]})")
    return [None]


def _segments(inputs: list) -> int | None:
    """The segment count: len(lengths), or 1 without a lengths input; None when unknown."""
    if len(inputs) < 2:
        return 1
    lengths = inputs[1]
    if lengths is None:
        return None
    index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))
    return lengths.shape[0]


@rule("pack_segments_padding")
def padding(op: OpView, inputs: list) -> list:
    """AddPadding / RemovePadding: (start + end) rows more (fewer) per segment; lengths_out
    int32 [segments]."""
    start, end = padding_widths(op.arg("padding_width", 1), op.arg("end_padding_width", -1))
    data = inputs[0]
    if data is not None:
        check_rows(data.shape)
        for name, pad in zip(("start_padding", "end_padding"), inputs[2:]):
            if pad is not None:
                check_padding_block(name, pad.shape, data.shape)
    count = _segments(inputs)
    if data is None or count is None:
        return [None] * op.n_outputs
    grow = (start + end) * count * (1 if op.type == "AddPadding" else -1)
    if data.shape[0] + grow < 0:
        raise ShapeError(f"data_in {list(data.shape)} is too short to hold {count} paddings of "
                         f"{start} + {end} rows")
    out = TensorInfo((data.shape[0] + grow, *data.shape[1:]), data.dtype)
    return [out, TensorInfo((count,), "int32")][:op.n_outputs]


@rule("pack_segments_gather_padding")
def gather_padding(op: OpView, inputs: list) -> list:
    """One row of data_in per output: the summed start (and end) paddings."""
    padding_widths(op.arg("padding_width", 1), op.arg("end_padding_width", -1))
    data = inputs[0]
    _segments(inputs)
    if data is None:
        return [None] * op.n_outputs
    check_rows(data.shape)
    if data.dtype == "bool":
        raise ShapeError("data_in must not be bool (its paddings are summed)")
    return [TensorInfo(tuple(data.shape[1:]), data.dtype)] * op.n_outputs


@rule("pack_segments_pad_empty")
def pad_empty(op: OpView, inputs: list) -> list:
    """out_lengths: int32 like lengths; each feature gains a row per empty sample (unknown)."""
    if op.n_outputs != op.n_inputs:
        raise ShapeError(f"{op.n_outputs} outputs for {op.n_inputs} inputs (one per input)")
    lengths = inputs[0]
    for k, feature in enumerate(inputs[1:], 1):
        if feature is not None:
            check_rows(feature.shape, f"input {k}")
    if lengths is None:
        return [None] * op.n_outputs
    index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))
    return [TensorInfo(lengths.shape, "int32")] + [None] * (op.n_outputs - 1)


# --- PackRNNSequence / UnpackRNNSequence ------------------------------------------------------

RNN_SEQUENCE_TYPES = ("int32", "int64", "float32", "float64")


def check_rnn_sequence(values_shape, values_dtype: str, n_lengths: int | None, forward: bool) -> None:
    """values of rank >= 2 (PackRNNSequence) or >= 3 (UnpackRNNSequence, with one column per length)."""
    least = 2 if forward else 3
    if len(values_shape) < least:
        raise ShapeError(f"values must have rank >= {least}, got {list(values_shape)}")
    if values_dtype not in RNN_SEQUENCE_TYPES:
        raise ShapeError(f"values must be one of {', '.join(RNN_SEQUENCE_TYPES)}, got {values_dtype}")
    if n_lengths is not None and not forward and values_shape[1] != n_lengths:
        raise ShapeError(f"values {list(values_shape)} must have one column per length ({n_lengths})")


def _rnn_sequence(inputs: list, forward: bool) -> list:
    values, lengths = inputs
    if lengths is not None:
        index_vector("lengths", lengths.shape, lengths.dtype)
    if values is not None:
        check_rnn_sequence(values.shape, values.dtype, None if lengths is None else lengths.shape[0], forward)
    return [None]  # the row count depends on the lengths' values


@rule("pack_segments_pack_rnn_sequence")
def pack_rnn_sequence(op: OpView, inputs: list) -> list:
    """values' type, [max(lengths), len(lengths), D...]: the first dim depends on the lengths."""
    return _rnn_sequence(inputs, forward=True)


@rule("pack_segments_unpack_rnn_sequence")
def unpack_rnn_sequence(op: OpView, inputs: list) -> list:
    """values' type, [sum(lengths), D...]: the first dim depends on the lengths."""
    return _rnn_sequence(inputs, forward=False)
