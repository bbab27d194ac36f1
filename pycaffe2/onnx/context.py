"""What a converter sees while it translates one node: the ops it emits, the
constants it makes, and what is known of each blob (value, shape, dtype).

Values are known for initializers, Constant nodes and whatever the translation
has computed from them (it runs each node whose inputs are all known, which is
constant folding); in the traced translation at a rep's first run, the fed
inputs are known too and every node runs. `require` on an unknown value raises
NeedValue, which sends the backend to the traced translation.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.core import CreateOperator
from pycaffe2.onnx.registry import NeedValue, Unsupported
from pycaffe2.proto import caffe2_pb2

# The fill op for each dtype a constant may have (Caffe2's GivenTensor*Fill family).
FILL_OPS = {
    np.dtype(np.float32): "GivenTensorFill",
    np.dtype(np.float64): "GivenTensorDoubleFill",
    np.dtype(np.int32): "GivenTensorIntFill",
    np.dtype(np.int64): "GivenTensorInt64Fill",
    np.dtype(np.bool_): "GivenTensorBoolFill",
    np.dtype(np.int16): "GivenTensorInt16Fill",
    np.dtype(np.uint8): "GivenTensorByteStringToUInt8Fill",
    np.dtype(np.float16): "GivenTensorFp16Fill",
}


def fill_op(name: str, array: np.ndarray):
    """The GivenTensor*Fill op that writes `array` into blob `name` (its Argument filled
    directly: a large initializer would crawl through the typed-argument path)."""
    array = np.asarray(array)
    op = caffe2_pb2.OperatorDef(type=FILL_OPS[array.dtype], output=[name])
    op.arg.add(name="shape").ints.extend(array.shape)
    values = op.arg.add(name="values")
    if array.dtype == np.uint8:
        values.strings.append(np.ascontiguousarray(array).tobytes())
    elif array.dtype.kind == "f":
        values.floats.extend(array.ravel().tolist())
    else:
        values.ints.extend(array.ravel().astype(np.int64).tolist())
    return op


class Context:
    """The converter API (docs/onnx.md). One per translation; `node` is the node
    being translated."""

    def __init__(self, state):
        self._state = state
        self.opset = state.opset
        self.model_file = state.model_file
        self.node = None

    # emitting
    def op(self, op_type: str, inputs, outputs, **args) -> None:
        inputs, outputs = list(inputs), list(outputs)
        while inputs and not inputs[-1]:
            inputs.pop()
        while outputs and not outputs[-1]:
            outputs.pop()
        if any(not name for name in inputs):
            raise Unsupported(f"{op_type} would read an omitted input in the middle of its inputs")
        outputs = [name or self.fresh("unused") for name in outputs]
        self._state.emit(CreateOperator(op_type, inputs, outputs, **args))

    def fresh(self, hint: str = "tmp") -> str:
        return self._state.fresh(hint)

    def constant(self, array, name: str | None = None) -> str:
        name = name or self.fresh("const")
        self._state.add_constant(name, np.asarray(array))
        return name

    def subgraph(self, graph, formal=(), name: str = "subgraph", formal_shapes: dict | None = None):
        """(net, outer names read) of a GraphProto attribute (If's branches, Loop's and Scan's
        bodies): a NetDef over the same blob names whose external inputs are `formal` (the
        graph's inputs) and the outer names it reads, which the control op must take as
        inputs too; `formal_shapes` gives the formal inputs' (dtype, shape) where known."""
        from pycaffe2.onnx.subgraph import translate_subgraph  # it builds Contexts of its own
        return translate_subgraph(self, graph, list(formal), name, formal_shapes)

    # knowing
    def value(self, name: str | None):
        if not name:
            return None
        return self._state.value(name)

    def require(self, name: str | None, what: str) -> np.ndarray:
        value = self.value(name)
        if value is None:
            if not name:
                raise Unsupported(f"{what} is missing")
            raise NeedValue(f"{what} ('{name}') is known only when the model runs")
        return value

    def shape(self, name: str | None):
        return self._state.shape(name) if name else None

    def rank(self, name: str) -> int:
        shape = self.shape(name)
        if shape is None:
            raise NeedValue(f"the rank of '{name}' is known only when the model runs")
        return len(shape)

    def dtype(self, name: str | None):
        return self._state.dtype(name) if name else None
