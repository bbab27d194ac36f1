"""Constant: a fill in the init net, its value known to later converters."""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.registry import Unsupported, converter

# Constant's ways of giving its value, each with the NumPy dtype it means.
_SCALAR_ATTRS = {"value_float": np.float32, "value_floats": np.float32,
                 "value_int": np.int64, "value_ints": np.int64}


@converter("Constant")
def _constant(node, ctx):
    if node.has_attr("value"):
        value = np.asarray(node.attr("value"))
    else:
        found = [name for name in _SCALAR_ATTRS if node.has_attr(name)]
        if not found:
            given = ", ".join(sorted(node.attrs)) or "none"
            raise Unsupported(f"no value pycaffe2 can hold (attributes: {given}; strings and sparse "
                              "tensors are not supported)")
        value = np.asarray(node.attr(found[0]), dtype=_SCALAR_ATTRS[found[0]])
    ctx.constant(value, name=node.output(0))
