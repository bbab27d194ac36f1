"""Inference rules of the selection family (Compress, NonZero, UniqueWithCounts,
ReverseSequence) and the checks its kernels share with them. The first three have
outputs sized by the input's values: unknown here but for ReverseSequence's.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.indexing import index_type
from pycaffe2.schema.inference.tensor import axis_index


def compress_axis(shape, condition, condition_dtype: str, axis: int | None) -> int | None:
    """Compress's axis (None: flattened); condition is a 1-D bool no longer than it."""
    if len(condition) != 1 or str(condition_dtype) != "bool":
        raise ShapeError(f"condition must be a 1-D bool tensor, got {list(condition)} {condition_dtype}")
    if axis is None:
        length = 1
        for d in shape:
            length *= d
    else:
        if not shape:
            raise ShapeError("input must have rank >= 1 to select along an axis")
        axis = axis_index(axis, len(shape), where=f"input {list(shape)}")
        length = shape[axis]
    if condition[0] > length:
        raise ShapeError(f"condition of length {condition[0]} is longer than the {length} entries it selects "
                         f"from (input {list(shape)}, axis {axis})")
    return axis


@rule("selection_compress")
def compress(op: OpView, inputs: list) -> list:
    """Compress: the output's length is the condition's true count (unknown)."""
    data, condition = inputs
    if data is not None and condition is not None:
        compress_axis(data.shape, condition.shape, condition.dtype, op.arg("axis"))
    return [None]


@rule("selection_compress_gradient")
def compress_gradient(op: OpView, inputs: list) -> list:
    """CompressGradient: dX of input's shape, dY's type."""
    data, condition, dy = inputs
    if data is not None and condition is not None:
        compress_axis(data.shape, condition.shape, condition.dtype, op.arg("axis"))
    if data is None or dy is None:
        return [None]
    return [TensorInfo(data.shape, dy.dtype)]


@rule("selection_non_zero")
def non_zero(op: OpView, inputs: list) -> list:
    """NonZero: int64 [rank, count]; the count is unknown."""
    return [None]


def unique_axis(shape, axis: int | None) -> int | None:
    if axis is None:
        return None
    if not shape:
        raise ShapeError("X must have rank >= 1 to deduplicate along an axis")
    return axis_index(axis, len(shape), where=f"X {list(shape)}")


@rule("selection_unique")
def unique(op: OpView, inputs: list) -> list:
    """UniqueWithCounts: sizes depend on the values (unknown)."""
    if inputs[0] is not None:
        unique_axis(inputs[0].shape, op.arg("axis"))
    return [None] * op.n_outputs


def reverse_sequence_check(shape, lens, batch_axis: int, time_axis: int) -> None:
    """input of rank >= 2, sequence_lens [batch], the two axes 0 and 1 in some order."""
    if batch_axis == time_axis:
        raise ShapeError(f"batch_axis and time_axis must differ, both are {batch_axis}")
    if len(shape) < 2:
        raise ShapeError(f"input must have rank >= 2, got {list(shape)}")
    if tuple(lens) != (shape[batch_axis],):
        raise ShapeError(f"sequence_lens {list(lens)} must be 1-D with input {list(shape)}'s batch size "
                         f"{shape[batch_axis]} (axis {batch_axis})")


@rule("selection_reverse_sequence")
def reverse_sequence(op: OpView, inputs: list) -> list:
    """ReverseSequence: input's shape and type."""
    data, lens = inputs
    if lens is not None:
        index_type(lens.shape, lens.dtype)
    if data is None:
        return [None]
    if lens is not None:
        reverse_sequence_check(data.shape, lens.shape, op.arg("batch_axis"), op.arg("time_axis"))
    return [TensorInfo(data.shape, data.dtype)]
