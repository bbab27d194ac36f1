"""data_parallel_model on Dask: `Parallelize(..., client=client)` puts one replica on each
worker of a dask.distributed Client and trains them with pycaffe2.distributed's
DataParallelTrainer (a pycaffe2 extension; Caffe2 spread replicas over GPUs and hosts).

The model is built once, as ONE replica, under the NameScope of the first device
(`cpu_0/` or `gpu_0/`), and split in four nets: param_init_net (every worker runs it), the
input net, the step net (forward and backward) and the update net (the optimizer). So that
the workers together train on what len(devices) replicas sharing a reader would read in one
process, the input net runs input_builder_fun once per replica and concatenates the
batches; worker k keeps the k-th part (the trainer's shard). The gradients are averaged over
the workers, weighted by their rows, so the forward pass gets loss_scale 1.0 here (in one
process the replicas' gradients are summed and it gets 1/len(devices)). model.net holds the
same ops in one net: run in one process it trains that replica on the whole batch.

Drive it with dpm.RunInitNet(model) and dpm.RunNet(model, num_iterations) (which returns the
step net's losses averaged over the workers); after each, the first replica's checkpoint
blobs (GetCheckpointParams) are copied into this process's workspace, so
workspace.FetchBlob('cpu_0/fc_w') works as in Caffe2. FinalizeAfterCheckpoint(model) sends
this workspace's values of those blobs to every worker. model._dask_trainer is the trainer
(fetch(name, replica=k), timings, close()).
"""
from __future__ import annotations

import logging

from pycaffe2 import core, workspace
from pycaffe2.data_parallel_model_sync import group_by_device, stripBlobName
from pycaffe2.proto import caffe2_pb2

log = logging.getLogger("data_parallel_model")

_INPUT_SCOPE = "_input_{}"  # copy k of the input builder, inside the replica's NameScope


def parallelize_on_dask(model, client, input_builder_fun, forward_pass_builder_fun, param_update_builder_fun,
                        optimizer_builder_fun, *, devices, cpu_device: bool, net_type: str,
                        combine_spatial_bn: bool = False):
    """Build one replica's nets and start a DataParallelTrainer on the chosen workers."""
    from pycaffe2.distributed.cluster import worker_addresses
    from pycaffe2.distributed.training import DataParallelTrainer
    if param_update_builder_fun is None and optimizer_builder_fun is None:
        raise ValueError("Parallelize(client=...) trains; a forward-only model on Dask workers is batch "
                         "inference: use pycaffe2.distributed.predict")
    addresses = worker_addresses(client)
    devices = _worker_indices(devices, len(addresses))
    model._devices, model._device_prefix, model._device_type = devices, "cpu" if cpu_device else "gpu", caffe2_pb2.CPU
    model._rendezvous, model._shared_model, model._optimizer = None, False, None
    non_parallel = len(model.params)
    scope = f"{model._device_prefix}_{devices[0]}"
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU, devices[0])), core.NameScope(scope):
        copies = _build_input_copies(model, input_builder_fun, len(devices))
        input_end = len(model.net.Proto().op)
        losses = forward_pass_builder_fun(model, 1.0)
    _check_losses(losses)
    if combine_spatial_bn and len(devices) > 1 and any(
            op.type == "SpatialBN" and not any(a.name == "is_test" and a.i for a in op.arg)
            for op in model.net.Proto().op):
        raise NotImplementedError("Parallelize(client=...): combine_spatial_bn (batch statistics across workers) "
                                  "is not available on Dask; each worker normalises over its own rows")
    _add_backward(model, losses, devices[0])
    step_end = len(model.net.Proto().op)
    _add_updates(model, param_update_builder_fun, optimizer_builder_fun, devices[0], scope)
    ops = list(model.net.Proto().op)
    concat_ops, shard = _concatenations(ops[:input_end], ops[input_end:step_end], scope, copies)
    input_net = _net(f"{model.net.Proto().name}_input", ops[:input_end] + concat_ops, net_type)
    step_net = _net(f"{model.net.Proto().name}_step", ops[input_end:step_end], net_type)
    step_net.external_output.extend(str(loss) for loss in losses)
    update_net = _net(f"{model.net.Proto().name}_update", ops[step_end:], net_type)
    del model.net.Proto().op[:]
    model.net.Proto().op.extend(list(input_net.op) + list(step_net.op) + list(update_net.op))
    sync = _sync_blobs(model, non_parallel)
    model._losses_by_gpu = {devices[0]: losses}
    model._data_parallel_model_init_nets = [model.param_init_net]
    model._data_parallel_model_nets = [model.net]
    trainer = DataParallelTrainer(client, model.param_init_net.Proto(), input_net, step_net, update_net,
                                  shard=shard, sync=sync, workers=[addresses[d] for d in devices])
    model._dask_trainer = trainer
    return trainer


def _worker_indices(devices, count: int) -> list:
    if devices is None:
        return list(range(count))
    devices = list(devices)
    if not devices or len(set(devices)) != len(devices) or any(
            isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < count for d in devices):
        raise ValueError(f"Parallelize(client=...): devices index the client's {count} worker(s): distinct "
                         f"ints in [0, {count}), got {devices}")
    return devices


def _build_input_copies(model, input_builder_fun, copies: int) -> int:
    """input_builder_fun once per replica, copy k under `_input_k/` (one copy: no sub-scope)."""
    if copies == 1:
        input_builder_fun(model)
        return 1
    for k in range(copies):
        with core.NameScope(_INPUT_SCOPE.format(k)):
            input_builder_fun(model)
    return copies


def _check_losses(losses) -> None:
    if not isinstance(losses, list) or not losses or not all(isinstance(b, core.BlobReference) for b in losses):
        raise ValueError(f"forward_pass_builder_fun must return a non-empty list of loss blobs (BlobReferences) "
                         f"to train, got {losses!r}")


def _add_backward(model, losses, device: int) -> None:
    loss_grads = {}
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU, device)):
        for loss in losses:
            loss_grads[str(loss)] = str(model.net.ConstantFill([loss], [core.BlobReference(f"{loss}_grad")],
                                                               value=1.0))
    model.AddGradientOperators(loss_grads)


def _add_updates(model, param_update_builder_fun, optimizer_builder_fun, device: int, scope: str) -> None:
    if param_update_builder_fun is not None:
        with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU, device)), core.NameScope(scope):
            param_update_builder_fun(model)
    else:
        model._optimizer = optimizer_builder_fun(model)


def _concatenations(input_ops, step_ops, scope: str, copies: int) -> tuple[list, list]:
    """(Concat ops joining the copies' batches, the shard blobs): the input blobs the step net reads."""
    read = {b for op in step_ops for b in op.input}
    made = [b for op in input_ops for b in op.output]
    if copies == 1:
        shard = [b for b in dict.fromkeys(made) if b in read]
        return [], _require_shard(shard)
    first = f"{scope}/{_INPUT_SCOPE.format(0)}/"
    names = [b[len(first):] for b in dict.fromkeys(made) if b.startswith(first)]
    shard = [f"{scope}/{name}" for name in names if f"{scope}/{name}" in read]
    concats = [core.CreateOperator("Concat", [f"{scope}/{_INPUT_SCOPE.format(k)}/{name}" for k in range(copies)],
                                   [f"{scope}/{name}", f"{scope}/{name}_input_split"], axis=0,
                                   device_option=core.DeviceOption(caffe2_pb2.CPU))
               for name in (stripBlobName(b) for b in shard)]
    return concats, _require_shard(shard)


def _require_shard(shard: list) -> list:
    if not shard:
        raise ValueError("Parallelize(client=...): input_builder_fun made no blob the forward pass reads; on Dask "
                         "workers the input builder must make the batch (e.g. a TensorProtosDBInput on a reader "
                         "created before Parallelize): blobs fed in this process do not reach the workers")
    return shard


def _net(name: str, ops, net_type: str) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(name=name, op=ops, type=net_type)


def _sync_blobs(model, non_parallel: int) -> list:
    """The dense gradients of the replica's params and its computed params (running statistics)."""
    params = group_by_device(model, model.params, non_parallel)
    computed = group_by_device(model, model.GetComputedParams(""))
    model._device_grouped_blobs = params
    model._device_grouped_blobs.update(computed)
    model._param_names, model._computed_param_names = list(model._device_grouped_blobs), list(computed)
    sync = []
    for copies in params.values():
        param = next(iter(copies.values()))
        grad = model.param_to_grad.get(param)
        if isinstance(grad, core.GradientSlice):
            raise NotImplementedError(f"Parallelize(client=...): param {param} has a sparse gradient (a "
                                      "GradientSlice), which the Dask trainer cannot average; give its Gather "
                                      "ops dense_gradient=1 or train it in one process")
        if grad is not None:
            sync.append(str(grad))
    model._grad_names = [stripBlobName(g) for g in sync]
    return sync + [str(next(iter(c.values()))) for c in computed.values()]


def _checkpoint_names(model) -> list:
    from pycaffe2.data_parallel_model import GetCheckpointParams
    return sorted(str(b) for b in GetCheckpointParams(model))


def _hand_back(model) -> None:
    """The first replica's checkpoint blobs into this process's workspace."""
    for name, value in model._dask_trainer.state(_checkpoint_names(model)).items():
        workspace.FeedBlob(name, value)


def run_init(model) -> None:
    model._dask_trainer.run_init()
    _hand_back(model)


def run_net(model, num_iterations: int) -> dict:
    if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) or num_iterations < 0:
        raise ValueError(f"RunNet: num_iterations must be a whole number >= 0, not {num_iterations!r}")
    metrics = model._dask_trainer.run(num_iterations)
    _hand_back(model)
    return metrics


def load_checkpoint(model, blobs=None) -> None:
    """This workspace's values of the checkpoint blobs (or of `blobs`) to every replica."""
    names = _checkpoint_names(model) if blobs is None else [str(b) for b in blobs]
    missing = [n for n in names if not workspace.HasBlob(n)]
    if missing:
        raise ValueError(f"FinalizeAfterCheckpoint: this workspace has no {', '.join(missing)} to send to the "
                         "workers: load the checkpoint first")
    model._dask_trainer.load_state({name: workspace.FetchBlob(name) for name in names})
