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

import contextlib
import logging
import os

import numpy as np

from pycaffe2.c_module import BoundWorkspace, ExtensionModule, cuda_works  # noqa: F401 (BoundWorkspace: test_util's)
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.predictor.predictor import Predictor  # noqa: F401 (Caffe2 spells it workspace.Predictor)
from pycaffe2.proto import caffe2_pb2

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


def CreateNet(net, overwrite: bool = False, input_blobs=None) -> bool:
    return C().CreateNet(_proto(net), overwrite, input_blobs)


def RunNet(name, num_iter: int = 1, allow_fail: bool = False) -> bool:
    return C().RunNet(name.Name() if hasattr(name, "Name") else name, num_iter, allow_fail)


def RunNetOnce(net) -> bool:
    return C().RunNetOnce(_proto(net))


def RunPlan(plan_or_step) -> bool:
    return C().RunPlan(_proto(plan_or_step))


def RunOperatorOnce(op) -> bool:
    return C().RunOperatorOnce(_proto(op))


def RunOperatorsOnce(ops) -> bool:
    return C().RunOperatorsOnce([_proto(op) for op in ops])


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
    """The name a net (a core.Net or a NetDef) runs under."""
    return net.Name() if hasattr(net, "Name") else net.name


def InferShapesAndTypes(nets, blob_dimensions=None, nets_proto=False, blob_types=None):
    """Caffe2's shape and type inference over `nets` (core.Nets or NetDefs), in order.

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
    for net in nets:
        for index, op in enumerate(_proto(net).op):
            try:
                outputs = infer_op(op, [known.get(i) for i in op.input])
            except ShapeError as exc:
                _log.error("Shape inference error in op %d (%s) of net %s: %s; returning empty "
                           "results", index, op.type, GetNetName(_proto(net)) or "(unnamed)", exc)
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
