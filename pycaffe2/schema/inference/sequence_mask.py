"""Inference rule and checks of the sequence_mask family: the input's [B, N, M]
or [N, M, K] view and the per-row lengths or centers."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.tensor import axis_index

MODES_WITH_INPUT = ("sequence", "window")
MODES = MODES_WITH_INPUT + ("upper", "lower", "upperdiag", "lowerdiag")


def check_mode(mode: str, has_values: bool) -> None:
    """The mode is known and takes lengths or centers exactly when it is given them."""
    if mode not in MODES:
        raise ShapeError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if has_values != (mode in MODES_WITH_INPUT):
        raise ShapeError(f"mode {mode!r} takes {'2 inputs' if mode in MODES_WITH_INPUT else '1 input'} "
                         f"(data{', lengths or centers' if mode in MODES_WITH_INPUT else ''})")


def mask_view(shape, mode: str, axis: int, batch, repeat_from_axis, lengths_shape) -> tuple[int, int, int, int]:
    """(B, N, M, K): the input seen as [B, N, M, K], masking (n, m), the same mask for
    every b and k; raise on a bad mode, axis or lengths input. batch and
    repeat_from_axis are None when the op does not give them (as in Caffe2, where
    giving them, even as -1, is what turns them on)."""
    check_mode(mode, lengths_shape is not None)
    rank = len(shape)
    where = f"input {list(shape)}"
    axis = axis_index(axis, rank, where=where)
    start, end = 0, rank
    if batch is not None:
        batch = axis_index(batch, rank, "batch", where)
        if batch >= axis:
            raise ShapeError(f"batch {batch} must come before axis {axis}")
        start = batch + 1
    if repeat_from_axis is not None:
        if batch is not None:
            raise ShapeError("batch and repeat_from_axis cannot both be set")
        end = axis_index(repeat_from_axis, rank, "repeat_from_axis", where)
        if end <= axis:
            raise ShapeError(f"repeat_from_axis {end} must come after axis {axis}")
    b, n = math.prod(shape[:start]), math.prod(shape[start:axis])
    m, k = math.prod(shape[axis:end]), math.prod(shape[end:])
    if lengths_shape is not None and math.prod(lengths_shape) != n:
        raise ShapeError(f"{'lengths' if mode == 'sequence' else 'centers'} {list(lengths_shape)} must have "
                         f"{n} entries, one per row of {where} before axis {axis}")
    return b, n, m, k


@rule("sequence_mask")
def sequence_mask(op: OpView, inputs: list) -> list:
    x = inputs[0]
    lengths = inputs[1] if len(inputs) > 1 else None
    check_mode(op.arg("mode"), len(inputs) > 1)
    if x is None or (len(inputs) > 1 and lengths is None):
        return [x]
    mask_view(x.shape, op.arg("mode"), op.arg("axis"), op.arg("batch"), op.arg("repeat_from_axis"),
              lengths and lengths.shape)
    return [x]
