"""The rest of Caffe2's `core.Net` methods and the net helpers of `core`
(SSA versions of blobs, partial clones, device-option comparisons), kept apart
from core.py to keep each module small; core re-exports them all.

    ssa, versions = core.get_ssa(net)
    sub, (y,) = net.ClonePartial("sub", ["h"], ["y"])
    net.RunAllOnGPU()      # every op without a device option of its own runs on GPU 0
"""
from __future__ import annotations

import collections
import logging
import os
import sys

import numpy as np

from pycaffe2.proto import caffe2_pb2

__all__ = ["DEFAULT_REMAP_FUNCS", "GetIndexFromGradientList", "InferBlobDevices", "NetMethods", "RefreshRegisteredOperators",
           "add_nets_in_order", "clone_and_bind_net", "control_op_remap", "device_equal",
           "device_option_equal", "get_net_name", "get_op_ids_in_path", "get_output_producers", "get_ssa",
           "get_undefined_blobs", "output_to_list", "recurrent_network_op_remap", "remap_proto"]

_log = logging.getLogger("pycaffe2.core")


def _netdef(net) -> caffe2_pb2.NetDef:
    return net.Proto() if hasattr(net, "Proto") else net


def get_net_name(netlike) -> str:
    """The name of a core.Net or NetDef; anything else (a name) as it is."""
    if hasattr(netlike, "Proto") or isinstance(netlike, caffe2_pb2.NetDef):
        return _netdef(netlike).name
    return netlike


def output_to_list(op_output) -> list:
    """An op method's result (one BlobReference, or a tuple of them) as a list."""
    if isinstance(op_output, str):
        return [op_output]
    if not isinstance(op_output, (list, tuple)):
        raise TypeError(f"expected a BlobReference or a list/tuple of them, got {type(op_output).__name__}")
    return list(op_output)


def device_equal(src, dst) -> bool:
    """Same device type and id (unset fields count as their defaults)."""
    return src.device_type == dst.device_type and src.device_id == dst.device_id


def device_option_equal(opt1, opt2, ignore_node_name: bool = True, ignore_random_seed: bool = True) -> bool:
    """Caffe2's comparison: CPU options are equal whatever their id; node name and seed
    count only when asked."""
    if not opt1 or not opt2:
        return opt1 == opt2
    if not ignore_node_name and opt1.node_name != opt2.node_name:
        return False
    if not ignore_random_seed and opt1.random_seed != opt2.random_seed:
        return False
    if not opt1.device_type or not opt2.device_type:
        return not opt1.device_type and not opt2.device_type
    return opt1.device_id == opt2.device_id


def GetIndexFromGradientList(g_list, name):
    """The index in `g_list` of the gradient `name` (a dense one, or either blob of a
    GradientSlice), or None."""
    for index, grad in enumerate(g_list):
        if grad == name or (hasattr(grad, "indices") and name in (grad.indices, grad.values)):
            return index
    return None


def RefreshRegisteredOperators() -> None:
    """Caffe2 re-read its C++ registry here (after loading a library); pycaffe2's ops are
    found when asked for, so there is nothing to refresh."""


def get_ssa(net, blob_versions=None):
    """Versions of every blob each op reads and writes: ([(inputs, outputs) per op],
    blob -> latest version), a versioned blob being (name, version); a blob no op has
    written yet is at version 0. `blob_versions` gives starting versions (updated in
    place); a list of nets gives a list of ssa."""
    blob_versions = {} if blob_versions is None else blob_versions
    if isinstance(net, list):
        return [get_ssa(n, blob_versions)[0] for n in net], blob_versions
    proto = _netdef(net)
    for name in proto.external_input:
        blob_versions.setdefault(str(name), 0)
    ssa = []
    for op in proto.op:
        inputs = [(str(i), blob_versions.setdefault(str(i), 0)) for i in op.input]
        for name in op.output:
            blob_versions[str(name)] = blob_versions.get(str(name), 0) + 1
        ssa.append((inputs, [(str(o), blob_versions[str(o)]) for o in op.output]))
    return ssa, blob_versions


def blobs_read_before_written(ops) -> list[str]:
    """Blobs the ops read before any of them writes them, in order of first read (what a
    net made of them needs from outside)."""
    written, needed = set(), []
    for op in ops:
        needed.extend(name for name in op.input if name not in written and name not in needed)
        written.update(op.output)
    return needed


def get_undefined_blobs(ssa) -> set:
    """Blobs read before any op of the ssa writes them (inputs at version 0)."""
    return {name for inputs, _ in ssa for name, version in inputs if version == 0}


def get_output_producers(ssa) -> dict:
    """Versioned blob -> index of the op that writes that version."""
    return {out: index for index, (_, outputs) in enumerate(ssa) for out in outputs}


def get_op_ids_in_path(ssa, blob_versions, inputs, outputs) -> list:
    """Sorted indices of the ops needed to compute `outputs` (at their latest versions)
    from `inputs` (at theirs)."""
    given = {(str(i), blob_versions[str(i)]) for i in inputs}
    producers = get_output_producers(ssa)
    queue = [(str(o), blob_versions[str(o)]) for o in outputs]
    used = set()
    while queue:
        blob = queue.pop()
        if blob not in given and blob in producers and producers[blob] not in used:
            used.add(producers[blob])
            queue.extend(ssa[producers[blob]][0])
    return sorted(used)


def add_nets_in_order(step, net_list: list) -> None:
    """Append to `net_list` the names of the nets `step` runs (substeps first, then its
    own, then its report net), each once."""
    for substep in step.Substeps():
        add_nets_in_order(substep, net_list)
    proto = step.Proto()
    for name in [*proto.network, *([proto.report_net] if proto.report_net else [])]:
        if name not in net_list:
            net_list.append(name)


def _remap(name, blob_remap: dict):
    text = name.decode() if isinstance(name, bytes) else str(name)
    return blob_remap.get(text, text)


def remap_proto(argument, blob_remap: dict) -> None:
    """Rename the blobs of the NetDef an Argument holds (`n`)."""
    from pycaffe2.core import Net
    argument.n.CopyFrom(Net(argument.n).Clone("cloned_sub_net", blob_remap).Proto())


def recurrent_network_op_remap(op, prefix, blob_remap: dict) -> None:
    """Rename the blobs a RecurrentNetwork(Gradient) op names in its args: string lists,
    `timestep`, and the step nets."""
    for argument in op.arg:
        if argument.strings:
            argument.strings[:] = [_remap(s, blob_remap).encode() for s in argument.strings]
        elif argument.name == "timestep":
            argument.s = _remap(argument.s, blob_remap).encode()
        elif argument.name.endswith("step_net") and argument.HasField("n"):
            remap_proto(argument, blob_remap)


def control_op_remap(op, prefix, blob_remap: dict) -> None:
    """Rename the blobs in the nets an If / While op holds as args."""
    from pycaffe2.core import Net
    names = ("then_net", "else_net") if op.type == "If" else ("loop_net", "cond_net")
    for argument in op.arg:
        if argument.name in names:
            if not argument.HasField("n"):
                raise ValueError(f"{op.type}'s {argument.name} argument holds no net")
            subnet = Net(argument.n)
            argument.n.CopyFrom(subnet.Clone(subnet.Name() + "_remapped", blob_remap).Proto())


DEFAULT_REMAP_FUNCS = {"RecurrentNetwork": recurrent_network_op_remap,
                       "RecurrentNetworkGradient": recurrent_network_op_remap,
                       "If": control_op_remap, "While": control_op_remap}


def clone_and_bind_net(net, name: str, prefix: str, blob_remap=None, inputs=None, keep_schema: bool = True):
    """Clone `net` as `name`, the blobs it makes getting `prefix` in front (the blobs it
    only reads keep their names, unless `blob_remap` says otherwise). Returns (the clone,
    the whole old -> new name map). Binding to an input record (`inputs`) needs
    Caffe2's schema records, which pycaffe2 does not have."""
    if inputs is not None:
        raise NotImplementedError("clone_and_bind_net: inputs= takes a schema record, which pycaffe2 "
                                  "does not have; pass blob_remap instead")
    blob_remap = {} if blob_remap is None else blob_remap
    ssa, blob_versions = get_ssa(net)
    undefined = get_undefined_blobs(ssa)
    for blob in blob_versions:
        blob_remap.setdefault(blob, blob if blob in undefined else prefix + blob)
    return net.Clone(name, blob_remap), blob_remap


_HERE = {os.path.join(os.path.dirname(__file__), name) for name in ("core.py", "core_net.py")}


def record_traceback(net_name: str, op_index: int) -> None:
    """Keep where the op was made, in workspace.operator_tracebacks[net][index] as Caffe2
    does: (file, line, function) from the caller outwards, without reading any file."""
    from pycaffe2 import workspace
    frame, frames = sys._getframe(1), []
    while frame is not None:
        if frame.f_code.co_filename not in _HERE:
            frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    workspace.operator_tracebacks[net_name][op_index] = frames


class NetMethods:
    """Mixed into core.Net: the methods that only read or edit its NetDef (`self._net`)."""

    @staticmethod
    def current_prefix() -> str:
        """The name of the NetBuilder being built, if any ('' otherwise)."""
        try:
            from pycaffe2.net_builder import NetBuilder
        except ImportError:
            return ""
        builder = NetBuilder.current(required=False)
        return builder.name if builder else ""

    @property
    def external_inputs(self) -> list:
        from pycaffe2.core import BlobReference
        return [BlobReference(name, self) for name in self._net.external_input]

    @property
    def external_outputs(self) -> list:
        from pycaffe2.core import BlobReference
        return [BlobReference(name, self) for name in self._net.external_output]

    def AddExternalInputs(self, *inputs):
        return self.AddExternalInput(*inputs)

    def AddExternalOutputs(self, *outputs):
        return self.AddExternalOutput(*outputs)

    def AddScopedExternalOutputs(self, *outputs):
        from pycaffe2.core import ScopedName
        return self.AddExternalOutput(*[ScopedName(b) for b in outputs])

    def is_external_input(self, blob) -> bool:
        return str(blob) in self._net.external_input

    def _op_outputs(self) -> set:
        return {name for op in self._net.op for name in op.output}

    def BlobIsDefined(self, blob) -> bool:
        """Whether an op of the net writes `blob` or it is an external input."""
        return str(blob) in self._op_outputs() or self.is_external_input(blob)

    def UsesBlob(self, blob) -> bool:
        """Whether an op of the net reads `blob` or it is an external input."""
        name = str(blob)
        return any(name in op.input for op in self._net.op) or self.is_external_input(name)

    def UsedBlobNames(self) -> set:
        names = {b for op in self._net.op for b in (*op.input, *op.output)}
        return names | set(self._net.external_input) | set(self._net.external_output)

    def PopulateProtoWithFileName(self) -> None:
        """Name each op "file:line:function" after the place it was made in."""
        from pycaffe2 import workspace
        tracebacks = workspace.operator_tracebacks.get(self.Name(), {})
        for index, op in enumerate(self._net.op):
            if tracebacks.get(index):
                op.name = ":".join(map(str, tracebacks[index][0]))

    def extend_ops(self, new_ops) -> None:
        self._net.op.extend(new_ops)

    def AppendNet(self, net, device_option=None):
        """Append `net`'s ops (on `device_option` when given); its external inputs that this
        net neither has nor makes, and its external outputs, are added to this net's. Returns self."""
        proto = _netdef(net)
        made = self._op_outputs()
        for name in proto.external_input:
            if name not in self._net.external_input and name not in made:
                self._net.external_input.append(name)
        self._net.external_output.extend(o for o in proto.external_output if o not in self._net.external_output)
        self._net.op.extend(proto.op)
        if device_option is not None:
            for op in self._net.op[len(self._net.op) - len(proto.op):]:
                op.device_option.CopyFrom(device_option)
        return self

    def NextBlob(self, prefix: str = "unnamed"):
        """A blob name not used by this net nor given out before: `prefix`, else
        `prefix_auto_0`, `prefix_auto_1`, ..."""
        from pycaffe2.core import BlobReference
        registered = self.__dict__.setdefault("_registered_blob_names", set())
        name, index = str(prefix), 0
        while name in registered or self.BlobIsDefined(name):
            name, index = f"{prefix}_auto_{index}", index + 1
        registered.add(name)
        return BlobReference(name, self)

    def NextScopedBlob(self, prefix: str = "unnamed"):
        from pycaffe2.core import ScopedName
        return self.NextBlob(ScopedName(prefix))

    def LogInfo(self, *msg_or_blobs) -> None:
        """Print ops for each blob (a BlobReference) or message (a string, put in a blob)."""
        from pycaffe2.core import BlobReference
        for item in msg_or_blobs:
            if not isinstance(item, BlobReference):
                item = self.GivenTensorStringFill([], self.NextName("log"), shape=[], values=[item])
            self.Print(item, [])

    def add_attribute(self, name: str, obj) -> None:
        """Keep `obj` under `name` with the net (user objects; no meaning to pycaffe2)."""
        self.__dict__.setdefault("_attr_dict", collections.defaultdict(list))[name].append(obj)

    def get_attributes(self, name: str) -> list:
        return self.__dict__.get("_attr_dict", {}).get(name, [])

    def set_rand_seed(self, seed: int = 100, sequence_seed: bool = True, seed_on_op_def: bool = False) -> None:
        """Seed every op: seed + its index (sequence_seed), or from a hash of the op and
        seed (seed_on_op_def; stable across runs here), or `seed` itself."""
        if sequence_seed and seed_on_op_def:
            raise ValueError("sequence_seed and seed_on_op_def cannot both be True")
        import zlib
        for index, op in enumerate(self._net.op):
            if sequence_seed:
                value = seed + index
            elif seed_on_op_def:
                value = zlib.crc32((str(op) + str(seed)).encode()) % np.iinfo(np.uint32).max
            else:
                value = seed
            op.device_option.random_seed = value

    def DeduplicateGradientSlices(self, g, aggregator: str = "sum"):
        """A GradientSlice with each index once: the values of repeated indices summed
        ('sum') or averaged ('mean'), by Unique and UnsortedSegmentSum/Mean ops."""
        from pycaffe2.core import GradientSlice
        ops = {"sum": "UnsortedSegmentSum", "mean": "UnsortedSegmentMean"}
        if aggregator.lower() not in ops:
            raise ValueError(f"{aggregator} is not supported (sum or mean)")
        unique, remapping = self.Unique([g.indices], 2)
        values = getattr(self, ops[aggregator.lower()])([g.values, remapping], 1)
        return GradientSlice(indices=unique, values=values)

    def RunAllOnGPU(self, gpu_id: int = 0, use_cudnn: bool = False) -> None:
        """Run the net on CUDA GPU `gpu_id` (ops with a device option of their own keep it);
        use_cudnn sets engine CUDNN on every op, which pycaffe2 ignores."""
        self._net.device_option.CopyFrom(caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA,
                                                                 device_id=gpu_id))
        if use_cudnn:
            for op in self._net.op:
                op.engine = "CUDNN"

    def RunAllOnMKL(self) -> None:
        """Caffe2's MKL-DNN device; pycaffe2 has none, so CreateNet refuses such a net."""
        self._net.device_option.CopyFrom(caffe2_pb2.DeviceOption(device_type=caffe2_pb2.MKLDNN))

    def Clone(self, name: str, blob_remap=None, op_id_mask=None, remap_funcs=None, keep_schema: bool = True):
        """A copy named `name` (made unique as every Net name), with blobs renamed by
        `blob_remap`, only the ops at `op_id_mask` (default all), and op args that name
        blobs or hold nets renamed too (DEFAULT_REMAP_FUNCS, plus `remap_funcs`)."""
        from pycaffe2.core import Net
        funcs = {**DEFAULT_REMAP_FUNCS, **(remap_funcs or {})}
        blob_remap = blob_remap or {}
        proto = caffe2_pb2.NetDef()
        proto.CopyFrom(self._net)
        proto.name = name
        del proto.op[:]
        for index in range(len(self._net.op)) if op_id_mask is None else op_id_mask:
            op = proto.op.add()
            op.CopyFrom(self._net.op[index])
            op.input[:] = [_remap(b, blob_remap) for b in op.input]
            op.output[:] = [_remap(b, blob_remap) for b in op.output]
            if op.type in funcs:
                funcs[op.type](op, name + "/" if name else "", blob_remap)
        proto.external_input[:] = [_remap(b, blob_remap) for b in proto.external_input]
        proto.external_output[:] = [_remap(b, blob_remap) for b in proto.external_output]
        clone = Net(proto)
        for key, objects in self.__dict__.get("_attr_dict", {}).items():
            for obj in objects:
                clone.add_attribute(key, obj)
        return clone

    def ClonePartial(self, name: str, inputs, outputs, remap_funcs=None):
        """A net of only the ops needed to compute `outputs` from `inputs` (a list, or a
        map / pair list old name -> new external input name); the blobs made inside get
        `name/` in front. Returns (the net, references to its outputs)."""
        if isinstance(inputs, dict):
            pairs = list(inputs.items())
        elif all(isinstance(i, tuple) and len(i) == 2 for i in inputs) and inputs:
            pairs = list(inputs)
        else:
            pairs = [(i, i) for i in inputs]
        input_names = {str(k): str(v) for k, v in pairs}
        for output in outputs:
            if not self.BlobIsDefined(output):
                raise ValueError(f"Net {self._net.name}: {output} is neither made by an op nor an input")
        ssa, blob_versions = get_ssa(self._net, {name: 0 for name in input_names})
        used = get_op_ids_in_path(ssa, blob_versions, list(input_names), outputs)
        if set(used) & set(get_op_ids_in_path(ssa, blob_versions, [], list(input_names))):
            raise ValueError("Cannot partially clone net: some of the ops required would make the given inputs")
        undefined = get_undefined_blobs([ssa[i] for i in used]) - set(input_names)
        prefix = name + "/" if name else ""
        mapping = {b: input_names.get(b, b if b in undefined else prefix + b) for b in blob_versions}
        clone = self.Clone(name, mapping, used, remap_funcs)
        new_outputs = [mapping[str(o)] for o in outputs]
        clone.Proto().external_input[:] = [mapping[i] for i in input_names] + sorted(undefined)
        clone.Proto().external_output[:] = new_outputs
        return clone, [clone.GetBlobRef(o) for o in new_outputs]


class StepMethods:
    """Mixed into core.ExecutionStep: its nets by name, their attributes, and building
    one from a proto."""

    def get_net(self, name: str):
        for net in self.Nets():
            if get_net_name(net) == name:
                return net
        raise KeyError(name)

    def get_all_attributes(self, name: str) -> list:
        """The attributes under `name` of every net the step (and its substeps) runs."""
        return [attr for net in self.Nets() if hasattr(net, "get_attributes") for attr in net.get_attributes(name)]

    @classmethod
    def create_from_proto(cls, step_proto, net_obj_dict: dict, net_proto_dict: dict):
        """An ExecutionStep like `step_proto`, its nets taken from `net_obj_dict` (name -> Net)
        or made from `net_proto_dict` (name -> NetDef, the Net then added to net_obj_dict)."""
        from pycaffe2.core import BlobReference, Net, execution_step
        if bool(step_proto.network) == bool(step_proto.substep):
            raise ValueError(f"step {step_proto.name}: needs either nets or substeps, not both or neither")
        if step_proto.substep:
            items = [cls.create_from_proto(s, net_obj_dict, net_proto_dict) for s in step_proto.substep]
        else:
            items = []
            for net_name in step_proto.network:
                if net_name not in net_obj_dict:
                    if net_name not in net_proto_dict:
                        raise KeyError(f"step {step_proto.name} runs net {net_name}, which is not given")
                    net_obj_dict[net_name] = Net(net_proto_dict[net_name])
                items.append(net_obj_dict[net_name])
        fields = ("num_iter", "concurrent_substeps", "only_once", "num_concurrent_instances",
                  "create_workspace", "run_every_ms")
        kwargs = {f: getattr(step_proto, f) for f in fields if step_proto.HasField(f)}
        if step_proto.HasField("should_stop_blob"):
            kwargs["should_stop_blob"] = BlobReference(step_proto.should_stop_blob)
        return execution_step(step_proto.name, items, **kwargs)


class PlanMethods:
    """Mixed into core.Plan: its steps and nets, and building one from a proto."""

    def Nets(self) -> list:
        return list(self._nets)

    def Steps(self) -> list:
        return list(self._steps)

    def get_all_attributes(self, name: str) -> list:
        return [attr for net in self._nets if hasattr(net, "get_attributes") for attr in net.get_attributes(name)]

    @classmethod
    def create_from_proto(cls, plan_proto):
        """A Plan like `plan_proto`, with a core.Net for each of its nets."""
        from pycaffe2.core import ExecutionStep
        protos = {}
        for net in plan_proto.network:
            if net.name in protos:
                raise ValueError(f"plan {plan_proto.name}: two nets named {net.name}")
            protos[net.name] = net
        plan, objects = cls(plan_proto.name), {}
        for step_proto in plan_proto.execution_step:
            plan.AddStep(ExecutionStep.create_from_proto(step_proto, objects, protos))
        return plan


def InferBlobDevices(net) -> dict:
    """Blob -> the device option of the last op of `net` that writes it."""
    return {name: op.device_option for op in _netdef(net).op for name in op.output}
