"""The ops data_parallel_model adds between replicas held in one process: blobs grouped
by device, the gradient all-reduce (Sum on the first device, Copy back to the others),
the broadcast of parameters and computed params from the first device.

Replica N's blobs live under the NameScope `<prefix>_N/` (prefix 'gpu' or 'cpu'); a
blob's name without that scope is its "stripped" name, the key that ties the copies
on the devices together (Caffe2's stripBlobName).
"""
from __future__ import annotations

from collections import OrderedDict

from pycaffe2 import core

DPM_OP_NAME = "dpm"  # Caffe2 names its all-reduce Sums so; the cross-device check skips them


def stripBlobName(param) -> str:
    """'gpu_0/fc_w' -> 'fc_w' (a GradientSlice: 'indices:values', each stripped)."""
    if isinstance(param, core.GradientSlice):
        return stripBlobName(param.indices) + ":" + stripBlobName(param.values)
    name = str(param)
    return name[name.index("/") + 1:] if "/" in name else name


def device_of(blob, prefix: str) -> int | None:
    """N for a blob named '<prefix>_N/...', else None."""
    head, sep, _ = str(blob).partition("/")
    if not sep or not head.startswith(prefix + "_"):
        return None
    number = head[len(prefix) + 1:]
    return int(number) if number.isdigit() else None


def device_option(model, device: int):
    return core.DeviceOption(model._device_type, device)


def group_by_device(model, blobs, skip: int = 0) -> OrderedDict:
    """{stripped name: {device: blob}} for blobs[skip:] (the first `skip` were made before
    Parallelize and are not data parallel), in their order."""
    grouped: OrderedDict = OrderedDict()
    for blob in list(blobs)[skip:]:
        named = blob.indices if isinstance(blob, core.GradientSlice) else blob
        device = device_of(named, model._device_prefix)
        if device is None or device not in model._devices:
            raise ValueError(f"data_parallel_model: blob {named} is not under a device NameScope "
                             f"({model._device_prefix}_N/ for N in {list(model._devices)}): create params "
                             "inside input_builder_fun / forward_pass_builder_fun, which run in those scopes")
        grouped.setdefault(stripBlobName(blob), {})[device] = blob
    return grouped


def check_on_every_device(model, grouped: dict, what: str) -> None:
    for name, copies in grouped.items():
        missing = [d for d in model._devices if d not in copies]
        if missing:
            raise ValueError(f"data_parallel_model: {what} {name} exists on devices {sorted(copies)} but not on "
                             f"{missing}: every replica must build the same blobs")


def broadcast(model, net, name: str) -> None:
    """Copy the first device's copy of `name` to every other device."""
    copies = model._device_grouped_blobs[name]
    master = model._devices[0]
    for device in model._devices[1:]:
        with core.DeviceScope(device_option(model, device)):
            net.Copy([core.BlobReference(str(copies[master]))], [core.BlobReference(str(copies[device]))])


def all_reduce(model, net, names) -> None:
    """Sum each gradient of `names` into the first device's copy, then copy the sum back
    to the others: every replica then holds the gradient of the summed (scaled) losses."""
    if len(model._devices) == 1:
        return
    concatenated_indices: dict = {}
    for name in names:
        copies = [model._device_grouped_blobs[name][d] for d in model._devices]
        if isinstance(copies[0], core.GradientSlice):
            _all_gather_slices(model, net, name, copies, concatenated_indices)
            continue
        with core.DeviceScope(device_option(model, model._devices[0])):
            net.Sum([core.BlobReference(str(c)) for c in copies], [core.BlobReference(str(copies[0]))],
                    name=DPM_OP_NAME)
        broadcast(model, net, name)


def _all_gather_slices(model, net, name, slices, concatenated_indices) -> None:
    """A sparse gradient (GradientSlice) is gathered, not summed: every device gets the rows
    of all devices (indices and values concatenated); a sparse update applies each row."""
    master = f"{model._device_prefix}_{model._devices[0]}"
    key = tuple(str(s.indices) for s in slices)
    with core.DeviceScope(device_option(model, model._devices[0])):
        if key not in concatenated_indices:  # two gradients may share one indices blob
            concatenated_indices[key] = net.Concat(
                [core.BlobReference(k) for k in key],
                [core.BlobReference(f"{master}/{name}_index_concat"),
                 core.BlobReference(f"{master}/{name}_index_splitinfo")], axis=0, name=DPM_OP_NAME)[0]
            _copy_to_each(model, net, concatenated_indices[key], [s.indices for s in slices])
        values = net.Concat([core.BlobReference(str(s.values)) for s in slices],
                            [core.BlobReference(f"{master}/{name}_val_concat"),
                             core.BlobReference(f"{master}/{name}_val_splitinfo")], axis=0, name=DPM_OP_NAME)[0]
    _copy_to_each(model, net, values, [s.values for s in slices])


def _copy_to_each(model, net, source, targets) -> None:
    for device, target in zip(model._devices, targets):
        with core.DeviceScope(device_option(model, device)):
            net.Copy([core.BlobReference(str(source))], [core.BlobReference(str(target))])


def blobs_to_sync(model) -> tuple[list, list]:
    """(blobs, stripped names) of what param_init_net makes under a device scope: the params,
    the optimizer's state, anything else per device. They are copied from the first device
    to the others after init, so every replica starts from the same values."""
    blobs: list = []
    for op in model.param_init_net.Proto().op:
        blobs.extend(o for o in op.output if device_of(o, model._device_prefix) is not None)
    names = {stripBlobName(b) for b in blobs}
    missing = sorted(set(model._param_names) - names)
    if missing:
        raise ValueError(f"data_parallel_model: params {missing} are not made by param_init_net")
    ordered = sorted(set(blobs), key=lambda b: (device_of(b, model._device_prefix), b))
    return [core.BlobReference(b) for b in ordered], sorted(names)


def sync_from_master(model, net, names) -> None:
    """Copy ops in `net` that set every device's copy of `names` to the first device's."""
    for name in names:
        if name not in model._device_grouped_blobs:
            model._device_grouped_blobs[name] = {
                d: core.BlobReference(f"{model._device_prefix}_{d}/{name}") for d in model._devices}
        broadcast(model, net, name)


def check_device_crossing(model) -> None:
    """No op of replica N may touch replica M's blobs, except data_parallel_model's own
    Sum/Copy/Concat (Caffe2 checks this for its GPU replicas)."""
    for index, op in enumerate(model.net.Proto().op):
        if op.type in ("Copy", "Concat") or op.name == DPM_OP_NAME:
            continue
        devices = {device_of(b, model._device_prefix) for b in list(op.input) + list(op.output)}
        devices.discard(None)
        if len(devices) > 1:
            raise ValueError(f"data_parallel_model: op {index} ({op.type}) of {model.net.Proto().name} mixes "
                             f"the blobs of devices {sorted(devices)} ({', '.join(op.input)} -> "
                             f"{', '.join(op.output)}): a replica may use its own blobs only")
