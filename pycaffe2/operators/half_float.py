"""NumPy kernels of the half_float family: float32 <-> float16, each the other's gradient."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.half_float import dtype_is


@register_cpu("FloatToHalf")
def float_to_half(x):
    dtype_is("X", x.dtype, "float32")
    return x.astype(np.float16)


@register_cpu("HalfToFloat")
def half_to_float(x):
    dtype_is("X", x.dtype, "float16")
    return x.astype(np.float32)


gradient_op("FloatToHalf", "GO0", gradient_type="HalfToFloat")
gradient_op("HalfToFloat", "GO0", gradient_type="FloatToHalf")
