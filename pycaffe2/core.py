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
import logging
import threading
import warnings
from typing import ClassVar

import numpy as np

from pycaffe2.core_devices import *  # multi-device rewriting (its __all__)
from pycaffe2.core_net import *  # Caffe2's net helpers, kept there (its __all__)
from pycaffe2.core_net import NetMethods, PlanMethods, StepMethods, record_traceback
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.gradient import BlockGradients, GetBackwardPass, GradientRegistry, GradientSlice, only_update
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import closest_types, get_schema
from pycaffe2.schema.args import make_argument
from pycaffe2.workspace import C  # noqa: F401 (Caffe2's core.C: the extension module's names)

__all__ = ["BlobReference", "BlockGradients", "CreateOperator", "CreatePythonOperator", "DeviceOption", "DeviceScope",
           "ExecutionStep", "GradientRegistry", "GradientSlice", "NameScope", "Net", "Plan", "ScopedBlobReference",
           "ScopedName", "execution_step", "only_update", "scoped_execution_step", "to_execution_step"]

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
def DeviceScope(device_option, node_name=None):
    """Ops created inside take this device option (unless they are given one);
    `node_name`, as in Caffe2, is set on a copy of it (or on a default one)."""
    old = CurrentDeviceScope()
    if node_name:
        scoped = caffe2_pb2.DeviceOption()
        if device_option:
            scoped.CopyFrom(device_option)
        scoped.node_name = node_name
        device_option = scoped
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

    def Net(self):
        return self.net

    def GetNameScope(self) -> str:
        """The NameScope part of the name: up to and including the last '/'."""
        return self[:self.rfind("/") + 1]

    def __add__(self, suffix):
        """As Caffe2's: a reference plus a string suffix is a reference (to the same net),
        so ops take `param + "_momentum"` as named; as a plain string it would get the
        NameScope prefix a second time (gpu_0/gpu_0/w_momentum)."""
        if not isinstance(suffix, str):
            return NotImplemented
        return BlobReference(str(self) + suffix, self.net)

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


def CreateOperator(op_type: str, inputs, outputs, name: str = "", control_input=None,
                   device_option=None, arg=None, engine: str | None = None, debug_info=None,
                   **kwargs) -> caffe2_pb2.OperatorDef:
    """An OperatorDef with its args typed by the op's schema (Caffe2's MakeArgument rules
    for args the schema does not know; NumPy values and ranges as plain lists and
    numbers). As in Caffe2, an arg given None is left out, `random_seed` goes into the
    device option and `arg` holds ready Arguments."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=_as_list(inputs), output=_as_list(outputs))
    if name:
        op.name = name
    op.control_input.extend(_as_list(control_input))
    device_option = device_option if device_option is not None else CurrentDeviceScope()
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    if engine:
        op.engine = engine
    if debug_info:
        op.debug_info = debug_info
    if kwargs.get("random_seed") is not None:
        op.device_option.random_seed = kwargs.pop("random_seed")
    op.arg.extend(arg or [])
    schema = get_schema(op_type)
    for arg_name, value in kwargs.items():
        if value is None:
            continue
        spec = schema.args.get(arg_name) if schema else None
        op.arg.append(make_argument(arg_name, value, spec.types if spec else ()))
    return op


def CreatePythonOperator(f, inputs, outputs, grad_f=None, pass_workspace=False, python_func_type=None,
                         *args, **kwargs) -> caffe2_pb2.OperatorDef:
    """A Python op calling f, registered in this process (pycaffe2.python_op)."""
    from pycaffe2 import python_op
    return python_op.CreatePythonOperator(f, inputs, outputs, grad_f, pass_workspace, python_func_type,
                                          *args, **kwargs)


class Net(NetMethods):
    """A NetDef under construction, with Caffe2's method names. As in Caffe2, every Net
    made in the process gets a name of its own: a second Net("train") (or a clone, or
    a Net made from a NetDef of a name in use) is named "train_1", then "train_2"."""

    _net_names_used: ClassVar[set[str]] = set()

    @staticmethod
    def _get_next_net_name(basename: str) -> str:
        name, next_id = basename, 1
        while name in Net._net_names_used:
            name, next_id = f"{basename}_{next_id}", next_id + 1
        Net._net_names_used.add(name)
        return name

    @staticmethod
    def _reset_used_names() -> None:
        """Forget the names taken so far (later Caffe2 has the same hook, for tests)."""
        Net._net_names_used = set()

    def __init__(self, name_or_proto="net"):
        self._net = caffe2_pb2.NetDef()
        if isinstance(name_or_proto, caffe2_pb2.NetDef):
            self._net.CopyFrom(name_or_proto)
        else:
            self._net.name = "net" if name_or_proto is None else str(name_or_proto)
        self._net.name = Net._get_next_net_name(self._net.name)
        self._next_id = 0

    def Proto(self) -> caffe2_pb2.NetDef:
        return self._net

    def Name(self) -> str:
        return self._net.name

    def __str__(self) -> str:
        return self._net.name

    def NextName(self, prefix: str = "blob", output_id=None) -> str:
        self._next_id += 1
        return ScopedName(f"{self._net.name}/{prefix}_{self._next_id}")

    def GetBlobRef(self, name: str) -> BlobReference:
        return BlobReference(name, self)

    def AddScopedExternalInputs(self, *blobs) -> list:
        """As Caffe2: always a list, even of one blob."""
        names = [ScopedName(b) for b in blobs]
        self.AddExternalInput(*names)
        return [BlobReference(name, self) for name in names]

    def AddExternalInput(self, *blobs):
        self._net.external_input.extend(str(b) for b in blobs)
        return BlobReference(blobs[0], self) if len(blobs) == 1 else [BlobReference(b, self) for b in blobs]

    def AddExternalOutput(self, *blobs):
        self._net.external_output.extend(str(b) for b in blobs)

    def Const(self, array, blob_out=None, dtype=None) -> BlobReference:
        """A blob holding `array` (converted to `dtype` when given), made by the GivenTensor
        fill of its type, as Caffe2's Net.Const; a Python bool becomes a ConstantFill."""
        if isinstance(array, bool):
            return self.ConstantFill([], blob_out or 1, dtype=caffe2_pb2.TensorProto.BOOL, value=array)
        array = np.asarray(array, dtype=dtype)
        fills = {"i4": "GivenTensorIntFill", "i8": "GivenTensorInt64Fill", "b1": "GivenTensorBoolFill"}
        fill = ("GivenTensorStringFill" if array.dtype.kind in "SUO"
                else fills.get(array.dtype.str[1:], "GivenTensorFill"))
        values = [v.encode() if isinstance(v, str) else v for v in array.ravel().tolist()]
        return self._add_op(fill, [], blob_out or 1, shape=list(array.shape), values=values)

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
        record_traceback(self._net.name, len(self._net.op) - 1)
        references = [BlobReference(name, self) for name in op.output]
        return references[0] if len(references) == 1 else tuple(references)

    def Python(self, f, grad_f=None, python_func_type=None, pass_workspace=False, grad_output_indices=None,
               grad_input_indices=None):
        """Register f (and grad_f) in this process and return a callable adding a Python op
        that runs it, as Caffe2's Net.Python (see pycaffe2.python_op)."""
        from pycaffe2.python_op import python_op_args
        args = python_op_args(f, grad_f, python_func_type, pass_workspace, grad_output_indices,
                              grad_input_indices)
        return lambda inputs=(), outputs=None, **kwargs: self._add_op("Python", inputs, outputs,
                                                                      **{**kwargs, **args})

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
        return {BlobReference(blob, self): self._gradient_reference(grad) for blob, grad in grad_map.items()}

    def _gradient_reference(self, grad):
        """A gradient as BlobReferences: one, or a GradientSlice of two (sparse)."""
        if isinstance(grad, GradientSlice):
            return GradientSlice(BlobReference(grad.indices, self), BlobReference(grad.values, self))
        return BlobReference(grad, self)


def ScopedBlobReference(name: str, net: Net | None = None) -> BlobReference:
    """A reference to `name` under the current NameScope."""
    return BlobReference(ScopedName(name), net)


class ExecutionStep(StepMethods):
    """Caffe2's ExecutionStep builder: nets or substeps (not both), run num_iter times
    or until should_stop_blob says stop."""

    def __init__(self, name: str, nets=None, num_iter: int | None = None):
        self._step = caffe2_pb2.ExecutionStep(name=name or "step")
        self._nets: list = []
        self._substeps: list[ExecutionStep] = []
        for net in ([] if nets is None else nets if isinstance(nets, (list, tuple)) else [nets]):
            self.AddNet(net)
        if num_iter is not None:
            self._step.num_iter = num_iter

    def Name(self) -> str:
        return self._step.name

    def __str__(self) -> str:
        return self._step.name

    def HasNets(self) -> bool:
        return len(self._step.network) > 0

    def HasSubsteps(self) -> bool:
        return len(self._step.substep) > 0

    def AddNet(self, net) -> ExecutionStep:
        if self.HasSubsteps():
            raise ValueError("Cannot have both network and substeps.")
        self._nets.append(net)
        self._step.network.append(net.Name() if isinstance(net, Net) else net.name)
        return self

    def AddSubstep(self, substep) -> ExecutionStep:
        """A substep (an ExecutionStep or its proto); an empty ExecutionStep adds nothing."""
        if self.HasNets():
            raise ValueError("Cannot have both network and substeps.")
        if isinstance(substep, ExecutionStep):
            if not substep.HasNets() and not substep.HasSubsteps():
                return self
            self._nets.extend(substep._nets)
            self._substeps.append(substep)
            substep = substep.Proto()
        self._step.substep.add().CopyFrom(substep)
        return self

    def Substeps(self) -> list:
        return self._substeps

    def SetIter(self, num_iter: int) -> None:
        self._step.num_iter = num_iter

    def SetConcurrentSubsteps(self, concurrent: bool) -> None:
        if self.HasNets():
            raise ValueError("Cannot have both network and substeps.")
        self._step.concurrent_substeps = concurrent

    def SetShouldStopBlob(self, blob) -> None:
        self._step.should_stop_blob = str(blob)

    def SetOnlyOnce(self, only_once: bool) -> None:
        self._step.only_once = only_once

    def SetNumConcurrentInstances(self, count: int) -> None:
        self._step.num_concurrent_instances = count

    def SetCreateWorkspace(self, create_workspace: bool) -> None:
        self._step.create_workspace = create_workspace

    def RunEveryMillis(self, interval: int) -> None:
        self._step.run_every_ms = interval

    def SetReportNet(self, report_net, report_interval: int) -> None:
        self._nets.append(report_net)
        self._step.report_net = str(report_net)
        self._step.report_interval = report_interval

    def Proto(self) -> caffe2_pb2.ExecutionStep:
        return self._step

    def Nets(self) -> list:
        return self._nets


def execution_step(default_name: str, steps_or_nets, num_iter: int | None = None, report_net=None,
                   report_interval=None, concurrent_substeps=None, should_stop_blob=None,
                   only_once=None, num_concurrent_instances=None, create_workspace=False,
                   run_every_ms=None) -> ExecutionStep:
    """Caffe2's step helper: `steps_or_nets` is None, a Net, an ExecutionStep or a list of
    either; num_iter and should_stop_blob exclude each other, and with neither the
    step runs once."""
    if should_stop_blob is not None and num_iter is not None:
        raise ValueError("Cannot set both should_stop_blob and num_iter.")
    if should_stop_blob is None and num_iter is None:
        num_iter = 1
    step = ExecutionStep(default_name)
    settings = [(step.SetShouldStopBlob, should_stop_blob), (step.SetIter, num_iter),
                (step.SetOnlyOnce, only_once), (step.SetConcurrentSubsteps, concurrent_substeps),
                (step.SetNumConcurrentInstances, num_concurrent_instances),
                (step.SetCreateWorkspace, create_workspace or None), (step.RunEveryMillis, run_every_ms or None)]
    for setter, value in settings:
        if value is not None:
            setter(value)
    if report_net is not None:
        if report_interval is None:
            raise ValueError("report_net needs report_interval")
        step.SetReportNet(report_net, report_interval)
    if isinstance(steps_or_nets, ExecutionStep):
        step.AddSubstep(steps_or_nets)
    elif isinstance(steps_or_nets, Net):
        step.AddNet(steps_or_nets)
    elif isinstance(steps_or_nets, list) and all(isinstance(x, Net) for x in steps_or_nets):
        for net in steps_or_nets:
            step.AddNet(net)
    elif isinstance(steps_or_nets, list):
        for item in steps_or_nets:
            step.AddSubstep(to_execution_step(item))
    elif steps_or_nets:
        raise ValueError("steps_or_nets must be a step, a net, or a list of nets or steps.")
    return step


def to_execution_step(step_or_nets, default_name: str | None = None) -> ExecutionStep:
    """A step for a step, a net, a list of them or a NetBuilder (its nets and blocks
    in order, stopping when its stop blob says so)."""
    from pycaffe2.net_builder import NetBuilder
    if isinstance(step_or_nets, ExecutionStep):
        return step_or_nets
    if not default_name and isinstance(step_or_nets, Net):
        default_name = step_or_nets.Name()
    stop_blob = None
    if isinstance(step_or_nets, NetBuilder):
        default_name = default_name or step_or_nets.name
        stop_blob = step_or_nets._stop_blob
        step_or_nets = step_or_nets.get()
    return execution_step(default_name, step_or_nets, should_stop_blob=stop_blob)


def scoped_execution_step(name: str, *args, **kwargs) -> ExecutionStep:
    """execution_step with the step's name under the current NameScope."""
    return execution_step(ScopedName(name) if name else name, *args, **kwargs)


class Plan(PlanMethods):
    """Caffe2's Plan builder: the nets its steps name travel with it (PlanDef.network)."""

    def __init__(self, name_or_step):
        self._plan = caffe2_pb2.PlanDef()
        self._net_names: set[str] = set()
        self._nets, self._steps = [], []
        if isinstance(name_or_step, ExecutionStep):
            self._plan.name = name_or_step.Name()
            self.AddStep(name_or_step)
        else:
            self._plan.name = str(name_or_step)

    def AddNets(self, nets) -> None:
        for net in nets:
            proto = net.Proto() if isinstance(net, Net) else net
            if proto.name not in self._net_names:
                self._net_names.add(proto.name)
                self._nets.append(net)
                self._plan.network.add().CopyFrom(proto)

    def AddStep(self, step) -> None:
        if isinstance(step, ExecutionStep):
            if not step.HasNets() and not step.HasSubsteps():
                return  # as in Caffe2: an empty step is left out
            self.AddNets(step.Nets())
            self._steps.append(step)
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


# Caffe2's glog levels (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL; below 0 verbose) as logging levels.
_LOG_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR, 3: logging.CRITICAL}
# C++ flags scripts pass that have no meaning here (threads, allocators, memory reports): accepted quietly.
_IGNORED_FLAGS = frozenset((
    "caffe2_omp_num_threads", "caffe2_mkl_num_threads", "caffe2_cpu_allocator_do_zero_fill",
    "caffe2_print_blob_sizes_at_exit", "caffe2_keep_on_shrink", "caffe2_max_keep_on_shrink_memory",
    "caffe2_gpu_memory_tracking", "caffe2_cuda_memory_pool", "caffe2_report_cpu_memory_usage",
    "caffe2_print_stacktraces", "caffe2_cuda_full_device_control", "caffe2_net_async_thread_pool_size",
    "caffe2_mkl_implicit_layout_change", "logtostderr", "alsologtostderr", "minloglevel", "v"))


_global_init_args: list[str] = []


def GetGlobalInitArgs() -> list[str]:
    """The args of the last GlobalInit call (empty before one)."""
    return list(_global_init_args)


def GlobalInit(args) -> bool:
    """Caffe2's flag parsing: `args[0]` is the program name, the rest `--flag=value`.
    `--caffe2_log_level=N` sets the "pycaffe2" logger's level (glog's numbers);
    other known C++ flags are accepted and do nothing; anything else gets a warning."""
    log = logging.getLogger("pycaffe2")
    _global_init_args[:] = [str(arg) for arg in args]
    for arg in list(args)[1:]:
        name, _, value = str(arg).lstrip("-").partition("=")
        if not str(arg).startswith("--") or not name:
            warnings.warn(f"GlobalInit: ignoring {arg!r}, which is not a --flag=value", stacklevel=2)
        elif name == "caffe2_log_level":
            try:
                level = int(value)
            except ValueError:
                raise PyCaffe2Error(f"GlobalInit: --caffe2_log_level needs an integer, got {value!r}") from None
            log.setLevel(logging.DEBUG if level < 0 else _LOG_LEVELS.get(min(level, 3)))
        elif name not in _IGNORED_FLAGS:
            warnings.warn(f"GlobalInit: unknown flag --{name} ignored", stacklevel=2)
    return True
