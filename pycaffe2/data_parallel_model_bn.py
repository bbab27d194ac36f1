"""combine_spatial_bn: SpatialBN over the batch of all replicas in one process (Caffe2's
inter-device batch normalization), instead of each replica over its own rows.

The replicas' ops are interleaved first (the j-th op of every device side by side), so that
at each SpatialBN every device's input exists. Forward: each device's ChannelStats, summed on
the first device and copied to the others, feed every SpatialBN (num_batches = devices).
Backward: each device's ChannelBackpropStats, summed and copied back into the scale and bias
gradient blobs, are the SpatialBNGradient's aggregate inputs; the op leaves 1/num_batches of
them there, which the gradient all-reduce sums again to the whole batch's gradient.
"""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.data_parallel_model_sync import DPM_OP_NAME, stripBlobName
from pycaffe2.schema.args import make_argument


def combine_spatial_bn(model) -> None:
    """Rewrite model.net (forward and backward of every replica) to normalise over all of them."""
    ops = _interleaved(model)
    combined, block = [], []
    for op in ops + [None]:
        if block and (op is None or not _same_bn_step(block[0], op)):
            combined.extend(_combine(model, block))
            block = []
        if op is None:
            break
        if op.type in ("SpatialBN", "SpatialBNGradient") and not _arg(op, "is_test"):
            block.append(op)
        else:
            combined.append(op)
    del model.net.Proto().op[:]
    model.net.Proto().op.extend(combined)


def _interleaved(model) -> list:
    per_device = {d: [] for d in model._devices}
    for index, op in enumerate(model.net.Proto().op):
        device = op.device_option.device_id
        if device not in per_device:
            raise ValueError(f"combine_spatial_bn: op {index} ({op.type}) is on device {device}, not one of the "
                             f"replicas {model._devices}")
        per_device[device].append(op)
    counts = {d: len(ops) for d, ops in per_device.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"combine_spatial_bn: the replicas have different op counts {counts}: they must be built "
                         "alike")
    interleaved = []
    for step in zip(*per_device.values()):
        if len({op.type for op in step}) != 1:
            raise ValueError(f"combine_spatial_bn: the replicas differ at one op ({[op.type for op in step]})")
        interleaved.extend(step)
    return interleaved


def _same_bn_step(first, op) -> bool:
    return op is not None and op.type == first.type and not _arg(op, "is_test") and \
        stripBlobName(op.output[0]) == stripBlobName(first.output[0])


def _arg(op, name: str) -> int:
    return next((a.i for a in op.arg if a.name == name), 0)


def _order(op) -> str:
    return next((a.s.decode() for a in op.arg if a.name == "order"), "NCHW")


def _combine(model, block) -> list:
    if len(block) != len(model._devices):
        raise ValueError(f"combine_spatial_bn: {block[0].type} writing {stripBlobName(block[0].output[0])} is on "
                         f"{len(block)} of the {len(model._devices)} replicas")
    for op in block:
        op.arg.append(make_argument("num_batches", len(block)))
    if block[0].type == "SpatialBN":
        return _forward(model, block)
    return _backward(model, block)


def _on(model, device: int, op):
    op.device_option.CopyFrom(core.DeviceOption(model._device_type, device))
    return op


def _sum_and_share(model, parts: list, shared: list, combined: str) -> list:
    """Sum `parts` on the first device into `combined`, then copy it into every blob of `shared`."""
    ops = [_on(model, model._devices[0], core.CreateOperator("Sum", parts, [combined], name=DPM_OP_NAME))]
    ops += [_on(model, device, core.CreateOperator("Copy", [combined], [target]))
            for device, target in zip(model._devices, shared) if target != combined]
    return ops


def _forward(model, block) -> list:
    order = _order(block[0])
    ops, sums, sumsqs = [], [], []
    for device, op in zip(model._devices, block):
        x = op.input[0]
        sums.append(f"{x}_sums")
        sumsqs.append(f"{x}_sumsq")
        ops.append(_on(model, device, core.CreateOperator("ChannelStats", [x], [sums[-1], sumsqs[-1]], order=order)))
    ops += _sum_and_share(model, sums, [f"{s}_combined" for s in sums], f"{sums[0]}_combined")
    ops += _sum_and_share(model, sumsqs, [f"{s}_combined" for s in sumsqs], f"{sumsqs[0]}_combined")
    for op, total, total_sq in zip(block, sums, sumsqs):
        op.input.extend([f"{total}_combined", f"{total_sq}_combined"])
    return ops + block


def _backward(model, block) -> list:
    if _order(block[0]) != "NCHW":
        raise NotImplementedError("combine_spatial_bn: the backward statistics (ChannelBackpropStats) are NCHW "
                                  f"only; {block[0].input[0]} is {_order(block[0])}")
    ops = []
    for device, op in zip(model._devices, block):
        x, _, dy, mean, inv_std = op.input[:5]
        ops.append(_on(model, device, core.CreateOperator("ChannelBackpropStats", [x, mean, inv_std, dy],
                                                          [op.output[1], op.output[2]])))
    scale_grads, bias_grads = [op.output[1] for op in block], [op.output[2] for op in block]
    ops += _sum_and_share(model, scale_grads, scale_grads, f"{scale_grads[0]}_combined")
    ops += _sum_and_share(model, bias_grads, bias_grads, f"{bias_grads[0]}_combined")
    for op in block:
        op.input.extend([op.output[1], op.output[2]])
    return ops + block
