"""Caffe2's `core` module, thin: Net, CreateOperator, BlobReference, GradientRegistry.

    from pycaffe2 import core
    net = core.Net("mlp")
    h = net.FC(["X", "W", "b"], "h")
    y = net.HardSigmoid(h, "y", alpha=0.3)
    grad_map = net.AddGradientOperators([y])

A Net wraps a NetDef (`Proto()`); op methods exist for every op type with a
schema, and their keyword args are typed by it. The real work lives in
pycaffe2.schema, pycaffe2.gradient and pycaffe2.executor.
"""
from __future__ import annotations

from pycaffe2.gradient import BlockGradients, GetBackwardPass, GradientRegistry, only_update
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import closest_types, get_schema
from pycaffe2.schema.args import make_argument

__all__ = ["BlobReference", "BlockGradients", "CreateOperator", "GradientRegistry", "Net", "only_update"]


class BlobReference(str):
    """A blob name that remembers its net, so `blob.Relu([], "y")` adds to it."""

    def __new__(cls, name: str, net: Net | None = None):
        reference = super().__new__(cls, str(name))
        reference.net = net
        return reference

    def __getattr__(self, op_type: str):
        if op_type.startswith("_") or self.net is None:
            raise AttributeError(op_type)
        method = getattr(self.net, op_type)
        return lambda inputs=(), *args, **kwargs: method([self, *_as_list(inputs)], *args, **kwargs)


def _as_list(blobs) -> list[str]:
    if blobs is None:
        return []
    if isinstance(blobs, str):
        return [blobs]
    return [str(blob) for blob in blobs]


def CreateOperator(op_type: str, inputs, outputs, name: str = "", device_option=None,
                   engine: str = "", **kwargs) -> caffe2_pb2.OperatorDef:
    """An OperatorDef with its args typed by the op's schema (Caffe2's MakeArgument rules
    for args the schema does not know)."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=_as_list(inputs), output=_as_list(outputs))
    if name:
        op.name = name
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    if engine:
        op.engine = engine
    schema = get_schema(op_type)
    for arg_name, value in kwargs.items():
        spec = schema.args.get(arg_name) if schema else None
        op.arg.append(make_argument(arg_name, value, spec.types if spec else ()))
    return op


class Net:
    """A NetDef under construction, with Caffe2's method names."""

    def __init__(self, name_or_proto="net"):
        if isinstance(name_or_proto, caffe2_pb2.NetDef):
            self._net = caffe2_pb2.NetDef()
            self._net.CopyFrom(name_or_proto)
        else:
            self._net = caffe2_pb2.NetDef(name=str(name_or_proto))
        self._next_id = 0

    def Proto(self) -> caffe2_pb2.NetDef:
        return self._net

    def Name(self) -> str:
        return self._net.name

    def __str__(self) -> str:
        return self._net.name

    def Clone(self, name: str) -> Net:
        clone = Net(self._net)
        clone._net.name = name
        return clone

    def NextName(self, prefix: str = "blob") -> str:
        self._next_id += 1
        return f"{self._net.name}/{prefix}_{self._next_id}"

    def AddExternalInput(self, *blobs):
        self._net.external_input.extend(str(b) for b in blobs)
        return BlobReference(blobs[0], self) if len(blobs) == 1 else [BlobReference(b, self) for b in blobs]

    def AddExternalOutput(self, *blobs):
        self._net.external_output.extend(str(b) for b in blobs)

    def __getattr__(self, op_type: str):
        if op_type.startswith("_") or not op_type[:1].isupper():
            raise AttributeError(op_type)
        if get_schema(op_type) is None:
            guesses = closest_types(op_type)
            hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
            raise AttributeError(f"Net {self.Name()}: unknown op type {op_type}{hint}")
        return lambda inputs=(), outputs=None, **kwargs: self._add_op(op_type, inputs, outputs, **kwargs)

    def _add_op(self, op_type: str, inputs, outputs=None, **kwargs):
        if outputs is None or isinstance(outputs, int):
            outputs = [self.NextName(op_type.lower()) for _ in range(outputs or 1)]
        op = CreateOperator(op_type, inputs, outputs, **kwargs)
        self._net.op.append(op)
        references = [BlobReference(name, self) for name in op.output]
        return references[0] if len(references) == 1 else tuple(references)

    def AddGradientOperators(self, ys, skip: int = 0, block=()) -> dict:
        """Append the backward pass of `ys` (see pycaffe2.gradient) and return
        {blob: gradient blob}. `block` holds BlockGradients rules."""
        if isinstance(ys, dict):
            ys = {str(y): (None if g is None else str(g)) for y, g in ys.items()}
        else:
            ys = _as_list(ys)
        grad_ops, grad_map = GetBackwardPass(self._net.op[skip:], ys, block=block)
        self._net.op.extend(grad_ops)
        return {BlobReference(blob, self): BlobReference(grad, self) for blob, grad in grad_map.items()}


def ScopedBlobReference(name: str, net: Net | None = None) -> BlobReference:
    return BlobReference(name, net)

