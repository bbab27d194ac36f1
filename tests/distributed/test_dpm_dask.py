"""data_parallel_model with client=: one replica per Dask worker, trained by the
DataParallelTrainer, equals the same replicas held in one process."""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, workspace
from pycaffe2 import data_parallel_model as dpm
from pycaffe2.errors import RunFailure
from tests.test_data_parallel_model import (
    BATCH,
    assert_same_params,
    conv_bn_forward,
    db_inputs,
    feed_params,
    fetch_params,
    mlp_forward,
    mlp_params,
    no_inputs,
    sgd,
    write_examples_db,
)

pytest.importorskip("distributed")
STEPS = 3


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dpm") / "examples.minidb")
    write_examples_db(path)
    return path


@pytest.fixture(autouse=True)
def clean_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def reader_model(name, path):
    model = model_helper.ModelHelper(name=name)
    model.CreateDB("reader", db=path, db_type="minidb")
    return model


def in_process(path, steps=STEPS):
    model = reader_model("in_process", path)
    dpm.Parallelize_CPU(model, db_inputs(BATCH // 2), mlp_forward, optimizer_builder_fun=sgd, devices=[0, 1])
    dpm.RunInitNet(model)
    feed_params(model, mlp_params())
    dpm.RunNet(model, steps)
    return fetch_params(model)[0]


def on_dask(client, path, **kwargs):
    model = reader_model("on_dask", path)
    trainer = dpm.Parallelize_CPU(model, db_inputs(BATCH // 2), mlp_forward, optimizer_builder_fun=sgd,
                                  client=client, **kwargs)
    return model, trainer


def test_dask_replicas_equal_the_in_process_replicas(dask_client, examples):
    expected = in_process(examples)
    workspace.ResetWorkspace()
    model, trainer = on_dask(dask_client, examples)
    with trainer:
        assert model._dask_trainer is trainer and trainer.replicas == 2 and model._devices == [0, 1]
        dpm.RunInitNet(model)
        for name, value in mlp_params().items():  # the checkpoint path: this workspace to every worker
            workspace.FeedBlob(f"cpu_0/{name}", value)
        dpm.FinalizeAfterCheckpoint(model)
        metrics = dpm.RunNet(model, STEPS)
        assert list(metrics) == ["cpu_0/loss_scaled"] and np.isfinite(metrics["cpu_0/loss_scaled"])
        handed_back = {name: workspace.FetchBlob(f"cpu_0/{name}") for name in mlp_params()}
        assert_same_params(expected, handed_back)
        for name in mlp_params():  # the replicas agree
            np.testing.assert_array_equal(trainer.fetch(f"cpu_0/{name}", replica=1), handed_back[name])
        assert workspace.FetchBlob("optimizer_iteration")[0] == STEPS


def test_the_dask_model_is_one_replica_split_in_nets(dask_client, examples):
    model, trainer = on_dask(dask_client, examples, devices=[1])
    with trainer:
        assert trainer.replicas == 1 and trainer.workers == [sorted(dask_client.scheduler_info()["workers"])[1]]
        assert trainer.shard == ["cpu_1/data", "cpu_1/label"]
        assert trainer.sync == ["cpu_1/fc1_w_grad", "cpu_1/fc1_b_grad", "cpu_1/fc2_w_grad", "cpu_1/fc2_b_grad"]
        scales = [op for op in model.net.Proto().op if op.type == "Scale" and op.output[0] == "cpu_1/loss_scaled"]
        assert [op.arg[0].f for op in scales] == [1.0]  # the trainer averages: no 1/N here
        assert sorted(dpm.GetCheckpointParams(model)) == [
            "cpu_1/fc1_b", "cpu_1/fc1_b_momentum", "cpu_1/fc1_w", "cpu_1/fc1_w_momentum", "cpu_1/fc2_b",
            "cpu_1/fc2_b_momentum", "cpu_1/fc2_w", "cpu_1/fc2_w_momentum", "optimizer_iteration"]


def test_two_workers_read_what_two_in_process_replicas_read(dask_client, examples):
    model, trainer = on_dask(dask_client, examples)
    with trainer:
        concats = [op for op in model.net.Proto().op if op.type == "Concat"]
        assert [list(op.input) for op in concats] == [["cpu_0/_input_0/data", "cpu_0/_input_1/data"],
                                                      ["cpu_0/_input_0/label", "cpu_0/_input_1/label"]]
        dpm.RunInitNet(model)
        dpm.RunNet(model, 1)
        shards = [trainer.fetch("cpu_0/data", replica=k) for k in (0, 1)]
        labels = np.concatenate([trainer.fetch("cpu_0/label", replica=k) for k in (0, 1)])
    assert [len(shard) for shard in shards] == [BATCH // 2, BATCH // 2]
    reader = model_helper.ModelHelper(name="whole_batch")
    reader.TensorProtosDBInput([], ["data", "label"], batch_size=BATCH, db=examples, db_type="minidb")
    workspace.RunNetOnce(reader.param_init_net)
    workspace.RunNetOnce(reader.net)
    np.testing.assert_array_equal(np.concatenate(shards), workspace.FetchBlob("data"))
    np.testing.assert_array_equal(labels, workspace.FetchBlob("label"))


def test_refusals_on_dask(dask_client, examples):
    with pytest.raises(ValueError, match="forward-only.*predict"):
        dpm.Parallelize_CPU(reader_model("test", examples), db_inputs(4), mlp_forward, client=dask_client)
    with pytest.raises(ValueError, match=r"index the client's 2 worker\(s\)"):
        on_dask(dask_client, examples, devices=[0, 2])
    with pytest.raises(ValueError, match="client= or rendezvous="):
        on_dask(dask_client, examples, rendezvous={"num_shards": 1})
    with pytest.raises(ValueError, match="input builder must make the batch"):
        dpm.Parallelize_CPU(model_helper.ModelHelper(name="fed"), no_inputs, mlp_forward, optimizer_builder_fun=sgd,
                            client=dask_client)
    with pytest.raises(ValueError, match="list of loss blobs"):
        dpm.Parallelize_CPU(reader_model("no_loss", examples), db_inputs(4), lambda m, s: mlp_forward(m, s)[0],
                            optimizer_builder_fun=sgd, client=dask_client)
    with pytest.raises(NotImplementedError, match="combine_spatial_bn"):
        dpm.Parallelize_CPU(reader_model("bn", examples), db_inputs(4), conv_bn_forward, optimizer_builder_fun=sgd,
                            client=dask_client, combine_spatial_bn=True)
    assert core.CurrentNameScope() == "" and core.CurrentDeviceScope() is None


def test_an_op_failing_on_a_worker_is_named(dask_client, examples):
    def wrong_width(model, loss_scale):  # the data has 4 columns
        fc = brew.fc(model, "data", "fc", dim_in=5, dim_out=3)
        _, loss = model.net.SoftmaxWithLoss([fc, "label"], ["softmax", "loss"])
        return [loss]

    model = reader_model("failing", examples)
    trainer = dpm.Parallelize_CPU(model, db_inputs(4), wrong_width, optimizer_builder_fun=sgd, client=dask_client)
    with trainer:
        dpm.RunInitNet(model)
        with pytest.raises(RunFailure, match=r"worker tcp://.*replica 0.*iteration 1.*FC"):
            dpm.RunNet(model, 1)
