"""Caffe2's `workspace` module: the same functions over a current Workspace.

    from pycaffe2 import workspace
    workspace.FeedBlob("X", np.ones((2, 3), np.float32))
    workspace.RunNetOnce(net)
    workspace.FetchBlob("Y")

The only state is the set of named workspaces and which one is current;
`pycaffe2.executor.Workspace` can be used directly instead, several side by side.

ResetWorkspace(root_folder) sets the workspace's root folder, under which
Save, Load, Checkpoint and DBExists (absolute_path=0) and Print's and
Summarize's to_file logs take relative file names, as in Caffe2 (default ".",
the working folder; ResetWorkspace() keeps the current one).

Nothing here confines the files a net's ops read and write (Save, Load,
CreateDB, Print to_file): as in Caffe2, a net run from Python is trusted like
the script that runs it. `pycaffe2 run` is what checks a model's paths against
its data roots before anything runs (`pycaffe2.run.confine`).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os

import numpy as np

from pycaffe2.c_module import BoundWorkspace, ExtensionModule, _message, cuda_works  # noqa: F401 (BoundWorkspace: test_util's)
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.predictor.predictor import Predictor  # noqa: F401 (Caffe2 spells it workspace.Predictor)
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor  # Caffe2's workspace.Int8Tensor (data, scale, zero_point)

_log = logging.getLogger(__name__)
_workspaces: dict[str, Workspace] = {"default": Workspace("default")}
_current = "default"


# Caffe2's C++ extension module (Workspace(), blobs(), run_net, global_init, ...):
# pycaffe2.c_module, over this module's current workspace.
C = ExtensionModule(lambda: _workspaces[_current])


def CurrentWorkspace() -> str:
    return _current


def Workspaces() -> list[str]:
    return sorted(_workspaces)


def SwitchWorkspace(name: str, create_if_missing: bool = False) -> None:
    global _current
    if name not in _workspaces:
        if not create_if_missing:
            raise PyCaffe2Error(f"Workspace {name} does not exist (pass create_if_missing=True)")
        _workspaces[name] = Workspace(name)
    _current = name


def ResetWorkspace(root_folder=None) -> bool:
    """Replace the current workspace by an empty one: all blobs and nets go. Its root
    folder becomes `root_folder` (made when missing), or stays as it was when None."""
    if root_folder is None:
        root_folder = RootFolder()
    else:
        if not isinstance(root_folder, (str, os.PathLike)) or not os.fspath(root_folder):
            raise PyCaffe2Error(f"ResetWorkspace: root_folder must be a folder path, got {root_folder!r}")
        root_folder = os.fspath(root_folder)
        try:
            os.makedirs(root_folder, exist_ok=True)
        except OSError as exc:
            raise PyCaffe2Error(f"ResetWorkspace: cannot make root folder {root_folder!r}: {exc}") from None
    _workspaces[_current] = Workspace(_current, root_folder=root_folder)
    return True


def RootFolder() -> str:
    """The current workspace's root folder ("." unless ResetWorkspace set another)."""
    return _workspaces[_current].root_folder


def FeedBlob(name, arr, device_option=None) -> bool:
    """Feed under `device_option`, or the current core.DeviceScope, as in Caffe2."""
    if device_option is None:
        from pycaffe2.core import CurrentDeviceScope
        device_option = CurrentDeviceScope()
    return C().FeedBlob(str(name), arr, device_option)


def FetchBlob(name):
    return C().FetchBlob(str(name))


def FetchInt8Blob(name) -> Int8Tensor:
    """An Int8 blob (what Int8Quantize, Int8Conv, ... write) as Int8Tensor(data, scale,
    zero_point); FetchBlob gives the same. A blob of another kind is refused."""
    value = FetchBlob(name)
    if not isinstance(value, Int8Tensor):
        raise PyCaffe2Error(f"You are not fetching an Int8Blob {name}. Please use FetchBlob")
    return value


def FetchInt8BlobRealVal(name) -> np.ndarray:
    """An Int8 blob's real values, float32: scale * (data - zero_point)."""
    return FetchInt8Blob(name).dequantize()


def FetchBlobs(names) -> list:
    return C().FetchBlobs([str(n) for n in names])


def HasBlob(name) -> bool:
    return C().HasBlob(str(name))


def CreateBlob(name) -> bool:
    return C().CreateBlob(str(name))


def Blobs() -> list[str]:
    return C().Blobs()


def Nets() -> list[str]:
    return C().Nets()


def CreateNet(net, overwrite: bool = False, input_blobs=None, *, free_blobs: bool = False, keep=(),
              optimize: bool = False) -> bool:
    """`net`: a core.Net, a NetDef or its serialized bytes (Caffe2's StringifyProto forms).
    `free_blobs`, `keep`: drop blobs after their last use; `optimize`: apply the inference
    transforms first (both: executor Workspace.CreateNet)."""
    return C().CreateNet(_message(net, caffe2_pb2.NetDef), overwrite, input_blobs, free_blobs=free_blobs,
                         keep=keep, optimize=optimize)


def RunNet(name, num_iter: int = 1, allow_fail: bool = False) -> bool:
    return C().RunNet(name.Name() if hasattr(name, "Name") else name, num_iter, allow_fail)


def RunNetOnce(net) -> bool:
    return C().RunNetOnce(_message(net, caffe2_pb2.NetDef))


def RunPlan(plan_or_step) -> bool:
    """A core.Plan, a PlanDef or its serialized bytes; or one core.ExecutionStep, run as a
    plan of its own with its nets (as Caffe2), or an ExecutionStep proto."""
    from pycaffe2.core import ExecutionStep, Plan
    if isinstance(plan_or_step, ExecutionStep):
        plan_or_step = Plan(plan_or_step)
    if isinstance(plan_or_step, caffe2_pb2.ExecutionStep):
        return C().RunPlan(plan_or_step)
    return C().RunPlan(_message(plan_or_step, caffe2_pb2.PlanDef))


def RunOperatorOnce(op) -> bool:
    return C().RunOperatorOnce(_message(op, caffe2_pb2.OperatorDef))


def RunOperatorMultiple(op, num_runs: int) -> bool:
    return C.run_operator_multiple(op, num_runs)


def RunOperatorsOnce(ops) -> bool:
    return C().RunOperatorsOnce([_message(op, caffe2_pb2.OperatorDef) for op in ops])


def RunPlanOnce(plan_or_step) -> bool:
    return RunPlan(plan_or_step)


def RegisteredOperators() -> list[str]:
    """Every op type with a kernel (CPU or CUDA)."""
    return C.registered_operators()


def __getattr__(name: str):
    """`has_gpu_support` / `has_cuda_support`, asked lazily: probing PyCUDA costs time."""
    if name in ("has_gpu_support", "has_cuda_support"):
        return cuda_works()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


has_hip_support = False
GpuDeviceType = caffe2_pb2.PROTO_CUDA


def NumGpuDevices() -> int:
    return C.num_cuda_devices()


NumCudaDevices = NumGpuDevices


def GetCuDNNVersion() -> int:
    """0: pycaffe2's CUDA kernels are its own; it never uses cuDNN."""
    return 0


def GetNetName(net) -> str:
    """The name a net (a core.Net or a NetDef) runs under; a name is its own."""
    if isinstance(net, str):
        return net
    return net.Name() if hasattr(net, "Name") else net.name


def InferShapesAndTypes(nets, blob_dimensions=None, nets_proto=False, blob_types=None):
    """Caffe2's shape and type inference over `nets` (core.Nets, NetDefs or their bytes), in order.

    Starts from the current workspace's blobs, or, when `blob_dimensions`
    (blob -> dims) is given, from that map alone, with `blob_types` (blob ->
    TensorProto data type, default FLOAT). Returns (blob -> list of dims, blob ->
    TensorProto data type) for every blob whose shape is known, inputs included.
    As in Caffe2, when the shapes cannot work (an op's inference fails) the error
    is logged and both dicts come back empty. `nets_proto` is accepted for
    Caffe2's signature; NetDefs and core.Nets are told apart by themselves.
    """
    from pycaffe2.schema.bind import infer_op
    from pycaffe2.schema.inference import ShapeError, TensorInfo
    from pycaffe2.tensor_proto import DATA_TYPES, dtype_of
    known = {}
    if blob_dimensions is None:
        for name in Blobs():
            value = C().blobs.get(name)
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                known[name] = TensorInfo(tuple(value.shape), np.dtype(value.dtype).name)
    for name, dims in (blob_dimensions or {}).items():
        dtype = (blob_types or {}).get(name, caffe2_pb2.TensorProto.FLOAT)
        known[name] = TensorInfo(tuple(int(d) for d in dims), dtype_of(dtype).name)
    for net in (_message(n, caffe2_pb2.NetDef) for n in nets):
        for index, op in enumerate(net.op):
            try:
                outputs = infer_op(op, [known.get(i) for i in op.input])
            except ShapeError as exc:
                _log.error("Shape inference error in op %d (%s) of net %s: %s; returning empty "
                           "results", index, op.type, net.name or "(unnamed)", exc)
                return {}, {}
            for name, info in zip(op.output, outputs):
                if info is not None and info.shape is not None:
                    known[name] = info
                else:
                    known.pop(name, None)
    shapes = {name: list(info.shape) for name, info in known.items()}
    types = {name: DATA_TYPES.get(np.dtype(info.dtype), caffe2_pb2.TensorProto.UNDEFINED)
             for name, info in known.items()}
    return shapes, types


def GlobalInit(args) -> bool:
    """core.GlobalInit: --caffe2_log_level sets pycaffe2's log level; C++-only flags do nothing."""
    from pycaffe2.core import GlobalInit as global_init
    return global_init(args)


@contextlib.contextmanager
def WorkspaceGuard(name: str):
    """Switch to workspace `name` (made if missing) for the block, then back."""
    previous = CurrentWorkspace()
    SwitchWorkspace(name, True)
    try:
        yield
    finally:
        SwitchWorkspace(previous)


def SerializeBlob(name) -> bytes:
    """The blob as BlobProto bytes (one chunk), as Caffe2's SerializeBlob."""
    from pycaffe2.db import serialize_blob
    (_, data), = serialize_blob(str(name), FetchBlob(name), chunk_size=1 << 62)
    return data


def DeserializeBlob(name, serialized: bytes) -> bool:
    from pycaffe2.db import BlobAssembler
    assembler = BlobAssembler("DeserializeBlob")
    assembler.add(str(name), str(name), serialized)
    return FeedBlob(name, assembler.finish()[str(name)])


class _Blobs:
    """`workspace.blobs`: [] fetches and feeds, `in` asks HasBlob, len and iter list the blobs."""

    def __getitem__(self, name):
        return FetchBlob(name)

    def __setitem__(self, name, value) -> None:
        FeedBlob(name, value)

    def __contains__(self, name) -> bool:
        return HasBlob(name)

    def __len__(self) -> int:
        return len(Blobs())

    def __iter__(self):
        return iter(Blobs())


blobs = _Blobs()


def _proto(obj):
    """Accept core.Net-like objects (with .Proto()) as well as raw protos."""
    return obj.Proto() if hasattr(obj, "Proto") else obj


# The rest of Caffe2's workspace names.
logger = _log
is_asan = False  # pycaffe2 is not built with the address sanitizer: it is not built at all
operator_tracebacks: dict = collections.defaultdict(dict)  # net -> op index -> [(file, line, function)]


def GetNameScope() -> str:
    from pycaffe2.core import CurrentNameScope
    return CurrentNameScope()


def StringifyProto(obj) -> bytes:
    """A proto (or an object with Proto()) serialized; a string is returned as it is."""
    from google.protobuf.message import Message
    if isinstance(obj, (str, bytes)):
        return obj
    if isinstance(obj, Message) or hasattr(obj, "Proto"):
        return _proto(obj).SerializeToString()
    raise ValueError(f"Unexpected argument to StringifyProto of type {type(obj).__name__}")


def _stringify_name(name, expected_type: str) -> str:
    if isinstance(name, str):
        return str(name)
    if type(name).__name__ != expected_type:
        raise TypeError(f"Expected a string or {expected_type}, got {type(name).__name__}")
    return str(name)


def StringifyBlobName(name) -> str:
    return _stringify_name(name, "BlobReference")


def StringifyNetName(name) -> str:
    return _stringify_name(name, "Net")


def CallWithExceptionIntercept(func, op_id_fetcher, net_name, *args, **kwargs):
    """Call func; if it raises, print the Python traceback recorded for the failing op
    (operator_tracebacks[net_name][op_id_fetcher()], when there is one) and re-raise."""
    try:
        return func(*args, **kwargs)
    except Exception:
        op_id = op_id_fetcher()
        print(f"Original python traceback for operator {op_id} in network `{net_name}` in exception "
              "above (most recent call last):")
        for file, line, function in reversed(operator_tracebacks.get(net_name, {}).get(op_id, [])):
            print(f'  File "{file}", line {line}, in {function}')
        raise


def BenchmarkNet(name, warmup_runs: int, main_runs: int, run_individual: bool) -> list:
    """Run the created net `name` warmup_runs times untimed, then main_runs times; returns
    [milliseconds per run], followed with run_individual by each op's mean milliseconds
    (ops run one by one, main_runs times)."""
    import time
    name = StringifyNetName(name)
    RunNet(name, max(warmup_runs, 0))
    start = time.perf_counter()
    RunNet(name, max(main_runs, 0))
    results = [(time.perf_counter() - start) * 1000 / max(main_runs, 1)]
    if run_individual:
        compiled, blobs = C().nets[name], C().blobs
        for step in compiled.steps:
            start = time.perf_counter()
            for _ in range(main_runs):
                step.run(blobs, name)
            results.append((time.perf_counter() - start) * 1000 / max(main_runs, 1))
    return results


# Immediate mode: ops run one at a time in a workspace of their own.
_IMMEDIATE = "_CAFFE2_IMMEDIATE"
_immediate = False


def IsImmediate() -> bool:
    return _immediate


def StartImmediate(i_know: bool = False) -> None:
    """Start immediate mode afresh (RunOperatorImmediate, FeedImmediate, FetchImmediate);
    without i_know, say once that it is slow and meant for debugging."""
    global _immediate
    StopImmediate()
    _immediate = True
    with WorkspaceGuard(_IMMEDIATE):
        ResetWorkspace()
    if not i_know:
        print("Immediate mode runs each op on its own in a workspace of its own: slow, for debugging "
              "only. Call StopImmediate() when done.")


def StopImmediate() -> None:
    global _immediate
    if _immediate:
        with WorkspaceGuard(_IMMEDIATE):
            ResetWorkspace()
        _immediate = False


def ImmediateBlobs() -> list:
    with WorkspaceGuard(_IMMEDIATE):
        return Blobs()


def RunOperatorImmediate(op) -> None:
    with WorkspaceGuard(_IMMEDIATE):
        RunOperatorOnce(op)


def FetchImmediate(*args, **kwargs):
    with WorkspaceGuard(_IMMEDIATE):
        return FetchBlob(*args, **kwargs)


def FeedImmediate(*args, **kwargs):
    with WorkspaceGuard(_IMMEDIATE):
        return FeedBlob(*args, **kwargs)
