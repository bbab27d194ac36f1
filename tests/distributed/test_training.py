"""Data-parallel training on a LocalCluster: the engine, the plan split, `run --workers`, checkpoints."""
import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.errors import RunError, RunFailure
from pycaffe2.executor import Workspace
from pycaffe2.run import PlanRun
from pycaffe2.run import checkpoint as checkpoints
from pycaffe2.run.plan_job import main_loop
from tests.distributed.fc_plan import DIGITS, write_fc_plan

pytest.importorskip("distributed")
from pycaffe2.distributed.plan_run import DistributedPlanRun
from pycaffe2.distributed.plan_split import split_loop
from pycaffe2.distributed.training import DataParallelTrainer

PARAMS = ["fc_w", "fc_b"]


def single(path, **options) -> PlanRun:
    run = PlanRun(path, quiet=True, seed=3, **options)
    run.run()
    return run


def distributed_run(path, client, **options) -> DistributedPlanRun:
    run = DistributedPlanRun(path, client=client, quiet=True, seed=3, **options)
    run.run()
    return run


def params(run) -> dict:
    return {name: run.workspace.FetchBlob(name) for name in PARAMS}


def test_two_workers_first_step_is_the_full_batch_step(tmp_path, dask_client):
    path = write_fc_plan(tmp_path, batch=64)
    alone, spread = single(path, iters=1), distributed_run(path, dask_client, iters=1)
    assert len(spread.workers) == 2
    before = Workspace(seed=3)
    before.RunNetOnce(netfile.load_model(path).init_net)
    for name, value in params(alone).items():
        assert not np.allclose(value, before.FetchBlob(name))  # the step changed it
        np.testing.assert_allclose(params(spread)[name], value, rtol=1e-5, atol=1e-6)
    assert spread.last_batch["loss"] == pytest.approx(alone.last_batch["loss"], rel=1e-5)


def test_uneven_shards_still_give_the_full_batch_step(tmp_path, dask_client):
    path = write_fc_plan(tmp_path, batch=7)  # rows 3 and 4
    alone, spread = single(path, iters=3), distributed_run(path, dask_client, iters=3)
    for name, value in params(alone).items():
        np.testing.assert_allclose(params(spread)[name], value, rtol=1e-5, atol=1e-6)


def test_one_worker_is_the_single_process_run(tmp_path, dask_client):
    path = write_fc_plan(tmp_path, batch=32, iters=15)
    first = sorted(dask_client.scheduler_info(n_workers=-1)["workers"])[:1]
    alone, spread = single(path), distributed_run(path, dask_client, workers=first)
    for name, value in params(alone).items():
        np.testing.assert_allclose(params(spread)[name], value, rtol=1e-5, atol=1e-6)
    assert spread.last_batch == pytest.approx(alone.last_batch, rel=1e-5)
    held_out = {"accuracy": spread.workspace.FetchBlob("accuracy")}
    assert held_out["accuracy"] == pytest.approx(float(alone.workspace.FetchBlob("accuracy")))


def _lenet_split():
    model = netfile.load_model(DIGITS / "model.yaml")
    nets = {net.name: net for net in model.plan.network}
    return nets, split_loop(main_loop(model.plan.execution_step), nets, 2)


def test_the_lenet_loop_splits_at_the_optimizer_and_syncs_gradients_and_running_statistics():
    _, split = _lenet_split()
    assert split.shard == ["data", "label"]
    assert split.step_net.name == "lenet_digits_train_step"
    assert split.origins["lenet_digits_train_step"][0] == ("lenet_digits_train", 1)
    assert [op.type for op in split.input_net.op] == ["TensorProtosDBInput"]
    assert split.update_net.op[0].type == "MomentumSGDUpdate"
    assert {op.type for op in split.update_net.op} == {"MomentumSGDUpdate"}
    assert split.step_net.op[-1].type == "LearningRate"
    assert {"conv1_w_grad", "pred_b_grad", "bn1_rm", "bn1_riv", "bn2_rm", "bn2_riv"} <= set(split.sync)
    assert not {"conv1_w", "conv1_w_momentum", "bn1_sm", "data"} & set(split.sync)
    assert split.reader_init.op[0].arg[0].s.decode().startswith("/")  # absolute: any worker folder


def test_replicas_hold_identical_parameters_after_steps(dask_client):
    nets, split = _lenet_split()
    driver = Workspace(seed=1)
    driver.RunNetOnce(nets["lenet_digits_init"])
    state = {name: value for name, value in driver.blobs.items() if isinstance(value, np.ndarray)}
    with DataParallelTrainer(dask_client, split.reader_init, split.input_net, split.step_net, split.update_net,
                             shard=split.shard, sync=split.sync, seed=1) as trainer:
        assert trainer.replicas == 2
        trainer.run_init()
        trainer.load_state(state)
        seen = []
        trainer.run(3, on_iteration=lambda i, metrics: seen.append((i, sorted(metrics))))
        assert seen == [(i, ["accuracy", "loss"]) for i in range(3)]
        for name in ["conv1_w", "bn1_s", "pred_w", "conv2_w_momentum", "bn1_rm", "bn2_riv", "optimizer_iteration"]:
            np.testing.assert_array_equal(trainer.fetch(name, 0), trainer.fetch(name, 1))
        assert not np.array_equal(trainer.fetch("conv1_w"), state["conv1_w"])
        assert int(trainer.state(["optimizer_iteration"])["optimizer_iteration"][0]) == 3
        assert "train_reader" not in trainer.state(["train_reader", "conv1_w"])  # not an array
        # the shards differ, so their forward passes do: the sync is what keeps replicas equal
        assert not np.array_equal(trainer.fetch("data", 0), trainer.fetch("data", 1))
        assert trainer.timings["steps"] == 3 and trainer.timings["compute_s"] > 0
        assert trainer.timings["communication_s"] > 0


def test_the_checkpoint_is_written_once_and_resumes_either_way(tmp_path, dask_client, monkeypatch):
    saves = []
    real_save = checkpoints.save
    monkeypatch.setattr(checkpoints, "save", lambda *args: saves.append(args[2]) or real_save(*args))
    path = write_fc_plan(tmp_path, batch=32, iters=4)
    spread_dir, alone_dir = tmp_path / "spread", tmp_path / "alone"
    distributed_run(path, dask_client, checkpoint=str(spread_dir), save_every=2)
    assert saves == [1, 3]  # after iterations 2 and 4, by the driver only
    assert sorted(p.name for p in spread_dir.iterdir()) == [checkpoints.checkpoint_path(spread_dir).name]
    single(path, checkpoint=str(alone_dir), save_every=2)
    a, ia = checkpoints.load(checkpoints.checkpoint_path(spread_dir))
    b, ib = checkpoints.load(checkpoints.checkpoint_path(alone_dir))
    assert ia == ib == 3 and set(a) == set(b)
    for name in PARAMS:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)
    longer = write_fc_plan(tmp_path, batch=32, iters=6)
    from_spread = single(longer, checkpoint=str(spread_dir), resume=True)
    spread_from_alone = distributed_run(longer, dask_client, checkpoint=str(alone_dir), resume=True)
    assert from_spread.last_iteration == spread_from_alone.last_iteration == 5
    for name in PARAMS:
        np.testing.assert_allclose(params(spread_from_alone)[name], params(from_spread)[name],
                                   rtol=1e-4, atol=1e-5)


def _swap(old, new):
    def edit(text):
        assert old in text
        return text.replace(old, new)
    return edit


@pytest.mark.parametrize("edit, words", [
    (_swap("    - {type: WeightedSum, input: [fc_w, ONE, fc_w_grad, lr], output: [fc_w]}\n"
           "    - {type: WeightedSum, input: [fc_b, ONE, fc_b_grad, lr], output: [fc_b]}\n", ""),
     "has no optimizer op"),
    (_swap("type: TensorProtosDBInput, input: [train_reader], output: [data, label], arg: {batch_size: 64}",
           "type: GaussianFill, output: [data], arg: {shape: [64, 64]}}\n"
           "    - {type: ConstantFill, output: [label], arg: {shape: [64], dtype: 2}"),
     "reads no DB"),
    (_swap("arg: {batch_size: 64}", "arg: {batch_size: 1}"), "fewer than the 2 workers"),
    (_swap("{name: train, network: [fc_train], num_iter: 5}",
           "{name: outer, substep: [{name: train, network: [fc_train], num_iter: 5}]}"),
     "nested in another step"),
    (_swap("{name: train, network: [fc_train], num_iter: 5}",
           "{name: train, network: [fc_train], should_stop_blob: stop}"),
     "stops on blob 'stop'"),
])
def test_loops_that_cannot_be_split_are_refused(tmp_path, dask_client, edit, words):
    path = write_fc_plan(tmp_path, batch=64, iters=5, edit=edit)
    with pytest.raises(RunError, match=words):
        DistributedPlanRun(path, client=dask_client, quiet=True)


def test_a_sparse_update_is_refused():
    model = netfile.load_model(DIGITS / "model.yaml")
    nets = {net.name: net for net in model.plan.network}
    train = nets["lenet_digits_train"]
    train.op[-1].type = "SparseMomentumSGDUpdate"
    with pytest.raises(RunError, match=r"net 'lenet_digits_train': op \d+ \(SparseMomentumSGDUpdate\) is a sparse"):
        split_loop(main_loop(model.plan.execution_step), nets, 2)


def test_an_op_failing_on_a_worker_names_the_worker_net_and_op(tmp_path, dask_client):
    path = write_fc_plan(tmp_path, iters=2, edit=_swap("arg: {shape: [10, 64]}", "arg: {shape: [10, 63]}"))
    with pytest.raises(RunFailure, match=r"worker tcp://\S+ \(replica \d\), iteration 1: .*net fc_train: op 1 \(FC\) failed: .*K must match"):
        distributed_run(path, dask_client)
