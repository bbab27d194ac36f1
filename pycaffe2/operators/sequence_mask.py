"""NumPy kernel and gradient maker of the sequence_mask family."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.sequence_mask import MODES_WITH_INPUT, mask_view


def _row_col_mask(mode: str, n: int, m: int, values, radius: int):
    """Boolean [n, m]: True where (row, column) is masked."""
    rows, cols = np.arange(n)[:, None], np.arange(m)[None, :]
    if mode == "sequence":
        return cols >= values.reshape(-1, 1)
    if mode == "window":
        centers = values.reshape(-1, 1)
        return (cols > centers + radius) | (cols < centers - radius)
    return {"upper": cols > rows, "lower": cols < rows,
            "upperdiag": cols >= rows, "lowerdiag": cols <= rows}[mode]


@register_cpu("SequenceMask")
def sequence_mask(x, *lengths, mode, axis, radius, grad, fill_val, batch, repeat_from_axis):
    values = lengths[0] if lengths else None
    b, n, m, k = mask_view(x.shape, mode, axis, batch, repeat_from_axis,
                           None if values is None else values.shape)
    mask = _row_col_mask(mode, n, m, values, radius)
    view = x.reshape(b, n, m, k)
    fill = np.array(0 if grad else fill_val).astype(x.dtype)
    return np.where(mask[None, :, :, None], fill, view).reshape(x.shape)


@register_gradient("SequenceMask")
def make_sequence_mask_gradient(g):
    """The output gradient masked the same way, masked entries getting 0."""
    inputs = [g.GO(0), g.I(1)] if g.arg("mode") in MODES_WITH_INPUT else [g.GO(0)]
    return [g.Op("SequenceMask", inputs, [g.GI(0)], grad=1)]
