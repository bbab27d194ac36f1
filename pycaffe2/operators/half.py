"""Half family kernels: FloatToHalf and HalfToFloat, each the other's gradient."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.half import half_input

HALF_MAX = float(np.finfo(np.float16).max)  # 65504


@register_cpu("FloatToHalf")
def float_to_half(x, *, clip):
    half_input(x.shape, x.dtype.name, "float32")
    if clip:
        x = np.clip(x, -HALF_MAX, HALF_MAX)  # NaN stays NaN
    with np.errstate(over="ignore"):  # beyond the range: inf, as the conversion defines
        return x.astype(np.float16)


@register_cpu("HalfToFloat")
def half_to_float(x):
    half_input(x.shape, x.dtype.name, "float16")
    return x.astype(np.float32)


# A conversion's gradient is the reverse conversion of the output gradient.
gradient_op("FloatToHalf", "GO0", "GI0", gradient_type="HalfToFloat")
gradient_op("HalfToFloat", "GO0", "GI0", gradient_type="FloatToHalf")
