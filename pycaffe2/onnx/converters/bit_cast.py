"""BitCast (opset 26): pycaffe2's BitCast, its `to` the NumPy name of ONNX's type."""
from __future__ import annotations

from pycaffe2.onnx.registry import Unsupported, converter, np_dtype


@converter("BitCast", since=26)
def _bit_cast(node, ctx):
    to = np_dtype(node.attr("to", 0))
    if to is None:
        raise Unsupported(f"to={node.attr('to')} (a type NumPy holds no plain array of)")
    ctx.op("BitCast", [node.input(0)], node.outputs, to=to.name)
