"""Row-wise stochastic quantization kernels (NumPy): FloatToFusedRandRowwiseQuantized
and FusedRandRowwiseQuantizedToFloat. Levels are computed for the whole matrix at
once in float32 (Caffe2's arithmetic); packing views the levels, padded to
8/bitwidth segments, as [rows, segments, bytes] and ORs the shifted segments
(their bits never overlap, so a sum). The header's min and max are float32 bytes,
little-endian."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.rand_quantized import (
    HEADER,
    check_bitwidth,
    check_float_matrix,
    check_fused,
    fused_width,
)

EPSILON = 1e-8


@register_cpu("FloatToFusedRandRowwiseQuantized")
def float_to_fused_rand_rowwise_quantized(x, *, bitwidth, random, rng):
    check_bitwidth(bitwidth)
    check_float_matrix(x.shape, x.dtype.name)
    rows, columns = x.shape
    per_byte, top = 8 // bitwidth, (1 << bitwidth) - 1
    width = fused_width(columns, bitwidth)
    segment = width - HEADER
    lo = x.min(axis=1, initial=np.inf) if columns else np.zeros(rows, np.float32)
    hi = x.max(axis=1, initial=-np.inf) if columns else np.zeros(rows, np.float32)
    gap = (hi - lo) / np.float32(top)
    inverse = (1.0 / (gap.astype(np.float64) + EPSILON)).astype(np.float32)
    times = (x - lo[:, None]) * inverse[:, None]
    if random:
        levels = np.floor(times + rng.random(x.shape, dtype=np.float32))
    else:
        levels = np.rint(np.clip(times, 0, top))
    levels = np.clip(levels, 0, top).astype(np.uint16)
    padded = np.zeros((rows, per_byte * segment), np.uint16)
    padded[:, :columns] = levels
    shifts = (np.arange(per_byte, dtype=np.uint16) * bitwidth)[None, :, None]
    data = (padded.reshape(rows, per_byte, segment) << shifts).sum(axis=1).astype(np.uint8)
    out = np.empty((rows, width), np.uint8)
    out[:, 0] = bitwidth
    out[:, 1] = (per_byte - columns % per_byte) % per_byte
    out[:, 2:HEADER] = np.stack([lo, hi], axis=1).astype("<f4").view(np.uint8).reshape(rows, 8)
    out[:, HEADER:] = data
    return out


@register_cpu("FusedRandRowwiseQuantizedToFloat")
def fused_rand_rowwise_quantized_to_float(fused):
    check_fused(fused.shape, fused.dtype.name)
    bitwidth, tail = int(fused[0, 0]), int(fused[0, 1])
    check_bitwidth(bitwidth)
    if (fused[:, 0] != bitwidth).any() or (fused[:, 1] != tail).any():
        raise ShapeError(f"every row must have the first row's bitwidth {bitwidth} and tail {tail}")
    rows, segment = fused.shape[0], fused.shape[1] - HEADER
    per_byte = 8 // bitwidth
    columns = segment * per_byte - tail
    if columns < 0 or tail >= per_byte and segment:
        raise ShapeError(f"tail {tail} does not fit {segment} data bytes of bitwidth {bitwidth}")
    bounds = np.ascontiguousarray(fused[:, 2:HEADER]).view("<f4").astype(np.float32)  # [rows, 2]
    lo, hi = bounds[:, 0], bounds[:, 1]
    gap = ((hi - lo) / np.float32((1 << bitwidth) - 1) + np.float32(EPSILON)).astype(np.float32)
    shifts = (np.arange(per_byte, dtype=np.uint8) * bitwidth)[None, :, None]
    levels = (fused[:, None, HEADER:] >> shifts) & np.uint8((1 << bitwidth) - 1)  # [rows, segments, bytes]
    levels = levels.reshape(rows, per_byte * segment)[:, :columns].astype(np.float32)
    return levels * gap[:, None] + lo[:, None]
