"""What the NetDef -> ONNX converters share: the registry, the view of one Caffe2 op
they read, and the graph they append ONNX nodes and constants to.

A converter is `fn(op: OpView, g: Graph) -> None`, registered with `@exports("Type", ...)`.
It reads the op's bound args (schema defaults filled in), its inputs' and outputs'
ONNX names, traced shapes and dtypes, and the values of inputs known at export time
(`op.const(i)`: initializers and what is computed from them only), and appends ONNX
nodes producing its outputs' ONNX names. It raises `Unexportable("what")` for what
ONNX cannot say; the driver prefixes the op's index and type and collects every such
fault before raising. The ONNX package is imported here only through `helper`
arguments the driver passes, so importing this module needs NumPy alone.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EXPORTERS: dict[str, Callable] = {}


class Unexportable(Exception):
    """This op (with these args, shapes or dtypes) has no ONNX spelling; the message says why."""


def exports(*op_types: str):
    """Register a converter for the Caffe2 op types given."""
    def register(fn):
        for op_type in op_types:
            EXPORTERS[op_type] = fn
        return fn
    return register


@dataclass
class Value:
    """One version of a blob in the single-assignment graph."""

    name: str  # its ONNX name
    shape: tuple[int, ...]
    dtype: np.dtype
    value: np.ndarray | None = None  # known at export time (a constant), else None

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class OpView:
    """A Caffe2 op as a converter sees it."""

    index: int
    type: str
    args: dict
    inputs: list[Value]
    outputs: list[Value]
    used: list[bool]  # per output: read by a later op or a graph output
    opset: int

    def x(self, i: int = 0) -> str:
        return self.inputs[i].name

    def y(self, i: int = 0) -> str:
        return self.outputs[i].name

    def const(self, i: int) -> np.ndarray | None:
        return self.inputs[i].value if i < len(self.inputs) else None

    def require(self, i: int, what: str) -> np.ndarray:
        """Input i's value, which must be known at export time (ONNX wants it constant here)."""
        value = self.const(i)
        if value is None:
            raise Unexportable(f"{what} (input {i}, '{self.inputs[i].name}') is computed at run time; "
                               "only a value the init net or constants give can be exported here")
        return value

    def order(self) -> str:
        return self.args.get("order") or "NCHW"

    def nchw_only(self) -> None:
        if self.order() != "NCHW":
            raise Unexportable(f"order {self.order()} (ONNX's {self.type} counterpart is channels-first: "
                               "NCHW only)")


class Graph:
    """ONNX nodes and initializers being built; names never clash with the net's."""

    def __init__(self, helper, numpy_helper, opset: int, taken: set[str]):
        self.helper, self.numpy_helper, self.opset = helper, numpy_helper, opset
        self.nodes: list = []
        self.initializers: list = []
        self.taken = set(taken)
        self._count = 0

    def fresh(self, hint: str = "tmp") -> str:
        while True:
            self._count += 1
            name = f"{hint}__{self._count}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def node(self, op_type: str, inputs, outputs, **attrs) -> list[str]:
        """Append one node; `outputs` may be names or a count of fresh names. Returns the outputs."""
        if isinstance(outputs, int):
            outputs = [self.fresh(op_type.lower()) for _ in range(outputs)]
        attrs = {key: value for key, value in attrs.items() if value is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), list(outputs),
                                                name=f"{op_type}_{len(self.nodes)}", **attrs))
        return list(outputs)

    def one(self, op_type: str, inputs, output: str | None = None, **attrs) -> str:
        """Append a one-output node; its output (fresh unless named)."""
        return self.node(op_type, inputs, [output] if output else 1, **attrs)[0]

    def constant(self, array, hint: str = "const", name: str | None = None) -> str:
        """An initializer holding `array`; its name."""
        name = name or self.fresh(hint)
        self.taken.add(name)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, values, hint: str = "ints") -> str:
        """A 1-D int64 constant (ONNX's type for shapes, axes, pads, starts/ends)."""
        return self.constant(np.asarray(list(values), dtype=np.int64).reshape(-1), hint)

    def scalar(self, value, dtype, hint: str = "scalar") -> str:
        return self.constant(np.asarray(value, dtype=dtype), hint)

    # --- spellings that moved from attributes to inputs across opsets
    def unsqueeze(self, x: str, axes, output: str | None = None) -> str:
        return self.one("Unsqueeze", [x, self.ints(axes, "axes")], output)

    def squeeze(self, x: str, axes, output: str | None = None) -> str:
        return self.one("Squeeze", [x, self.ints(axes, "axes")], output)

    def reshape(self, x: str, shape, output: str | None = None) -> str:
        """Reshape to a constant shape (0 copies a dim, -1 infers one, as Caffe2's)."""
        return self.one("Reshape", [x, self.ints(shape, "shape")], output)

    def reduce(self, op_type: str, x: str, axes, keepdims: int, output: str | None = None) -> str:
        """ReduceX over `axes` (None: all); axes became an input at opset 13 (ReduceSum) or 18."""
        as_input = self.opset >= (13 if op_type == "ReduceSum" else 18)
        if axes is None:
            return self.one(op_type, [x], output, keepdims=keepdims)
        if as_input:
            return self.one(op_type, [x, self.ints(axes, "axes")], output, keepdims=keepdims)
        return self.one(op_type, [x], output, axes=list(axes), keepdims=keepdims)


def canonical_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise Unexportable(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank
