"""The converter registry: which function turns an ONNX node into pycaffe2 ops.

A converter is registered per ONNX op type and the opset its behaviour starts at;
a model of opset N gets, per type, the converter with the highest `since` <= N,
as Caffe2's backend picked its versioned handlers. Converters live in
`converters/<area>.py` and emit ops through the translation context
(`context.Context`); the API is described in docs/onnx.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The newest opset the converters are written against; a newer model is translated
# as this one, with a warning (new versions of an op usually only widen its types).
MAX_OPSET = 28
MIN_OPSET = 1

_CONVERTERS: dict[str, list[tuple[int, object]]] = {}


class Unsupported(Exception):
    """A node pycaffe2 cannot translate: the message says what (an attribute value,
    a dtype); translation adds the file, node index, type and name."""


class NeedValue(Exception):
    """A converter needs a value or shape known only when the model runs: the
    backend translates again at the first run, with every value known."""


def converter(*op_types: str, since: int = 1):
    """Register the decorated function as the converter of `op_types` from opset `since`."""
    def register(function):
        for op_type in op_types:
            versions = _CONVERTERS.setdefault(op_type, [])
            if any(existing == since for existing, _ in versions):
                raise ValueError(f"two converters for ONNX {op_type} since opset {since}")
            versions.append((since, function))
            versions.sort(key=lambda item: item[0], reverse=True)
        return function
    return register


def lookup(op_type: str, opset: int):
    """The converter of `op_type` for a model of `opset`, or None."""
    _load_converters()
    for since, function in _CONVERTERS.get(op_type, ()):
        if since <= opset:
            return function
    return None


def known_op_types() -> list[str]:
    _load_converters()
    return sorted(_CONVERTERS)


def _load_converters() -> None:
    from pycaffe2.onnx import converters  # noqa: F401  (registers on import)


@dataclass
class Node:
    """A read-only view of an ONNX NodeProto with its attributes decoded."""
    op_type: str
    name: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    opset: int = MAX_OPSET
    index: int = 0

    def input(self, i: int) -> str | None:
        return self.inputs[i] if i < len(self.inputs) and self.inputs[i] else None

    def output(self, i: int) -> str | None:
        return self.outputs[i] if i < len(self.outputs) and self.outputs[i] else None

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def has_attr(self, name: str) -> bool:
        return name in self.attrs

    def describe(self) -> str:
        return f"{self.op_type} {self.name!r}" if self.name else self.op_type


def decode_node(proto, opset: int, index: int) -> Node:
    """A Node from a NodeProto: attribute values as Python numbers, strings,
    lists and NumPy arrays (tensors); graphs stay GraphProtos. Unsupported for an
    attribute that cannot be decoded (a damaged tensor, an undefined type)."""
    from onnx import AttributeProto, helper

    from pycaffe2.onnx.checks import tensor_array
    attrs = {}
    for attribute in proto.attribute:
        what = f"attribute {attribute.name!r}"
        if attribute.ref_attr_name:
            raise Unsupported(f"{what} refers to a function attribute (only function bodies may)")
        kind = attribute.type
        if kind == AttributeProto.TENSOR:
            value = tensor_array(attribute.t, what)
        elif kind == AttributeProto.TENSORS:
            value = [tensor_array(t, f"{what}[{i}]") for i, t in enumerate(attribute.tensors)]
        elif kind in (AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS):
            raise Unsupported(f"{what} is a sparse tensor")
        elif kind == AttributeProto.UNDEFINED:  # ONNX reads it as None: a converter would trip on it
            raise Unsupported(f"{what} cannot be decoded: it has no type")
        elif kind in (AttributeProto.TYPE_PROTO, AttributeProto.TYPE_PROTOS):
            value = helper.get_attribute_value(attribute)
        else:
            try:
                value = helper.get_attribute_value(attribute)
            except Exception as exc:  # noqa: BLE001  (an attribute of no type, or a type ONNX lacks)
                raise Unsupported(f"{what} cannot be decoded (type {kind}): {exc}") from None
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [item.decode("utf-8", "replace") for item in value]
        attrs[attribute.name] = value
    return Node(proto.op_type, proto.name, proto.domain, list(proto.input), list(proto.output),
                attrs, opset, index)


def np_dtype(elem_type: int) -> np.dtype | None:
    """The NumPy dtype of an ONNX TensorProto element type, None for the ones NumPy lacks."""
    from onnx import helper
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None
    # ml_dtypes' float8/bfloat16/int4 map onto NumPy void/structured types: none of ours
    return dtype if dtype.kind in "biufc" else None
