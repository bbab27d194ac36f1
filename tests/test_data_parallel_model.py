"""data_parallel_model in one process: replicas under cpu_N/ (and gpu_N/, on the CPU
without CUDA) give the update of one device over the whole batch; Caffe2's names,
checkpoint blobs, builder paths and the refusals."""
import logging

import numpy as np
import pytest

from pycaffe2 import brew, core, db, model_helper, optimizer, workspace
from pycaffe2 import data_parallel_model as dpm
from pycaffe2.proto import caffe2_pb2

BATCH, DIM_IN, HIDDEN, CLASSES = 8, 4, 6, 3


def mlp_params(seed=7) -> dict:
    """Initial params (names without the device scope) every run starts from."""
    rng = np.random.RandomState(seed)
    return {"fc1_w": rng.randn(HIDDEN, DIM_IN).astype(np.float32) * 0.5,
            "fc1_b": rng.randn(HIDDEN).astype(np.float32) * 0.1,
            "fc2_w": rng.randn(CLASSES, HIDDEN).astype(np.float32) * 0.5,
            "fc2_b": np.zeros(CLASSES, np.float32)}


def batches(count, seed=0):
    rng = np.random.RandomState(seed)
    return [(rng.randn(BATCH, DIM_IN).astype(np.float32), rng.randint(0, CLASSES, BATCH).astype(np.int32))
            for _ in range(count)]


def mlp_forward(model, loss_scale):
    """A two-layer MLP without batch statistics; the loss scaled as Caffe2's scripts do."""
    hidden = brew.relu(model, brew.fc(model, "data", "fc1", dim_in=DIM_IN, dim_out=HIDDEN), "fc1_relu")
    logits = brew.fc(model, hidden, "fc2", dim_in=HIDDEN, dim_out=CLASSES)
    _, loss = model.net.SoftmaxWithLoss([logits, "label"], ["softmax", "loss"])
    return [model.net.Scale(loss, "loss_scaled", scale=loss_scale)]


def sgd(model):
    return optimizer.build_sgd(model, 0.2, policy="fixed", momentum=0.9)


def no_inputs(model):
    pass


def feed_params(model, params: dict) -> None:
    for device in model._devices:
        for name, value in params.items():
            workspace.FeedBlob(f"{model._device_prefix}_{device}/{name}", value)


def feed_shards(model, data, label) -> None:
    """Device k of N gets rows [k*B/N, (k+1)*B/N) of the batch."""
    step = len(data) // len(model._devices)
    for k, device in enumerate(model._devices):
        workspace.FeedBlob(f"{model._device_prefix}_{device}/data", data[k * step:(k + 1) * step])
        workspace.FeedBlob(f"{model._device_prefix}_{device}/label", label[k * step:(k + 1) * step])


def train_fed(devices, steps=3, cpu_device=True, net_type="dag", **kwargs):
    """Train the MLP on fed batches; returns (model, {device: {param: value}})."""
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name=f"mlp{len(devices)}")
    kwargs.setdefault("optimizer_builder_fun", sgd)
    dpm.Parallelize(model, input_builder_fun=no_inputs, forward_pass_builder_fun=mlp_forward,
                    devices=devices, cpu_device=cpu_device, net_type=net_type, **kwargs)
    for i, (data, label) in enumerate(batches(steps)):
        feed_shards(model, data, label)
        if i == 0:
            workspace.RunNetOnce(model.param_init_net)
            feed_params(model, mlp_params())
            workspace.CreateNet(model.net)
        workspace.RunNet(model.net.Proto().name)
    return model, fetch_params(model)


def fetch_params(model) -> dict:
    return {d: {n: workspace.FetchBlob(f"{model._device_prefix}_{d}/{n}") for n in mlp_params()}
            for d in model._devices}


def assert_same_params(left: dict, right: dict, **tolerance) -> None:
    for name in mlp_params():
        np.testing.assert_allclose(left[name], right[name], rtol=1e-5, atol=1e-6, err_msg=name, **tolerance)


@pytest.fixture(autouse=True)
def clean_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


@pytest.mark.parametrize("net_type", ["dag", "simple"])
def test_two_replicas_give_the_update_of_one_device_over_the_whole_batch(net_type):
    _, one = train_fed([0], net_type=net_type)
    _, two = train_fed([0, 1], net_type=net_type)
    assert not np.allclose(one[0]["fc1_w"], mlp_params()["fc1_w"])  # it trained
    assert_same_params(one[0], two[0])
    for name in mlp_params():  # the replicas agree exactly: the same summed gradient, the same update
        np.testing.assert_array_equal(two[0][name], two[1][name])


def test_four_replicas_with_device_ids_not_from_zero():
    _, one = train_fed([0])
    model, four = train_fed([2, 3, 5, 7])
    assert model._devices == [2, 3, 5, 7]
    assert_same_params(one[0], four[2])
    assert_same_params(four[2], four[7])


def test_the_net_holds_the_all_reduce_and_the_updates_as_caffe2_builds_them():
    model, _ = train_fed([0, 1], steps=1)
    ops = list(model.net.Proto().op)
    sums = [op for op in ops if op.type == "Sum" and op.name == "dpm"]
    assert [list(op.input) for op in sums] == [["cpu_0/fc2_b_grad", "cpu_1/fc2_b_grad"],
                                               ["cpu_0/fc2_w_grad", "cpu_1/fc2_w_grad"],
                                               ["cpu_0/fc1_b_grad", "cpu_1/fc1_b_grad"],
                                               ["cpu_0/fc1_w_grad", "cpu_1/fc1_w_grad"]]
    first_sum = ops.index(sums[0])
    copy_back = ops[first_sum + 1]
    assert (copy_back.type, list(copy_back.input), list(copy_back.output)) == \
        ("Copy", ["cpu_0/fc2_b_grad"], ["cpu_1/fc2_b_grad"])
    last_gradient_op = max(i for i, op in enumerate(ops) if op.type.endswith("Gradient"))
    updates = [i for i, op in enumerate(ops) if op.type == "MomentumSGDUpdate"]
    assert last_gradient_op < first_sum < min(updates) and len(updates) == 8
    init_copies = [(list(op.input), list(op.output)) for op in model.param_init_net.Proto().op if op.type == "Copy"]
    assert (["cpu_0/fc1_w"], ["cpu_1/fc1_w"]) in init_copies
    assert (["cpu_0/fc1_w_momentum"], ["cpu_1/fc1_w_momentum"]) in init_copies
    assert model.net.Proto().type == "dag" and model.net.Proto().num_workers == 8
    assert model._device_prefix == "cpu" and model._device_type == caffe2_pb2.CPU
    assert model._grad_names == ["fc1_w_grad", "fc1_b_grad", "fc2_w_grad", "fc2_b_grad"]
    assert model.GetDevices() == [0, 1]


def test_init_sync_gives_every_replica_the_first_devices_params():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="init_sync")
    dpm.Parallelize_CPU(model, no_inputs, mlp_forward, optimizer_builder_fun=sgd, devices=[0, 1, 2])
    workspace.RunNetOnce(model.param_init_net)  # random fills on every device, then copies from cpu_0
    for name in mlp_params():
        first = workspace.FetchBlob(f"cpu_0/{name}")
        for device in (1, 2):
            np.testing.assert_array_equal(workspace.FetchBlob(f"cpu_{device}/{name}"), first)


def test_gpu_replicas_keep_their_names_and_run_on_the_cpu_without_cuda(caplog):
    if workspace.has_gpu_support:
        pytest.skip("CUDA works here: the gpu_N replicas run on it")
    _, one = train_fed([0], cpu_device=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data_parallel_model"):
        model, two = train_fed([0, 1], cpu_device=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CUDA is unavailable" in warnings[0] and "gpu_N/" in warnings[0]
    assert model._device_prefix == "gpu" and model._device_type == caffe2_pb2.CPU
    assert workspace.HasBlob("gpu_1/fc2_w") and not workspace.HasBlob("cpu_0/fc2_w")
    assert_same_params(one[0], two[1])
    _, gpu_default = train_fed([0, 1], cpu_device=False)
    assert gpu_default.keys() == {0, 1}


def test_loss_scale_and_scopes_passed_to_the_builders():
    seen = []

    def forward(model, loss_scale):
        seen.append((core.CurrentNameScope(), core.CurrentDeviceScope().device_id, loss_scale))
        return mlp_forward(model, loss_scale)

    model = model_helper.ModelHelper(name="scales")
    dpm.Parallelize_CPU(model, no_inputs, forward, optimizer_builder_fun=sgd, devices=[0, 1, 3, 4])
    assert seen == [("cpu_0/", 0, 0.25), ("cpu_1/", 1, 0.25), ("cpu_3/", 3, 0.25), ("cpu_4/", 4, 0.25)]
    scales = [op for op in model.net.Proto().op if op.type == "Scale" and op.output[0].endswith("loss_scaled")]
    assert [op.arg[0].f for op in scales] == [0.25] * 4


def manual_momentum_sgd(model):
    """Caffe2's tutorial style: the update ops written per device (param_update_builder_fun)."""
    iteration = brew.iter(model, "iter")
    lr = model.net.LearningRate([iteration], "lr", base_lr=0.2, policy="fixed")
    for param in model.GetParams():
        grad = model.param_to_grad[param]
        # Caffe2 scripts write `param + "_momentum"` (a BlobReference in Caffe2, a plain str in
        # pycaffe2's core today, which the NameScope would prefix a second time)
        momentum = model.param_init_net.ConstantFill([param], core.BlobReference(f"{param}_momentum"), value=0.0)
        model.net.MomentumSGDUpdate([grad, momentum, lr, param], [grad, momentum, param], momentum=0.9,
                                 nesterov=1)


def test_param_update_builder_fun_runs_per_device_and_matches_the_optimizer_path():
    model, per_device = train_fed([0, 1], param_update_builder_fun=manual_momentum_sgd,
                                  optimizer_builder_fun=None)
    _, built = train_fed([0])
    assert_same_params(built[0], per_device[0])
    assert_same_params(per_device[0], per_device[1])
    assert sorted(dpm.GetLearningRateBlobNames(model)) == ["cpu_0/lr", "cpu_1/lr"]
    checkpoint = dpm.GetCheckpointParams(model)
    assert "cpu_0/fc1_w_momentum" in checkpoint and "cpu_0/iter" in checkpoint and "cpu_1/iter" not in checkpoint


def test_a_test_model_is_forward_only(caplog):
    model = model_helper.ModelHelper(name="test_model", init_params=False)
    with caplog.at_level(logging.WARNING, logger="data_parallel_model"):
        dpm.Parallelize_CPU(model, no_inputs, mlp_forward, param_update_builder_fun=None, devices=[0, 1])
    assert not caplog.records  # init_params=False: nothing to warn about
    assert not any(op.type.endswith("Gradient") or op.type == "Sum" for op in model.net.Proto().op)
    data, label = batches(1)[0]
    feed_shards(model, data, label)
    feed_params(model, mlp_params())
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net.Proto().name)
    np.testing.assert_allclose(np.concatenate([workspace.FetchBlob("cpu_0/softmax"),
                                               workspace.FetchBlob("cpu_1/softmax")]),
                               single_device_softmax(data), rtol=1e-5)
    trained = model_helper.ModelHelper(name="trained_test_model")
    with caplog.at_level(logging.WARNING, logger="data_parallel_model"):
        dpm.Parallelize_CPU(trained, no_inputs, mlp_forward, devices=[0, 1])
    assert "init_params=True" in caplog.text


def single_device_softmax(data):
    p = mlp_params()
    hidden = np.maximum(data @ p["fc1_w"].T + p["fc1_b"], 0)
    logits = hidden @ p["fc2_w"].T + p["fc2_b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def conv_bn_forward(model, loss_scale):
    conv = brew.conv(model, "data", "conv", dim_in=1, dim_out=2, kernel=3, pad=1)
    bn = brew.spatial_bn(model, conv, "bn", 2, epsilon=1e-3, is_test=False)
    fc = brew.fc(model, brew.relu(model, bn, "bn_relu"), "fc", dim_in=2 * 4 * 4, dim_out=CLASSES)
    _, loss = model.net.SoftmaxWithLoss([fc, "label"], ["softmax", "loss"])
    return [model.net.Scale(loss, "loss_scaled", scale=loss_scale)]


def test_checkpoint_params_are_the_first_devices_and_the_iteration_counter():
    model = model_helper.ModelHelper(name="checkpoint")
    dpm.Parallelize_CPU(model, no_inputs, conv_bn_forward, optimizer_builder_fun=sgd, devices=[1, 2, 3])
    checkpoint = dpm.GetCheckpointParams(model)
    for param in model.GetParams("cpu_1/"):
        assert param in checkpoint and param + "_momentum" in checkpoint
    for param in model.GetParams("cpu_2/") + model.GetComputedParams("cpu_2/"):
        assert param not in checkpoint
    assert model.GetComputedParams("cpu_1/") and set(model.GetComputedParams("cpu_1/")) <= checkpoint
    assert "cpu_1/data" not in checkpoint and "optimizer_iteration" in checkpoint


def test_computed_params_are_broadcast_from_the_first_device():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="bn")
    dpm.Parallelize_CPU(model, no_inputs, conv_bn_forward, optimizer_builder_fun=sgd, devices=[0, 1])
    rng = np.random.RandomState(1)
    for device in (0, 1):  # different data per replica: different batch statistics
        workspace.FeedBlob(f"cpu_{device}/data", rng.randn(2, 1, 4, 4).astype(np.float32) * (device + 1))
        workspace.FeedBlob(f"cpu_{device}/label", np.array([0, 2], np.int32))
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net.Proto().name, 2)
    computed = [dpm.stripBlobName(b) for b in model.GetComputedParams("cpu_0/")]
    assert computed
    for name in computed:
        np.testing.assert_array_equal(workspace.FetchBlob(f"cpu_0/{name}"), workspace.FetchBlob(f"cpu_1/{name}"))


def train_conv_bn(devices, combine_spatial_bn, steps=2):
    """conv_bn_forward on 4 images split over `devices`; the first replica's blobs after `steps`."""
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name=f"conv_bn{len(devices)}")
    dpm.Parallelize_CPU(model, no_inputs, conv_bn_forward, optimizer_builder_fun=sgd, devices=devices,
                        combine_spatial_bn=combine_spatial_bn)
    rng = np.random.RandomState(6)
    data = rng.randn(4, 1, 4, 4).astype(np.float32) * np.array([1, 1, 3, 3], np.float32)[:, None, None, None]
    label, step = np.array([0, 2, 1, 2], np.int32), 4 // len(devices)
    for k, device in enumerate(devices):  # the halves differ in scale: their own statistics differ
        workspace.FeedBlob(f"cpu_{device}/data", data[k * step:(k + 1) * step])
        workspace.FeedBlob(f"cpu_{device}/label", label[k * step:(k + 1) * step])
    workspace.RunNetOnce(model.param_init_net)
    names = [dpm.stripBlobName(b) for b in model.GetAllParams("cpu_0/")]
    initial = {n: rng.randn(*workspace.FetchBlob(f"cpu_0/{n}").shape).astype(np.float32) * 0.3 for n in names}
    for device in devices:
        for name, value in initial.items():
            workspace.FeedBlob(f"cpu_{device}/{name}", np.abs(value) if name.endswith("riv") else value)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net.Proto().name, steps)
    return {n: workspace.FetchBlob(f"cpu_{devices[0]}/{n}") for n in names}


def test_combine_spatial_bn_normalises_over_the_batch_of_all_replicas():
    one = train_conv_bn([0], combine_spatial_bn=False)
    combined = train_conv_bn([0, 1], combine_spatial_bn=True)
    separate = train_conv_bn([0, 1], combine_spatial_bn=False)
    assert set(one) == {"conv_w", "conv_b", "bn_s", "bn_b", "fc_w", "fc_b", "bn_rm", "bn_riv"}
    for name, value in one.items():
        np.testing.assert_allclose(combined[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    assert not np.allclose(separate["bn_rm"], one["bn_rm"], rtol=1e-4, atol=1e-5)  # the test can tell


def test_finalize_after_checkpoint_copies_the_first_devices_blobs():
    model, _ = train_fed([0, 1], steps=1)
    restored = {name: value + 1.0 for name, value in mlp_params(seed=3).items()}
    for name, value in restored.items():
        workspace.FeedBlob(f"cpu_0/{name}", value)
    dpm.FinalizeAfterCheckpoint(model)
    for name, value in restored.items():
        np.testing.assert_array_equal(workspace.FetchBlob(f"cpu_1/{name}"), value)


def test_add_blob_sync_copies_a_blob_every_iteration():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="blob_sync")

    def forward(model, loss_scale):
        model.param_init_net.UniformFill([], ["sync_num"], shape=[1])
        return mlp_forward(model, loss_scale)

    dpm.Parallelize_CPU(model, no_inputs, forward, optimizer_builder_fun=sgd, devices=[0, 1])
    dpm.AddBlobSync(model, ["sync_num"])
    data, label = batches(1)[0]
    feed_shards(model, data, label)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    for i in range(2):
        workspace.FeedBlob("cpu_0/sync_num", np.array([i * 2.0], np.float32))
        workspace.RunNet(model.net.Proto().name)
        assert workspace.FetchBlob("cpu_1/sync_num")[0] == i * 2.0
    with pytest.raises(ValueError, match="without the device scope"):
        dpm.AddBlobSync(model, ["cpu_0/sync_num"])


def test_convert_net_for_device_appends_another_models_net_to_each_replica():
    other = model_helper.ModelHelper(name="other")
    brew.fc(other, "loss_scaled", "other_fc", dim_in=1, dim_out=2)

    def forward(model, loss_scale):
        losses = mlp_forward(model, loss_scale)
        model.net.AppendNet(dpm.ConvertNetForDevice(other.net))
        model.param_init_net.AppendNet(dpm.ConvertNetForDevice(other.param_init_net))
        return losses

    model = model_helper.ModelHelper(name="append")
    dpm.Parallelize_CPU(model, no_inputs, forward, optimizer_builder_fun=sgd, devices=[0, 1])
    appended = [op for op in model.net.Proto().op if op.type == "FC" and "other_fc" in op.output[0]]
    assert [list(op.input) for op in appended] == [["cpu_0/loss_scaled", "cpu_0/other_fc_w", "cpu_0/other_fc_b"],
                                                   ["cpu_1/loss_scaled", "cpu_1/other_fc_w", "cpu_1/other_fc_b"]]
    assert [op.device_option.device_id for op in appended] == [0, 1]
    converted = dpm.ConvertNetForDevice(other.net, core.DeviceOption(caffe2_pb2.CUDA, 3))
    assert converted.Proto().op[0].output[0] == "gpu_3/other_fc"


def test_extract_predictor_net_takes_the_first_replica_without_its_scope():
    def forward(model, loss_scale):
        hidden = brew.relu(model, brew.fc(model, "data", "fc1", dim_in=DIM_IN, dim_out=HIDDEN), "fc1_relu")
        brew.softmax(model, brew.fc(model, hidden, "fc2", dim_in=HIDDEN, dim_out=CLASSES), "softmax")
        return []

    model = model_helper.ModelHelper(name="extract", init_params=False)
    dpm.Parallelize_CPU(model, no_inputs, forward, devices=[0, 1])
    net, params = dpm.ExtractPredictorNet(model, ["data"], ["softmax"], core.DeviceOption(caffe2_pb2.CPU))
    assert sorted(params) == ["cpu_0/fc1_b", "cpu_0/fc1_w", "cpu_0/fc2_b", "cpu_0/fc2_w"]
    ops = list(net.Proto().op)
    assert [op.type for op in ops] == ["FC", "Relu", "FC", "Softmax"]
    assert ops[0].input[0] == "data" and ops[-1].output[0] == "softmax"
    assert {b for op in ops for b in op.input if "/" in b} == {"cpu_0/fc1_w", "cpu_0/fc1_b", "cpu_0/fc2_w",
                                                               "cpu_0/fc2_b", "cpu_0/fc1", "cpu_0/fc1_relu",
                                                               "cpu_0/fc2"}
    data = batches(1)[0][0]
    feed_params(model, mlp_params())
    workspace.FeedBlob("data", data)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("softmax"), single_device_softmax(data), rtol=1e-5)


def test_optimize_gradient_memory_keeps_the_result():
    _, plain = train_fed([0, 1])
    _, shared = train_fed([0, 1], optimize_gradient_memory=True)
    assert_same_params(plain[0], shared[0])
    assert_same_params(plain[1], shared[1])


def test_options_without_effect_here_are_accepted():
    _, plain = train_fed([0, 1])
    _, accepted = train_fed([0, 1], use_nccl=True, shared_model=True, dynamic_memory_management=True,
                            blobs_to_keep=["loss"], rendezvous={"num_shards": 1}, combine_spatial_bn=False)
    assert_same_params(plain[1], accepted[1])


def test_sparse_gradients_are_gathered_over_the_replicas():
    table = np.random.RandomState(4).randn(10, 3).astype(np.float32)
    ids = np.array([1, 4, 4, 7], np.int32)

    def forward(model, loss_scale):
        weights = model.create_param("emb", [10, 3], ("ConstantFill", {"value": 0.0}))
        rows = model.net.Gather([weights, "ids"], "rows")
        loss = model.net.AveragedLoss([model.net.Mul([rows, rows], "squared")], "loss")
        return [model.net.Scale(loss, "loss_scaled", scale=loss_scale)]

    def plain_sgd(model):
        return optimizer.build_sgd(model, 0.5, policy="fixed")

    results = {}
    for devices in ([0], [0, 1]):
        workspace.ResetWorkspace()
        model = model_helper.ModelHelper(name=f"sparse{len(devices)}")
        dpm.Parallelize_CPU(model, no_inputs, forward, optimizer_builder_fun=plain_sgd, devices=devices)
        workspace.RunNetOnce(model.param_init_net)
        step = len(ids) // len(devices)
        for k, device in enumerate(devices):
            workspace.FeedBlob(f"cpu_{device}/emb", table)
            workspace.FeedBlob(f"cpu_{device}/ids", ids[k * step:(k + 1) * step])
        workspace.CreateNet(model.net)
        workspace.RunNet(model.net.Proto().name)
        results[len(devices)] = [workspace.FetchBlob(f"cpu_{d}/emb") for d in devices]
    assert not np.allclose(results[1][0], table)
    np.testing.assert_allclose(results[2][0], results[1][0], rtol=1e-6)
    np.testing.assert_array_equal(results[2][0], results[2][1])


def write_examples_db(path, count=32, seed=2):
    rng = np.random.RandomState(seed)
    npz = path + ".npz"
    np.savez(npz, data=rng.randn(count, DIM_IN).astype(np.float32),
             label=rng.randint(0, CLASSES, count).astype(np.int32))
    db.write_npz_to_db(npz, path, names=["data", "label"])


def db_inputs(batch_per_device, reader="reader"):
    """An input builder reading `batch_per_device` rows per replica from the shared reader."""
    def add_inputs(model):
        model.net.TensorProtosDBInput([core.BlobReference(reader)], ["data", "label"],
                                      batch_size=batch_per_device)
    return add_inputs


def test_replicas_sharing_one_reader_read_consecutive_batches(tmp_path):
    path = str(tmp_path / "examples.minidb")
    write_examples_db(path)
    results = {}
    for devices in ([0], [0, 1]):
        workspace.ResetWorkspace()
        model = model_helper.ModelHelper(name=f"reader{len(devices)}")
        model.CreateDB("reader", db=path, db_type="minidb")
        dpm.Parallelize_CPU(model, db_inputs(BATCH // len(devices)), mlp_forward, optimizer_builder_fun=sgd,
                            devices=devices)
        dpm.RunInitNet(model)
        feed_params(model, mlp_params())
        dpm.RunNet(model, 3)
        results[len(devices)] = fetch_params(model)
    assert_same_params(results[1][0], results[2][0])
    assert_same_params(results[2][0], results[2][1])


def test_refusals_say_what_to_do():
    def build(**kwargs):
        model = kwargs.pop("model", None) or model_helper.ModelHelper(name="refused")
        forward = kwargs.pop("forward", mlp_forward)
        kwargs.setdefault("devices", [0, 1])
        return dpm.Parallelize_CPU(model, no_inputs, forward, **kwargs)

    with pytest.raises(NotImplementedError, match="rendezvous.*client="):
        build(optimizer_builder_fun=sgd, rendezvous={"num_shards": 2, "shard_id": 0, "engine": "GLOO"})
    with pytest.raises(ValueError, match="not both"):
        build(optimizer_builder_fun=sgd, param_update_builder_fun=manual_momentum_sgd)
    with pytest.raises(ValueError, match="list of loss blobs"):
        build(optimizer_builder_fun=sgd, forward=lambda model, scale: mlp_forward(model, scale)[0])
    with pytest.raises(ValueError, match="distinct device ids"):
        build(optimizer_builder_fun=sgd, devices=[0, 0])
    with pytest.raises(ValueError, match="distinct device ids"):
        build(optimizer_builder_fun=sgd, devices=["gpu0"])
    with pytest.raises(TypeError, match="ModelHelper"):
        dpm.Parallelize_GPU(None, no_inputs, mlp_forward)
    with pytest.raises(ValueError, match="outside a device scope"), \
            core.DeviceScope(core.DeviceOption(caffe2_pb2.CUDA, 0)):
        build(optimizer_builder_fun=sgd)
    early = model_helper.ModelHelper(name="early")
    with core.NameScope("shared"):
        brew.fc(early, "x", "pre", dim_in=2, dim_out=2)
    model = model_helper.ModelHelper(name="outside")

    def forward_with_stray_param(model, loss_scale):
        with core.NameScope("stray", reset=True):
            model.create_param("w", [2], ("ConstantFill", {}))
        return mlp_forward(model, loss_scale)

    with pytest.raises(ValueError, match="stray/w is not under a device NameScope"):
        build(model=model, forward=forward_with_stray_param, optimizer_builder_fun=sgd)


def run_caffe2_style(devices):
    """The way Caffe2's own tests drive the module: CNNModelHelper, FC with initializer tuples,
    build_sgd with clipping and lr injection, shared_model and combine_spatial_bn set, data fed
    under each device's DeviceScope, AddBlobSync. The first replica's weights after 5 steps."""
    from pycaffe2 import cnn

    def forward(model, loss_scale):
        fc = model.FC("data", "fc", 16, 1, ("ConstantFill", {}), ("ConstantFill", {}))
        distance = model.SquaredL2Distance([model.Sigmoid(model.FlattenToVec(fc, "fc_fl"), "sigm"), "label"], "sq")
        model.param_init_net.UniformFill([], ["sync_num"], shape=[1])
        return [model.Scale(model.AveragedLoss(distance, "loss"), scale=loss_scale)]

    def clipped_sgd(model):
        return optimizer.build_sgd(model, 0.1, policy="fixed", max_gradient_norm=5.0, allow_lr_injection=True)

    workspace.ResetWorkspace()
    model = cnn.CNNModelHelper(order="NHWC", name=f"caffe2_style{len(devices)}")
    dpm.Parallelize(model, input_builder_fun=no_inputs, forward_pass_builder_fun=forward,
                    optimizer_builder_fun=clipped_sgd, devices=devices, cpu_device=True, shared_model=True,
                    combine_spatial_bn=True)
    dpm.AddBlobSync(model, ["sync_num"])
    assert dpm.GetLearningRateBlobNames(model)
    rng = np.random.RandomState(2603)
    for i in range(5):
        data = rng.rand(16, 16).astype(np.float32)
        labels, step = np.round(data[:, 0]), 16 // len(devices)
        for k, device in enumerate(devices):
            with core.DeviceScope(core.DeviceOption(model._device_type, device)):
                workspace.FeedBlob(f"cpu_{device}/data", data[k * step:(k + 1) * step])
                workspace.FeedBlob(f"cpu_{device}/label", labels[k * step:(k + 1) * step])
        if i == 0:
            workspace.RunNetOnce(model.param_init_net)
            workspace.CreateNet(model.net)
        workspace.FeedBlob("cpu_0/sync_num", np.array([i * 2.0], np.float32))
        workspace.RunNet(model.net.Proto().name)
        assert [workspace.FetchBlob(f"cpu_{d}/sync_num")[0] for d in devices] == [i * 2.0] * len(devices)
    return workspace.FetchBlob("cpu_0/fc_w")


def test_caffe2_style_script_gives_one_result_for_any_device_count():
    one = run_caffe2_style([0])
    assert np.abs(one).max() > 0
    for devices in ([0, 1], [0, 1, 2, 3]):
        np.testing.assert_allclose(run_caffe2_style(devices), one, rtol=1e-5, atol=1e-7)


CAFFE2_FUNCTIONS = ["Parallelize", "Parallelize_CPU", "Parallelize_GPU", "RunInitNet", "RunNet", "Synchronize",
                    "ConvertNetForDevice", "ExtractPredictorNet", "GetCheckpointParams", "FinalizeAfterCheckpoint",
                    "GetLearningRateBlobNames", "AddBlobSync", "OptimizeGradientMemory", "stripBlobName"]
NOT_HERE = {  # Caffe2's other public names, and why pycaffe2 leaves them out
    "Parallelize_BMUF": "block-momentum model averaging (BMUF): another training algorithm, not written",
    "Parallelize_CPU_BMUF": "BMUF, as Parallelize_BMUF", "Parallelize_GPU_BMUF": "BMUF, as Parallelize_BMUF",
    "RunWarmup": "runs the warm-up net BMUF and Gloo set up",
    "AddDistributedBlobSync": "syncs across hosts through Gloo; Dask workers stay in sync through the trainer",
    "CollectivesConcurrencyControl": "throttles Gloo's common worlds, which pycaffe2 does not have",
}


@pytest.mark.parametrize("name", CAFFE2_FUNCTIONS)
def test_caffe2_public_functions_are_here(name):
    assert callable(getattr(dpm, name)) and name in dpm.__all__


@pytest.mark.parametrize("name", sorted(NOT_HERE))
def test_the_left_out_names_are_really_absent(name):
    assert not hasattr(dpm, name), f"{name} exists now: take it off NOT_HERE"
