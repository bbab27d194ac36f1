"""NumPy kernels of the boolean_mask family: BooleanMask and its gradient op,
BooleanMaskLengths and BooleanUnmask. Shape checks are the schema's
(schema/inference/boolean_mask.py); the checks that need the values (counts of
true entries, lengths) are here.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.boolean_mask import (
    boolean_mask_gradient_inputs,
    boolean_mask_inputs,
    lengths_inputs,
    unmask_inputs,
)


@register_cpu("BooleanMask")
def boolean_mask(data, mask, *, num_outputs):
    boolean_mask_inputs(data.shape, mask.shape, mask.dtype.name)
    kept = data[mask]
    return (kept, np.flatnonzero(mask).astype(np.int64))[:num_outputs]


gradient_op("BooleanMask", "I1 GO0")


@register_cpu("BooleanMaskGradient")
def boolean_mask_gradient(mask, dy):
    boolean_mask_gradient_inputs(mask.shape, mask.dtype.name, dy.shape)
    count = int(np.count_nonzero(mask))
    if dy.shape[0] != count:
        raise ValueError(f"dY has {dy.shape[0]} rows but mask {list(mask.shape)} has {count} true entries")
    dx = np.zeros((mask.shape[0], *dy.shape[1:]), dy.dtype)
    dx[mask] = dy
    return dx


@register_cpu("BooleanMaskLengths")
def boolean_mask_lengths(lengths, mask):
    lengths_inputs(lengths.shape, lengths.dtype.name, mask.shape, mask.dtype.name)
    if lengths.size and not 0 <= int(lengths.min()) <= int(lengths.max()) <= mask.shape[0]:
        bad = int(lengths.min()) if int(lengths.min()) < 0 else int(lengths.max())
        raise ValueError(f"length {bad} is out of range [0, {mask.shape[0]}] (mask's size)")
    total = int(lengths.sum(dtype=np.int64))
    if total != mask.shape[0]:
        raise ValueError(f"lengths sum to {total} but mask has {mask.shape[0]} entries")
    trues = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])  # true entries before each position
    ends = np.cumsum(lengths, dtype=np.int64)
    return (trues[ends] - trues[ends - lengths]).astype(lengths.dtype)


@register_cpu("BooleanUnmask")
def boolean_unmask(*pairs):
    masks, values = pairs[::2], pairs[1::2]
    unmask_inputs([(m.shape, m.dtype.name, v.shape) for m, v in zip(masks, values)])
    stacked = np.stack(masks)  # [pairs, size]
    found = stacked.any(axis=0)
    if not found.all():
        raise ValueError(f"all masks are false at position {int(np.argmin(found))}")
    winner = stacked.argmax(axis=0)  # the first mask true at each position
    out = np.empty(stacked.shape[1], values[0].dtype)
    for i, v in enumerate(values):  # a loop over the (few) pairs
        positions = np.flatnonzero(winner == i)
        if positions.size != v.shape[0]:
            raise ValueError(f"mask_{i} wins {positions.size} positions but values_{i} has {v.shape[0]} values")
        out[positions] = v
    return out
