"""Caffe2's `core` module, thin: Net, CreateOperator, BlobReference, NameScope,
DeviceScope, Plan / ExecutionStep, GradientRegistry.

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

import contextlib
import threading

from pycaffe2.gradient import BlockGradients, GetBackwardPass, GradientRegistry, only_update
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import closest_types, get_schema
from pycaffe2.schema.args import make_argument

__all__ = ["BlobReference", "BlockGradients", "CreateOperator", "DeviceOption", "DeviceScope",
           "ExecutionStep", "GradientRegistry", "NameScope", "Net", "Plan", "ScopedBlobReference",
           "ScopedName", "only_update"]

DataType = caffe2_pb2.TensorProto  # core.DataType.INT64 etc., as in Caffe2

_scope = threading.local()  # per thread, as in Caffe2: the name prefix and the device option


def CurrentNameScope() -> str:
    return getattr(_scope, "name", "")


def CurrentDeviceScope():
    return getattr(_scope, "device", None)


@contextlib.contextmanager
def NameScope(prefix: str, reset: bool = False):
    """Blob names made inside get `prefix/` in front (nested scopes join with '/')."""
    old = CurrentNameScope()
    prefix = str(prefix)
    _scope.name = (prefix + "/" if prefix else "") if reset else old + (prefix + "/" if prefix else "")
    try:
        yield
    finally:
        _scope.name = old


@contextlib.contextmanager
def DeviceScope(device_option):
    """Ops created inside take this device option (unless they are given one)."""
    old = CurrentDeviceScope()
    _scope.device = device_option
    try:
        yield
    finally:
        _scope.device = old


def ScopedName(name: str) -> str:
    return CurrentNameScope() + str(name)


def DeviceOption(device_type: int, device_id: int = 0, random_seed=None, node_name=None,
                 numa_node_id=None, extra_info=None) -> caffe2_pb2.DeviceOption:
    option = caffe2_pb2.DeviceOption(device_type=device_type, device_id=device_id)
    if random_seed is not None:
        option.random_seed = random_seed
    if node_name is not None:
        option.node_name = node_name
    if numa_node_id is not None:
        option.numa_node_id = numa_node_id
    if extra_info:
        option.extra_info.extend(extra_info)
    return option


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


def _scoped(blobs) -> list[str]:
    """As Caffe2's Net methods do: plain-string names get the NameScope prefix,
    BlobReferences are taken as they are."""
    blobs = [] if blobs is None else [blobs] if isinstance(blobs, str) else blobs
    return [b if isinstance(b, BlobReference) else ScopedName(b) for b in blobs]


def CreateOperator(op_type: str, inputs, outputs, name: str = "", device_option=None,
                   engine: str = "", **kwargs) -> caffe2_pb2.OperatorDef:
    """An OperatorDef with its args typed by the op's schema (Caffe2's MakeArgument rules
    for args the schema does not know)."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=_as_list(inputs), output=_as_list(outputs))
    if name:
        op.name = name
    device_option = device_option if device_option is not None else CurrentDeviceScope()
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

    def NextName(self, prefix: str = "blob", output_id=None) -> str:
        self._next_id += 1
        return ScopedName(f"{self._net.name}/{prefix}_{self._next_id}")

    def GetBlobRef(self, name: str) -> BlobReference:
        return BlobReference(name, self)

    def AddScopedExternalInputs(self, *blobs):
        return self.AddExternalInput(*[ScopedName(b) for b in blobs])

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
        else:
            outputs = _scoped(outputs)
        op = CreateOperator(op_type, _scoped(inputs), outputs, **kwargs)
        self._net.op.append(op)
        references = [BlobReference(name, self) for name in op.output]
        return references[0] if len(references) == 1 else tuple(references)

    def AddGradientOperators(self, ys, skip: int = 0, block=(), params=None) -> dict:
        """Append the backward pass of `ys` (see pycaffe2.gradient) and return
        {blob: gradient blob}. `block` holds BlockGradients rules; `params` names
        the parameters (names or glob patterns), which only_update needs."""
        if isinstance(ys, dict):
            ys = {str(y): (None if g is None else str(g)) for y, g in ys.items()}
        else:
            ys = _as_list(ys)
        if params is not None and not callable(params):
            params = _as_list(params)
        grad_ops, grad_map = GetBackwardPass(self._net.op[skip:], ys, block=block, params=params)
        self._net.op.extend(grad_ops)
        return {BlobReference(blob, self): BlobReference(grad, self) for blob, grad in grad_map.items()}


def ScopedBlobReference(name: str, net: Net | None = None) -> BlobReference:
    """A reference to `name` under the current NameScope."""
    return BlobReference(ScopedName(name), net)


class ExecutionStep:
    """Caffe2's ExecutionStep builder: nets or substeps, run num_iter times."""

    def __init__(self, name: str, nets=None, num_iter: int | None = None):
        self._step = caffe2_pb2.ExecutionStep(name=name)
        self._nets: list[Net] = []
        for net in ([] if nets is None else nets if isinstance(nets, (list, tuple)) else [nets]):
            self.AddNet(net)
        if num_iter is not None:
            self._step.num_iter = num_iter

    def AddNet(self, net) -> None:
        self._nets.append(net)
        self._step.network.append(net.Name() if isinstance(net, Net) else net.name)

    def AddSubstep(self, substep: "ExecutionStep") -> None:
        self._step.substep.add().CopyFrom(substep.Proto())
        self._nets.extend(substep._nets)

    def SetIter(self, num_iter: int) -> None:
        self._step.num_iter = num_iter

    def SetConcurrentSubsteps(self, concurrent: bool) -> None:
        self._step.concurrent_substeps = concurrent

    def SetShouldStopBlob(self, blob) -> None:
        self._step.should_stop_blob = str(blob)

    def Proto(self) -> caffe2_pb2.ExecutionStep:
        return self._step

    def Nets(self) -> list:
        return self._nets


def execution_step(name: str, nets, num_iter: int | None = None) -> ExecutionStep:
    return ExecutionStep(name, nets, num_iter)


class Plan:
    """Caffe2's Plan builder: the nets its steps name travel with it (PlanDef.network)."""

    def __init__(self, name: str):
        self._plan = caffe2_pb2.PlanDef(name=name)
        self._net_names: set[str] = set()

    def AddNets(self, nets) -> None:
        for net in nets:
            proto = net.Proto() if isinstance(net, Net) else net
            if proto.name not in self._net_names:
                self._net_names.add(proto.name)
                self._plan.network.add().CopyFrom(proto)

    def AddStep(self, step) -> None:
        if isinstance(step, ExecutionStep):
            self.AddNets(step.Nets())
            step = step.Proto()
        self._plan.execution_step.add().CopyFrom(step)

    def Proto(self) -> caffe2_pb2.PlanDef:
        return self._plan



def IsGPUDeviceType(device_type: int) -> bool:
    return device_type in (caffe2_pb2.PROTO_CUDA, caffe2_pb2.PROTO_HIP)


def IsOperator(op_type: str) -> bool:
    """Whether `op_type` has a schema (Caffe2: is registered)."""
    return get_schema(op_type) is not None


def IsOperatorWithEngine(op_type: str, engine: str) -> bool:
    return IsOperator(op_type)  # pycaffe2 has no engines: every op runs whatever engine is asked
