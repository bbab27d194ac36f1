"""Caffe2's multi-device net rewriting (core.InjectCrossDeviceCopies and friends): where an
op on one device reads a blob that lives on another, a copy op is put in front of it and
the op reads the copy, named `<blob>_cpu` or `<blob>_cuda_<id>` as Caffe2 names it.
Kept out of core.py to keep that module small; core re-exports these names."""
from __future__ import annotations

import collections

from pycaffe2.core_net import device_equal
from pycaffe2.errors import NetError
from pycaffe2.proto import caffe2_pb2

__all__ = [
    "InferOpBlobDevices", "InferOpDeviceAsBlobDevices", "InjectCrossDeviceCopies",
    "InjectDeviceCopiesAmongNets", "InjectDeviceCopiesAmongNetsWithoutB2D", "RemapEntry",
    "copy_func_between_devices", "update_placeholder_op_output",
]


def _op_device(op) -> caffe2_pb2.DeviceOption:
    return op.device_option if op.HasField("device_option") else caffe2_pb2.DeviceOption()


def _require_device_option(op) -> caffe2_pb2.DeviceOption:
    if not op.HasField("device_option"):
        raise ValueError(f"{op.type} needs a CUDA device option")
    return op.device_option


def InferOpDeviceAsBlobDevices(op):
    """Every input and output on the op's own device: ([input devices], [output devices])."""
    device = _op_device(op)
    return [device] * len(op.input), [device] * len(op.output)


# Ops whose blobs are not all on the op's device (Caffe2's device inference functions):
# op type -> (input devices, output devices) given the op's device and a CPU option.
def _copy_to_gpu(op, cpu):
    device = _require_device_option(op)
    return [cpu] * len(op.input), [device] * len(op.output)


def _copy_to_cpu(op, cpu):
    device = _require_device_option(op)
    return [device] * len(op.input), [cpu] * len(op.output)


def _from_cpu_input(op, cpu):
    return [cpu] * len(op.input), [_op_device(op)] * len(op.output)


def _ensure_cpu_output(op, cpu):
    return [_op_device(op)] * len(op.input), [cpu] * len(op.output)


def _split(op, cpu):  # the split sizes given as a second input are read on the CPU
    inputs, outputs = InferOpDeviceAsBlobDevices(op)
    if len(inputs) == 2:
        inputs[1] = cpu
    return inputs, outputs


def _concat(op, cpu):  # the split_info output is always a CPU tensor
    inputs, outputs = InferOpDeviceAsBlobDevices(op)
    if len(outputs) < 2:
        raise ValueError(f"{op.type} has {len(outputs)} output(s); it makes two")
    outputs[1] = cpu
    return inputs, outputs


_DEVICE_RULES = {
    "CopyCPUToGPU": _copy_to_gpu, "CopyGPUToCPU": _copy_to_cpu,
    "CopyFromCPUInput": _from_cpu_input, "EnsureCPUOutput": _ensure_cpu_output,
    "LearningRate": _from_cpu_input,  # the iteration counter stays on the CPU
    "Split": _split, "Concat": _concat, "DepthSplit": _split, "DepthConcat": _concat,
}


def InferOpBlobDevices(op):
    """([input devices], [output devices]) of `op` (an OperatorDef), by its type's rule."""
    rule = _DEVICE_RULES.get(op.type)
    return rule(op, caffe2_pb2.DeviceOption()) if rule else InferOpDeviceAsBlobDevices(op)


def copy_func_between_devices(src, dst):
    """A function (net, input, output) adding the op that copies from device `src` to `dst`
    (made on the GPU side's device), or None when no copy is needed."""
    from pycaffe2.core import DeviceScope  # core re-exports this module
    cpu, cuda = caffe2_pb2.CPU, caffe2_pb2.CUDA
    if src.device_type not in (cpu, cuda) or dst.device_type not in (cpu, cuda):
        raise ValueError(f"Non-supported devices: {src} and {dst}")
    if src.device_type == cpu and dst.device_type == cpu:
        return None
    if src.device_type == cuda and dst.device_type == cuda:
        if src.device_id == dst.device_id:
            return None
        op_type, scope = "Copy", dst
    elif src.device_type == cuda:
        op_type, scope = "CopyGPUToCPU", src
    else:
        op_type, scope = "CopyCPUToGPU", dst

    def copy(net, *args, **kwargs):
        with DeviceScope(scope):
            return getattr(net, op_type)(*args, **kwargs)
    return copy


def _copy_name(blob: str, device) -> str:
    if device.device_type == caffe2_pb2.CPU:
        return blob + "_cpu"
    if device.device_type == caffe2_pb2.CUDA:
        return f"{blob}_cuda_{device.device_id}"
    raise ValueError(f"Unknown device type: {device.device_type}")


def update_placeholder_op_output(op, blob_to_device) -> None:
    """Placeholder ops (Recv and the like) run on the CPU: outputs that `blob_to_device`
    puts elsewhere get a `_cpu` name."""
    outputs = [name if name not in blob_to_device or blob_to_device[name].device_type == caffe2_pb2.CPU
               else name + "_cpu" for name in op.output]
    op.output[:] = outputs


class RemapEntry:
    """A (blob, device) key of the map from a blob to its copy on that device."""

    def __init__(self, blob, device):
        self.blob = blob
        self.device = device

    def __eq__(self, other):
        return isinstance(other, RemapEntry) and self.blob == other.blob and self.device == other.device

    def __hash__(self):
        return hash(self.blob + str(self.device))


def InjectCrossDeviceCopies(net, blob_to_device=None, blob_remap=None, placeHolderOps=None):
    """A new net `<name>_cross_device` with a copy op in front of each op input that lives on
    another device, and the updated {blob: DeviceOption} map. External inputs missing from
    `blob_to_device` are taken to be on the net's device; `blob_remap` ({RemapEntry: copy
    name}) holds copies made before, which are reused. Ops whose type is in
    `placeHolderOps` count as running with every blob on their own device."""
    new_net = net.Clone(net.Proto().name + "_cross_device", keep_schema=True)
    new_proto = new_net.Proto()
    del new_proto.op[:]
    blob_to_device = {} if blob_to_device is None else blob_to_device
    blob_remap = {} if blob_remap is None else blob_remap
    proto = net.Proto()
    net_device = proto.device_option if proto.HasField("device_option") else caffe2_pb2.DeviceOption()
    # copies made by earlier nets of this net's external inputs are its external inputs too
    copies_of = collections.defaultdict(list)
    for entry, copy_name in blob_remap.items():
        copies_of[entry.blob].append(copy_name)
    new_proto.external_input.extend([c for name in list(new_proto.external_input) for c in copies_of[name]])

    for op in proto.op:
        placeholder = placeHolderOps is not None and op.type in placeHolderOps
        input_devices, output_devices = (InferOpDeviceAsBlobDevices if placeholder else InferOpBlobDevices)(op)
        renamed = {}
        for device, name in zip(input_devices, op.input):
            if not net.BlobIsDefined(name):
                raise NetError(f"input {name} of {op.type} should be defined in net {proto.name}")
            if name not in blob_to_device:
                if not net.is_external_input(name):
                    raise NetError(f"No device information found for blob {name}")
                blob_to_device[name] = net_device
            if device_equal(blob_to_device[name], device):
                continue
            known = blob_remap.get(RemapEntry(name, device))
            if known is not None and known in blob_to_device and device_equal(blob_to_device[known], device):
                renamed[name] = known
                continue
            copy_name = _copy_name(name, device)
            copy_func_between_devices(blob_to_device[name], device)(new_net, name, copy_name)
            blob_remap[RemapEntry(name, device)] = renamed[name] = copy_name
            blob_to_device[copy_name] = device
        new_op = caffe2_pb2.OperatorDef()
        new_op.CopyFrom(op)
        if placeholder:
            update_placeholder_op_output(new_op, blob_to_device)
        # a blob may be rewritten in place, but not by ops on different devices
        for device, name in zip(output_devices, new_op.output):
            if name in blob_to_device and name not in op.input and not device_equal(blob_to_device[name], device):
                raise NetError(f"blob {name} is written on two devices (before on "
                               f"{blob_to_device[name]}, now on {device}) by {op.type}")
        new_op.input[:] = [renamed.get(name, name) for name in op.input]
        original_inputs = list(op.input)
        for index, name in enumerate(new_op.output):  # in-place stays in place, on the copy
            if name in original_inputs:
                new_op.output[index] = new_op.input[original_inputs.index(name)]
        blob_to_device.update(zip(new_op.output, output_devices))
        new_net.extend_ops([new_op])
    return new_net, blob_to_device


def InjectDeviceCopiesAmongNets(nets, blob_to_device_init=None):
    """InjectCrossDeviceCopies over `nets` in execution order (e.g. [init, train]), sharing
    one device map and the copies made: ([new nets], {blob: DeviceOption})."""
    from pycaffe2.core import Net
    if not isinstance(nets, list) or not all(isinstance(net, Net) for net in nets):
        raise TypeError(f"nets {nets} should be a list of nets")
    blob_to_device = blob_to_device_init or {}
    blob_remap: dict = {}
    new_nets = []
    for net in nets:
        new_net, blob_to_device = InjectCrossDeviceCopies(net, blob_to_device=blob_to_device, blob_remap=blob_remap)
        new_nets.append(new_net)
    return new_nets, blob_to_device


def InjectDeviceCopiesAmongNetsWithoutB2D(nets, blob_to_device_init=None):
    """InjectDeviceCopiesAmongNets's nets alone."""
    return InjectDeviceCopiesAmongNets(nets, blob_to_device_init)[0]
