"""Caffe2's C++ extension module, reached as `workspace.C` and `core.C`, in Python.

Caffe2's Python front end sat on a pybind11 module; tutorials and scripts call it
directly: `workspace.C.Workspace()` for a private workspace (`create_blob(...).feed`,
`blobs[...].fetch`, `run`, `create_net`, `nets[...].run`), and module functions over
the current workspace (`blobs()`, `fetch_blob`, `create_net`, `run_net`,
`switch_workspace`, `registered_operators`, `global_init`, ...) with the build flags
(`is_asan`, `has_mkldnn`, `has_gpu_support`, ...). Here they are plain Python over
`pycaffe2.executor.Workspace`. Where the binding took serialized protos (`create_net`,
`run_operator_once`, `_run_plan`, ...) both the bytes and the message are accepted.

`ExtensionModule(current)` is the module object: `current()` gives the current
executor Workspace, and calling the module does the same (`workspace.C()`).
Left out, because pycaffe2 has no such C++ machinery: observers and benchmarks,
graph transforms (NNPACK, MKL-DNN, ONNXIFI; `transform_exists` says False), NUMA,
the DLPack and Tensor views of a blob (fetch copies), and the C++ gradient registry
(`get_gradient_defs`; core.py builds gradients itself).
"""
from __future__ import annotations

import difflib

import numpy as np

from pycaffe2 import db
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_from_bytes


def _message(value, cls):
    """A `cls` message from a message, an object with .Proto() (core.Net, core.Plan) or
    serialized bytes, as the binding's functions took them."""
    value = value.Proto() if hasattr(value, "Proto") else value
    if isinstance(value, (bytes, bytearray)):
        message, problem = message_from_bytes(cls, value)
        if problem:
            raise PyCaffe2Error(f"cannot parse a {cls.DESCRIPTOR.name}: {problem}")
        return message
    if not isinstance(value, cls):
        raise PyCaffe2Error(f"expected a {cls.DESCRIPTOR.name} (or its bytes), got {type(value).__name__}")
    return value


def _device_option(option):
    return None if option is None else _message(option, caffe2_pb2.DeviceOption)


class Blob:
    """One named blob of a workspace, as the binding's Blob: feed, fetch, serialize."""

    def __init__(self, ws: Workspace, name: str):
        self._ws, self._name = ws, name

    def feed(self, arg, device_option=None) -> bool:
        """Store an array or text (a str is stored as its UTF-8 bytes, as Caffe2 did)."""
        return self._ws.FeedBlob(self._name, arg, _device_option(device_option))

    _feed = feed

    def fetch(self):
        return self._ws.FetchBlob(self._name)

    def is_tensor(self) -> bool:
        return self._name in self._ws.blobs and not isinstance(self._ws.blobs[self._name], (bytes, str))

    def serialize(self, name=None) -> bytes:
        """The blob as BlobProto bytes under `name` (default: its own)."""
        from pycaffe2.db import serialize_blob
        (_, data), = serialize_blob(name or self._name, self.fetch(), chunk_size=1 << 62)
        return data

    def deserialize(self, serialized: bytes) -> bool:
        """Feed the blob from BlobProto bytes (what `serialize` gives)."""
        from pycaffe2.db import BlobAssembler
        assembler = BlobAssembler(self._name)
        assembler.add(self._name, self._name, serialized)
        return self.feed(assembler.finish()[self._name])


class Net:
    """A net created in a workspace, as the binding's Net: `run()` runs it once."""

    def __init__(self, ws: Workspace, name: str):
        self._ws, self.name = ws, name

    def run(self) -> bool:
        return self._ws.RunNet(self.name)


class _Current:
    """`C.Workspace.current`: the current workspace in the binding's spelling."""

    def __get__(self, instance, owner):
        from pycaffe2 import workspace
        return owner.wrapping(workspace.C())


class BoundWorkspace:
    """A workspace spelled like Caffe2's `C.Workspace()`: private unless it wraps one
    (`C.Workspace.current` wraps the current workspace)."""

    current = _Current()

    def __init__(self, name: str = "test_ws"):
        self.workspace = Workspace(name)

    @classmethod
    def wrapping(cls, ws: Workspace) -> BoundWorkspace:
        bound = cls.__new__(cls)
        bound.workspace = ws
        return bound

    @property
    def blobs(self) -> dict[str, Blob]:
        """{name: Blob}, made when asked for, as the binding's."""
        return {name: Blob(self.workspace, name) for name in self.workspace.Blobs()}

    @property
    def nets(self) -> dict[str, Net]:
        return {name: Net(self.workspace, name) for name in self.workspace.Nets()}

    def create_blob(self, name) -> Blob:
        self.workspace.CreateBlob(str(name))
        return Blob(self.workspace, str(name))

    def has_blob(self, name) -> bool:
        return self.workspace.HasBlob(str(name))

    def fetch_blob(self, name):
        return self.workspace.FetchBlob(str(name))

    def feed_blob(self, name, arr, device_option=None) -> bool:
        return self.create_blob(name).feed(arr, device_option)

    def remove_blob(self, blob) -> bool:
        """Drop a blob (a name or a BlobReference); whether there was one."""
        name = str(blob)
        had = self.workspace.HasBlob(name)
        self.workspace.blobs.pop(name, None)
        self.workspace.empty.discard(name)
        return had

    _remove_blob = remove_blob

    def create_net(self, net, overwrite: bool = False) -> Net:
        proto = _message(net, caffe2_pb2.NetDef)
        self.workspace.CreateNet(proto, overwrite)
        return Net(self.workspace, proto.name)

    _create_net = create_net

    def run(self, obj) -> bool:
        """Run an OperatorDef, a NetDef (or core.Net), a PlanDef (or core.Plan) or an
        ExecutionStep once, as Caffe2's ws.run."""
        proto = obj.Proto() if hasattr(obj, "Proto") else obj
        if isinstance(proto, caffe2_pb2.OperatorDef):
            return self.workspace.RunOperatorOnce(proto)
        if isinstance(proto, caffe2_pb2.NetDef):
            return self.workspace.RunNetOnce(proto)
        if isinstance(proto, (caffe2_pb2.PlanDef, caffe2_pb2.ExecutionStep)):
            return self.workspace.RunPlan(proto)
        raise PyCaffe2Error(f"ws.run takes an operator, net or plan, got {type(obj).__name__}")

    def _run_net(self, net) -> bool:
        return self.workspace.RunNetOnce(_message(net, caffe2_pb2.NetDef))

    def _run_operator(self, op) -> bool:
        return self.workspace.RunOperatorOnce(_message(op, caffe2_pb2.OperatorDef))

    def _run_plan(self, plan) -> bool:
        return self.workspace.RunPlan(_message(plan, caffe2_pb2.PlanDef))


def cuda_works() -> bool:
    from pycaffe2.devices import cuda
    return cuda.unavailable_reason() is None


class _BytesCursor:
    """A DB cursor as Caffe2's extension gave it: keys and values as bytes."""

    def __init__(self, cursor):
        self._cursor = cursor

    def key(self) -> bytes:
        return self._cursor.key().encode("utf-8", "surrogateescape")

    def value(self) -> bytes:
        return self._cursor.value()

    def __getattr__(self, name):  # supports_seek, seek_to_first, seek, next, valid
        return getattr(self._cursor, name)


class _ExtensionDB:
    """Caffe2's `C.create_db(db_type, source, mode)` object: new_cursor, new_transaction
    (put, commit), close. Dropping it closes it and keeps what was written, as Caffe2's
    destructor did (pycaffe2.db's own DBs discard a write that is never closed)."""

    def __init__(self, db_type: str, source: str, mode):
        self._db = db.create_db(db_type, source, db.Mode(mode))

    def new_cursor(self) -> _BytesCursor:
        return _BytesCursor(self._db.new_cursor())

    def new_transaction(self):
        return self._db.new_transaction()

    def close(self) -> None:
        self._db.close()

    def __del__(self):
        if hasattr(self, "_db"):
            self._db.close()


class ExtensionModule:
    """The extension module's names over the current workspace (`current()`)."""

    Workspace = BoundWorkspace
    Blob = Blob
    Net = Net
    Mode = db.Mode
    create_db = staticmethod(_ExtensionDB)
    # Build flags: pycaffe2 is pure Python with its own kernels.
    is_asan = False
    has_mkldnn = use_mkldnn = use_trt = False
    define_caffe2_no_operator_schema = False
    has_hip_support = False

    def __init__(self, current):
        self._current = current

    def __call__(self) -> Workspace:
        return self._current()

    @staticmethod
    def registered_dbs() -> list[str]:
        return sorted(db.DB_TYPES)

    # -- GPU: asked lazily, since probing PyCUDA takes time
    @property
    def has_gpu_support(self) -> bool:
        return cuda_works()

    has_cuda_support = has_gpu_support

    def num_cuda_devices(self) -> int:
        """pycaffe2 drives one GPU (device 0)."""
        return 1 if cuda_works() else 0

    def get_cuda_version(self) -> int:
        """The CUDA driver's version (e.g. 12040), 0 without CUDA."""
        if not cuda_works():
            return 0
        from pycaffe2.devices import cuda
        return int(getattr(cuda.backend().driver, "get_driver_version", lambda: 0)())

    def get_cudnn_version(self) -> int:
        return 0  # pycaffe2's CUDA kernels are its own

    # -- blobs of the current workspace
    def blobs(self) -> list[str]:
        return self().Blobs()

    local_blobs = blobs

    def has_blob(self, name) -> bool:
        return self().HasBlob(str(name))

    def create_blob(self, name) -> bool:
        return self().CreateBlob(str(name))

    def fetch_blob(self, name):
        return self().FetchBlob(str(name))

    def feed_blob(self, name, arg, device_option=None) -> bool:
        return self().FeedBlob(str(name), arg, _device_option(device_option))

    def serialize_blob(self, name) -> bytes:
        return Blob(self(), str(name)).serialize()

    def deserialize_blob(self, name, serialized: bytes) -> bool:
        return Blob(self(), str(name)).deserialize(serialized)

    def get_blob_size_bytes(self, name) -> int:
        value = self().FetchBlob(str(name))
        return len(value) if isinstance(value, (bytes, str)) else int(np.asarray(value).nbytes)

    # -- nets and plans in the current workspace
    def nets(self) -> list[str]:
        return self().Nets()

    def create_net(self, net_def, overwrite: bool = False) -> bool:
        return self().CreateNet(_message(net_def, caffe2_pb2.NetDef), overwrite)

    def run_net(self, name, num_iter: int = 1, allow_fail: bool = False) -> bool:
        return self().RunNet(str(name), num_iter, allow_fail)

    def delete_net(self, name) -> bool:
        self().nets.pop(str(name), None)
        return True

    def run_net_once(self, net_def) -> bool:
        return self().RunNetOnce(_message(net_def, caffe2_pb2.NetDef))

    def run_operator_once(self, op_def) -> bool:
        return self().RunOperatorOnce(_message(op_def, caffe2_pb2.OperatorDef))

    def run_operator_multiple(self, op_def, num_runs: int) -> bool:
        op = _message(op_def, caffe2_pb2.OperatorDef)
        return all(self().RunOperatorOnce(op) for _ in range(num_runs))

    def run_plan(self, plan_def) -> bool:
        return self().RunPlan(_message(plan_def, caffe2_pb2.PlanDef))

    # -- the named workspaces (pycaffe2.workspace keeps them)
    def switch_workspace(self, name, create_if_missing=None) -> None:
        from pycaffe2 import workspace
        workspace.SwitchWorkspace(str(name), bool(create_if_missing))

    def reset_workspace(self, root_folder=None) -> bool:
        from pycaffe2 import workspace
        return workspace.ResetWorkspace(root_folder)

    def current_workspace(self) -> str:
        from pycaffe2 import workspace
        return workspace.CurrentWorkspace()

    def workspaces(self) -> list[str]:
        from pycaffe2 import workspace
        return workspace.Workspaces()

    def root_folder(self) -> str:
        return self().root_folder

    # -- the registries and process setup
    def registered_operators(self) -> list[str]:
        from pycaffe2.operators import CUDA_KERNELS, load_kernels
        return sorted(set(load_kernels()) | set(CUDA_KERNELS))

    def nearby_opnames(self, name) -> list[str]:
        """Registered op types within a few edits of `name`, for "did you mean"."""
        return difflib.get_close_matches(str(name), self.registered_operators(), n=5, cutoff=0.7)

    def op_registry_key(self, op_type, engine) -> str:
        """The key Caffe2 registered an engine's kernel under: `type_ENGINE_engine`."""
        return f"{op_type}_ENGINE_{engine}" if engine and engine != "DEFAULT" else str(op_type)

    def global_init(self, args) -> None:
        """Caffe2 parsed its C++ flags here; pycaffe2 has none, so the flags are only checked
        to be a list of strings."""
        if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args):
            raise PyCaffe2Error(f"global_init takes a list of strings, got {args!r}")

    def get_build_options(self) -> dict[str, str]:
        return {"USE_CUDA": "ON" if cuda_works() else "OFF", "USE_MKLDNN": "OFF", "USE_NUMPY": "ON"}

    def get_stats(self) -> dict[str, int]:
        return {}  # no C++ stat registry

    def builtin_cpu_supports_avx2(self) -> bool:
        return False  # no kernels written for AVX2: tests that need them skip

    def is_numa_enabled(self) -> bool:
        return False

    def transform_exists(self, name) -> bool:
        return False

    workspace_transform_exists = transform_exists
