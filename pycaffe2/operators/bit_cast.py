"""NumPy kernel of the bit_cast family: BitCast (a tensor's bytes as another type of
one width). The width check is the schema's (schema/inference/bit_cast.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.bit_cast import same_width


@register_cpu("BitCast")
def bit_cast(x, *, to):
    same_width(x.dtype.name, to)
    # ONNX fixes the byte order as little-endian; NumPy views use the machine's own
    little = x.astype(x.dtype.newbyteorder("<"), order="C", copy=False)
    return little.view(np.dtype(to).newbyteorder("<")).astype(np.dtype(to))  # a copy: outputs never alias inputs
