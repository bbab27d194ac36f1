"""Caffe2's `data_parallel_model`: one model replicated over devices, trained with
synchronous SGD.

    from pycaffe2 import data_parallel_model as dpm
    dpm.Parallelize_CPU(model, input_builder_fun=add_inputs, forward_pass_builder_fun=add_model,
                        optimizer_builder_fun=add_sgd, devices=[0, 1])
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net)            # both replicas, the all-reduce, both updates
    workspace.FetchBlob("cpu_0/fc_w")

In one process (the default) replica N's blobs live under `cpu_N/` (Parallelize_CPU) or
`gpu_N/` (Parallelize_GPU), all in `model.net`, as Caffe2 built them: the builders run
once per device, each forward pass gets loss_scale = 1/len(devices), the gradients are
summed on the first device (Sum) and copied back (Copy) before each replica's update, and
param_init_net ends with copies of the first device's params to the others. Without CUDA
the `gpu_N/` replicas keep their names and run on the CPU (one warning says so).

With `client=<dask.distributed.Client>` (a pycaffe2 extension) each replica runs on a
worker of the client instead: see pycaffe2.data_parallel_model_dask and
docs/distributed.md.
"""
from __future__ import annotations

import copy
import logging

from pycaffe2 import core, memonger, model_helper, workspace
from pycaffe2.data_parallel_model_bn import combine_spatial_bn as combine_bn_over_devices
from pycaffe2.data_parallel_model_sync import (
    all_reduce,
    blobs_to_sync,
    broadcast,
    check_device_crossing,
    check_on_every_device,
    device_of,
    group_by_device,
    stripBlobName,
    sync_from_master,
)
from pycaffe2.proto import caffe2_pb2

log = logging.getLogger("data_parallel_model")

__all__ = ["AddBlobSync", "ConvertNetForDevice", "ExtractPredictorNet", "FinalizeAfterCheckpoint",
           "GetCheckpointParams", "GetLearningRateBlobNames", "OptimizeGradientMemory", "Parallelize",
           "Parallelize_CPU", "Parallelize_GPU", "RunInitNet", "RunNet", "Synchronize", "stripBlobName"]


def Parallelize_GPU(*args, **kwargs):
    """Parallelize with `gpu_N/` replicas (on the CPU when CUDA is unavailable)."""
    kwargs["cpu_device"] = False
    return Parallelize(*args, **kwargs)


def Parallelize_CPU(*args, **kwargs):
    """Parallelize with `cpu_N/` replicas."""
    kwargs["cpu_device"] = True
    return Parallelize(*args, **kwargs)


def Parallelize(model_helper_obj, input_builder_fun, forward_pass_builder_fun, param_update_builder_fun=None,
                optimizer_builder_fun=None, post_sync_builder_fun=None, pre_grad_net_transformer_fun=None,
                net_transformer_fun=None, devices=None, rendezvous=None, net_type="dag",
                broadcast_computed_params=True, optimize_gradient_memory=False, dynamic_memory_management=False,
                blobs_to_keep=None, use_nccl=False, max_concurrent_distributed_ops=16, cpu_device=False,
                num_threads_per_device=4, shared_model=False, combine_spatial_bn=False,
                barrier_net_timeout_sec=None, client=None):
    """Replicate the model built by the builder functions over `devices` (Caffe2's arguments).

    input_builder_fun(model) and forward_pass_builder_fun(model, loss_scale) run once per
    device, inside its DeviceScope and NameScope; the latter returns the list of losses.
    Then either param_update_builder_fun(model) runs once per device, or
    optimizer_builder_fun(model) once for all (its return value is model._optimizer);
    with neither, the model is forward only (a test model). Accepted and without effect
    here, because the result is the same: use_nccl, shared_model, dynamic_memory_management,
    blobs_to_keep, max_concurrent_distributed_ops, barrier_net_timeout_sec. combine_spatial_bn
    normalises SpatialBN over the batch of all replicas (in one process). Refused: rendezvous
    across several hosts (use `client=`).

    client: a dask.distributed.Client: one replica per worker (`devices` index its workers,
    default all); returns the DataParallelTrainer that runs it (also model._dask_trainer).
    """
    model = model_helper_obj
    if not isinstance(model, model_helper.ModelHelper):
        raise TypeError(f"Parallelize takes a ModelHelper, not {type(model).__name__}")
    scope = core.CurrentDeviceScope()
    if scope is not None and scope.device_type != caffe2_pb2.CPU:
        raise ValueError(f"Parallelize must be called outside a device scope (it sets one per device); "
                         f"it was called under DeviceScope(device_type={scope.device_type})")
    if param_update_builder_fun is not None and optimizer_builder_fun is not None:
        raise ValueError("Parallelize takes param_update_builder_fun or optimizer_builder_fun, not both")
    _refuse_unsupported(rendezvous, client)
    if client is not None:
        from pycaffe2.data_parallel_model_dask import parallelize_on_dask
        return parallelize_on_dask(model, client, input_builder_fun, forward_pass_builder_fun,
                                   param_update_builder_fun, optimizer_builder_fun, devices=devices,
                                   cpu_device=cpu_device, net_type=net_type, combine_spatial_bn=combine_spatial_bn)
    _place_replicas(model, devices, cpu_device)
    model.net.Proto().num_workers = len(model._devices) * num_threads_per_device
    model.net.Proto().type = net_type
    model._rendezvous = None
    model._shared_model = False  # each replica keeps its copy: the update is the same
    model._grad_names = []
    model._optimizer = None
    has_updates = param_update_builder_fun is not None or optimizer_builder_fun is not None
    if not has_updates and model.init_params:
        log.warning("model %s is forward only (a test model) but has init_params=True: running its "
                    "param_init_net overwrites the params a training model shares with it; build it with "
                    "ModelHelper(init_params=False)", model.name)
    non_parallel_params = list(model.params)
    losses = _build_replicas(model, input_builder_fun, forward_pass_builder_fun, has_updates)
    model._device_grouped_blobs = group_by_device(model, model.params, len(non_parallel_params))
    computed = group_by_device(model, model.GetComputedParams(""))
    check_on_every_device(model, model._device_grouped_blobs, "param")
    check_on_every_device(model, computed, "computed param")
    model._device_grouped_blobs.update(computed)
    model._param_names = list(model._device_grouped_blobs)
    model._computed_param_names = list(computed)
    if pre_grad_net_transformer_fun:
        pre_grad_net_transformer_fun(model)
    if has_updates:
        _add_gradient_operators(model, losses)
    if net_transformer_fun:
        net_transformer_fun(model, len(model._devices), model._device_prefix, model._device_type)
    model._data_parallel_model_init_nets = [model.param_init_net]
    model._data_parallel_model_nets = [model.net]
    if not has_updates:
        log.info("no parameter update function: the model is forward only")
        return None
    if combine_spatial_bn and len(model._devices) > 1:
        combine_bn_over_devices(model)
    _sync_gradients(model, non_parallel_params, broadcast_computed_params)
    _add_updates(model, param_update_builder_fun, optimizer_builder_fun)
    blobs, names = blobs_to_sync(model)
    synced = group_by_device(model, blobs)
    check_on_every_device(model, synced, "param_init_net blob")
    model._device_grouped_blobs.update(synced)
    if model._device_prefix == "gpu":
        check_device_crossing(model)
    sync_from_master(model, model.param_init_net, names)
    if post_sync_builder_fun is not None:
        _for_each_device(model, post_sync_builder_fun)
    if optimize_gradient_memory:
        _share_gradient_blobs(model, losses)
    return None


def _refuse_unsupported(rendezvous, client) -> None:
    """Options that would change the result here are refused, naming what to do instead."""
    shards = rendezvous.get("num_shards", 1) if isinstance(rendezvous, dict) else None
    if rendezvous is not None and (shards is None or shards > 1):
        raise NotImplementedError(
            "data_parallel_model: rendezvous (Gloo across hosts) is not available in pycaffe2; pass "
            "client=<dask.distributed.Client> to Parallelize to train one replica per Dask worker")
    if client is not None and rendezvous is not None:
        raise ValueError("Parallelize takes client= or rendezvous=, not both")


def _place_replicas(model, devices, cpu_device: bool) -> None:
    """model._devices, _device_prefix and _device_type: `gpu_N/` replicas go on CUDA when it
    works here, else on the CPU under the same names (scripts fetch 'gpu_0/...')."""
    if devices is None:
        devices = list(range(workspace.NumCudaDevices())) if not cpu_device else []
        devices = devices or [0]
    devices = list(devices)
    if not devices or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in devices) \
            or len(set(devices)) != len(devices):
        raise ValueError(f"data_parallel_model: devices must be distinct device ids (ints >= 0), got {devices}")
    model._devices = devices
    model._device_prefix = "cpu" if cpu_device else "gpu"
    model._device_type = caffe2_pb2.CPU
    if not cpu_device:
        if workspace.has_gpu_support:
            model._device_type = caffe2_pb2.CUDA
        else:
            log.warning("data_parallel_model: CUDA is unavailable here, so the GPU replicas %s run on the "
                        "CPU (their blobs keep the gpu_N/ names)", devices)


def _for_each_device(model, builder, *args):
    """builder(model, *args) once per device, in its DeviceScope and NameScope: {device: result}."""
    results = {}
    for device in model._devices:
        with core.DeviceScope(core.DeviceOption(model._device_type, device)), \
                core.NameScope(f"{model._device_prefix}_{device}"):
            results[device] = builder(model, *args)
    return results


def _build_replicas(model, input_builder_fun, forward_pass_builder_fun, has_updates: bool) -> dict:
    loss_scale = 1.0 / len(model._devices)

    def build(model, loss_scale):
        input_builder_fun(model)
        return forward_pass_builder_fun(model, loss_scale)

    losses = _for_each_device(model, build, loss_scale)
    if has_updates:
        for device, device_losses in losses.items():
            if not isinstance(device_losses, list) or not all(
                    isinstance(loss, core.BlobReference) for loss in device_losses):
                raise ValueError("forward_pass_builder_fun must return a list of loss blobs (BlobReferences) "
                                 f"to train; for device {device} it returned {device_losses!r}")
    model.Validate()
    return losses


def _add_gradient_operators(model, losses: dict) -> None:
    """A gradient of ones for every loss, made on its device, then the backward pass."""
    loss_grads = {}
    for device in model._devices:
        with core.DeviceScope(core.DeviceOption(model._device_type, device)):
            for loss in losses[device]:
                loss_grads[str(loss)] = str(model.net.ConstantFill([loss], [core.BlobReference(f"{loss}_grad")],
                                                                   value=1.0))
    model._losses_by_gpu = losses
    model.AddGradientOperators(loss_grads)


def _sync_gradients(model, non_parallel_params, broadcast_computed_params: bool) -> None:
    param_to_grad = model.param_to_grad
    grads = [param_to_grad[p] for p in model.params if p in param_to_grad]
    skip = len([p for p in non_parallel_params if p in param_to_grad])
    grouped = group_by_device(model, grads, skip)
    check_on_every_device(model, grouped, "gradient")
    model._device_grouped_blobs.update(grouped)
    model._grad_names = list(grouped)
    if broadcast_computed_params:
        for name in model._computed_param_names:
            broadcast(model, model.net, name)
    if model._grad_names:
        all_reduce(model, model.net, list(reversed(model._grad_names)))  # last layers' gradients are ready first
    else:
        log.info("the forward pass made no parameters with gradients: nothing to all-reduce")


def _add_updates(model, param_update_builder_fun, optimizer_builder_fun) -> None:
    if param_update_builder_fun is not None:
        _for_each_device(model, param_update_builder_fun)
    else:
        model._optimizer = optimizer_builder_fun(model)


def _share_gradient_blobs(model, losses: dict, excluded=None, recycle_activations=False, shapes=None) -> None:
    grads = {str(g) for g in model.param_to_grad.values()}
    for device in model._devices:
        namescope = f"{model._device_prefix}_{device}/"
        model.net._net = memonger.share_grad_blobs(
            model.net, [str(loss) for loss in losses[device]], grads, namescope,
            dont_share_blobs={namescope + b for b in excluded or ()}, share_activations=recycle_activations,
            blob_shapes=shapes)


def OptimizeGradientMemory(model, input_shapes, excluded_blobs, recycle_activations) -> None:
    """Share the blobs of each replica's backward pass (memonger.share_grad_blobs);
    `input_shapes` ({name: shape} without the device scope) sizes them when given,
    `excluded_blobs` (names without the device scope) keep their own."""
    shapes = None
    if input_shapes is not None:
        per_device = {f"{model._device_prefix}_{d}/{b}": shape for b, shape in input_shapes.items()
                      for d in model._devices}
        shapes, _ = workspace.InferShapesAndTypes([model.param_init_net, model.net], per_device)
    _share_gradient_blobs(model, model._losses_by_gpu, excluded_blobs, recycle_activations, shapes)


def RunInitNet(model) -> None:
    """Run the init nets and create the nets (on the Dask workers with `client=`)."""
    trainer = getattr(model, "_dask_trainer", None)
    if trainer is not None:
        from pycaffe2.data_parallel_model_dask import run_init
        return run_init(model)
    for init_net in model._data_parallel_model_init_nets:
        workspace.RunNetOnce(init_net)
    for net in model._data_parallel_model_nets:
        workspace.CreateNet(net)
    return None


def RunNet(model, num_iterations: int):
    """Run `num_iterations` training iterations (Dask: returns the last step's metrics)."""
    if getattr(model, "_dask_trainer", None) is not None:
        from pycaffe2.data_parallel_model_dask import run_net
        return run_net(model, num_iterations)
    for net in model._data_parallel_model_nets:
        workspace.RunNet(net, num_iterations)
    return None


def Synchronize(model, timeout_sec: float = 30) -> None:
    """A barrier across hosts in Caffe2. Here the replicas are always in lockstep (one process,
    or the Dask trainer's synchronous step), so there is nothing to wait for."""


def ConvertNetForDevice(net, device=None):
    """A copy of `net` with every blob under a device's NameScope and every op on that device;
    inside a builder function (device=None) the current replica's. Use it to AppendNet
    another model's nets into each replica."""
    converted = copy.deepcopy(net)
    device = device if device is not None else core.CurrentDeviceScope()
    namescope = core.CurrentNameScope()
    if device is None:
        raise ValueError("ConvertNetForDevice needs a device: call it inside a builder function or pass device=")
    if all(device_of(namescope, prefix) is None for prefix in ("gpu", "cpu")):
        prefix = "gpu" if device.device_type == caffe2_pb2.CUDA else "cpu"
        namescope = f"{prefix}_{device.device_id}/"
    proto = converted.Proto()
    for op in proto.op:
        if op.type.startswith("RecurrentNetwork"):
            raise NotImplementedError("ConvertNetForDevice: RecurrentNetwork ops cannot be converted yet")
        for field in (op.input, op.output, op.control_input):
            field[:] = [namescope + b for b in field]
        op.device_option.CopyFrom(device)
    for field in (proto.external_input, proto.external_output):
        field[:] = [namescope + b for b in field]
    return converted


def ExtractPredictorNet(model, inputs, outputs, device):
    """(net, params) of the first replica's prediction net, its blobs without the device scope."""
    prefix = f"{model._device_prefix}_{model._devices[0]}/"
    prefixed_inputs = [prefix + str(b) for b in inputs]
    prefixed_outputs = [prefix + str(b) for b in outputs]
    renames = dict(zip(prefixed_inputs + prefixed_outputs, [str(b) for b in list(inputs) + list(outputs)]))
    proto = caffe2_pb2.NetDef()
    proto.CopyFrom(model.net.Proto())
    proto.external_input.extend(_undefined_inputs(proto))
    return model_helper.ExtractPredictorNet(proto, prefixed_inputs, prefixed_outputs, device=device,
                                            renames=renames)


def _undefined_inputs(proto) -> list:
    """The blobs ops read before any op writes them (params, data) and that the net does not
    list yet: Caffe2's Net adds them to external_input as ops are added."""
    made, undefined = set(proto.external_input), {}
    for op in proto.op:
        undefined.update((b, None) for b in op.input if b not in made)
        made.update(op.input)
        made.update(op.output)
    return list(undefined)


def GetCheckpointParams(model) -> set:
    """The blobs a checkpoint needs: the first device's params, optimizer state and computed
    params, and the iteration counters outside any device scope."""
    blobs, _ = blobs_to_sync(model)
    first = f"{model._device_prefix}_{model._devices[0]}/"
    checkpoint = {b for b in blobs if str(b).startswith(first)}
    for op in model.net.Proto().op:
        if op.type in ("Iter", "AtomicIter") and device_of(op.output[0], model._device_prefix) is None:
            checkpoint.add(core.BlobReference(op.output[0]))
    return checkpoint


def FinalizeAfterCheckpoint(model, blobs=None) -> None:
    """After loading the first device's blobs from a checkpoint: copy them to the other
    devices (all synced blobs, or those of `blobs`)."""
    if getattr(model, "_dask_trainer", None) is not None:
        from pycaffe2.data_parallel_model_dask import load_checkpoint
        return load_checkpoint(model, blobs)
    if not hasattr(model, "_checkpoint_net"):
        names = blobs_to_sync(model)[1] if blobs is None else [stripBlobName(b) for b in blobs]
        model._checkpoint_net = core.Net("checkpoint_sync_net")
        sync_from_master(model, model._checkpoint_net, names)
        workspace.CreateNet(model._checkpoint_net)
    workspace.RunNet(model._checkpoint_net.Proto().name)
    return None


def AddBlobSync(model, blobs, net=None) -> None:
    """Copy the first device's copy of each of `blobs` (names without the device scope) to
    the other devices, in `net` (default model.net)."""
    if not blobs:
        return
    for blob in blobs:
        if device_of(blob, model._device_prefix) is not None:
            raise ValueError(f"AddBlobSync takes blob names without the device scope, not {blob}")
    sync_from_master(model, model.net if net is None else net, sorted(set(map(str, blobs))))


def GetLearningRateBlobNames(model) -> list:
    """The learning-rate blobs of the model's updates (the LearningRate ops' outputs)."""
    return [op.output[0] for op in model.net.Proto().op if op.type == "LearningRate"]
