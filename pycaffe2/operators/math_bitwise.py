"""Bitwise kernels (NumPy, CPU only): BitShift and BitwiseNot. NumPy's shifts by
the type's width or more are undefined (C's), so BitShift clamps the count and
picks the result of a too-wide shift itself. Checks are
schema.inference.math_bitwise's, shared with the rules."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.elementwise import INT_BOOL, require_dtype
from pycaffe2.schema.inference.math_bitwise import check_shift


def _counts(x, y):
    """Y read as unsigned counts (a negative count is huge), and X's width in bits."""
    bits = x.dtype.itemsize * 8
    return y.view(np.dtype(f"u{y.dtype.itemsize}")), bits


@register_cpu("BitShift", specialize=True)
def bit_shift(*, direction):
    left = direction == "LEFT"

    def kernel(x, y):
        check_shift(info_of(x), info_of(y))
        counts, bits = _counts(x, y)
        wide = counts >= bits
        # A count under the width, in X's type so NumPy keeps X's type.
        count = np.minimum(counts, bits - 1).astype(x.dtype)
        if left:
            return np.asarray(np.where(wide, x.dtype.type(0), np.left_shift(x, count)))
        shifted = np.right_shift(x, count)  # arithmetic for signed X: -1 or 0 at width - 1
        if x.dtype.kind == "u":
            shifted = np.where(wide, x.dtype.type(0), shifted)
        return np.asarray(shifted)
    return kernel


@register_cpu("BitwiseNot")
def bitwise_not(x):
    require_dtype(x, INT_BOOL)
    return np.asarray(np.invert(x))
