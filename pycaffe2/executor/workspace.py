"""The Workspace: named blobs and created nets, with Caffe2's method names.

Blobs hold NumPy arrays (or bytes for string blobs), or PyCUDA GPUArrays for
blobs fed with a CUDA device option or made by CUDA ops. FeedBlob stores a private
copy and FetchBlob returns a copy, so nothing a user does to an array they fed
or fetched can change the workspace. Kernels never write into arrays, which is
what makes a failing op leave the workspace as it was.

`root_folder` is Caffe2's workspace root folder: ops given relative file names
(Save, Load, Checkpoint and DBExists with absolute_path=0; Print's and
Summarize's to_file logs) take them under it. The default "." is the working folder.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.devices import DEVICES
from pycaffe2.devices.cuda import is_gpu_array
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor.net import CompiledNet, compile_net
from pycaffe2.objects import ObjectBlob
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import inner_nets
from pycaffe2.transforms import optimize_inference


class Workspace:
    def __init__(self, name: str = "default", seed: int | None = None, root_folder: str = "."):
        self.name = name
        self.root_folder = str(root_folder)
        self.blobs: dict[str, object] = {}
        self.empty: set[str] = set()  # created (e.g. as a net input) but never given a value
        self.nets: dict[str, CompiledNet] = {}
        self.rng = np.random.default_rng(seed)

    # blobs
    def FeedBlob(self, name: str, value, device_option=None) -> bool:
        if isinstance(value, caffe2_pb2.TensorProto):
            from pycaffe2.tensor_proto import tensor_to_array
            value = tensor_to_array(value)
        on_gpu = device_option is not None and device_option.device_type == caffe2_pb2.PROTO_CUDA
        self.blobs[str(name)] = DEVICES[caffe2_pb2.PROTO_CUDA if on_gpu else caffe2_pb2.PROTO_CPU].put(value)
        self.empty.discard(str(name))
        return True

    def FetchBlob(self, name: str):
        if name not in self.blobs:
            raise PyCaffe2Error(f"Can't find blob: {name} ({self._why_missing(name)})")
        value = self.blobs[name]
        if isinstance(value, ObjectBlob):  # as Caffe2: a description, not the shared object
            return value.describe(name)
        return DEVICES[caffe2_pb2.PROTO_CUDA if is_gpu_array(value) else caffe2_pb2.PROTO_CPU].fetch(value)

    def _why_missing(self, name: str) -> str:
        if name in self.empty:
            return "it was created but never given a value"
        owner = self.freed_by(name)
        if owner is not None:
            return (f"net '{owner}' frees it after its last use, as it was created with "
                    f"free_blobs=True; keep it with CreateNet(..., keep=['{name}']) or free_blobs=False")
        return "no such blob"

    def freed_by(self, name: str) -> str | None:
        """The created net that drops `name` after its last use (free_blobs), if any."""
        return next((net_name for net_name, net in self.nets.items() if name in net.freeable), None)

    def FetchBlobs(self, names) -> list:
        return [self.FetchBlob(name) for name in names]

    def HasBlob(self, name: str) -> bool:
        return name in self.blobs or name in self.empty

    def CreateBlob(self, name: str) -> bool:
        if name not in self.blobs:
            self.empty.add(name)
        return True

    def Blobs(self) -> list[str]:
        return sorted(set(self.blobs) | self.empty)

    # nets
    def CreateNet(self, net: caffe2_pb2.NetDef, overwrite: bool = False, input_blobs=None, *,
                  free_blobs: bool = False, keep=(), optimize: bool = False) -> bool:
        """Compile `net` for RunNet. `free_blobs`: each run drops the blobs the net makes
        for itself once no later op touches them (for inference: less memory), keeping
        external inputs and outputs, blobs in the workspace when a run starts, blobs an
        op reads before the net writes them, names nested nets mention, and `keep`.
        `optimize`: run the net through pycaffe2.transforms.optimize_inference first (fold
        test-mode SpatialBN, drop test-mode Dropout, Conv + Relu as ConvRelu, ops in place),
        reading parameters from this workspace; the folded arrays are fed as `<filter>_folded`
        and `<bias>_folded` (or `<filter>_folded_bias`), the originals stay. Only external
        outputs and `keep` are sure to be fetchable afterwards."""
        if not net.name:
            raise PyCaffe2Error("CreateNet: the NetDef must have a name")
        if net.name in self.nets and not overwrite:
            raise PyCaffe2Error(f"I respectfully refuse to overwrite an existing net of the same "
                                f"name \"{net.name}\", unless you explicitly specify overwrite=True.")
        new_params = {}
        if optimize:
            net, new_params = self._optimized(net, keep)
        inputs = list(input_blobs or ()) + list(net.external_input)
        compiled = compile_net(net, known_blobs=set(self.Blobs()) | set(inputs), rng=self.rng, workspace=self,
                               free_blobs=free_blobs, keep=keep)
        # Only once the net is accepted: a refused net leaves no trace. As in Caffe2, an
        # external input no op reads is not made a blob (Caffe2 makes only the ops' blobs).
        read = _read_blobs(net)
        for name in inputs:
            if name in read or name in (input_blobs or ()):
                self.CreateBlob(name)
        for name, value in new_params.items():
            self.FeedBlob(name, value, net.device_option if net.HasField("device_option") else None)
        self.nets[net.name] = compiled
        return True

    def _optimized(self, net: caffe2_pb2.NetDef, keep=()):
        """The optimized net and the arrays to feed, from the values held now (a snapshot:
        feeding new weights later does not refold them)."""
        params = {}
        for name in _read_blobs(net):
            value = self.blobs.get(name)
            if isinstance(value, np.ndarray):  # never changed in place, so not copied
                params[name] = value
            elif is_gpu_array(value):
                params[name] = self.FetchBlob(name)
        result = optimize_inference(net, params=params, keep=keep, reserved=self.Blobs(), fuse_conv_relu=True)
        return result.predict_net, result.params

    def Nets(self) -> list[str]:
        return sorted(self.nets)

    def RunNet(self, name, num_iter: int = 1, allow_fail: bool = False) -> bool:
        net_name = name.name if isinstance(name, caffe2_pb2.NetDef) else str(name)
        if net_name not in self.nets:
            raise PyCaffe2Error(f"Can't find net {net_name}")
        compiled = self.nets[net_name]
        try:
            for _ in range(num_iter):
                compiled.run(self.blobs)
        except PyCaffe2Error:
            if allow_fail:
                return False
            raise
        return True

    def RunNetOnce(self, net: caffe2_pb2.NetDef) -> bool:
        compile_net(net, known_blobs=self.Blobs(), rng=self.rng, workspace=self).run(self.blobs)
        return True

    def RunPlan(self, plan, monitor=None) -> bool:
        """Run a PlanDef (or one ExecutionStep), creating its nets first; `monitor`
        (an executor.plan.PlanMonitor) may watch its loops."""
        from pycaffe2.executor.plan import run_plan
        return run_plan(self, plan, monitor)

    def RunOperatorOnce(self, op: caffe2_pb2.OperatorDef) -> bool:
        return self.RunOperatorsOnce([op])

    def RunOperatorsOnce(self, ops) -> bool:
        net = caffe2_pb2.NetDef(name="_run_operators_once")
        for op in ops:
            net.op.add().CopyFrom(op)
        return self.RunNetOnce(net)


def _read_blobs(net: caffe2_pb2.NetDef) -> set[str]:
    """Every blob an op of `net` reads, nets carried in op args (control ops, step nets) included."""
    read, stack = set(), [net]
    while stack:  # no recursion: compile_net has capped the nesting already
        for op in stack.pop().op:
            read.update(op.input)
            stack.extend(inner for _, inner in inner_nets(op))
    return read
