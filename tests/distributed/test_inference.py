"""Batch inference on Dask (pycaffe2.distributed.predict): the same rows as one process,
in order, the model loaded once per worker, failures named by batch and op."""
import os
import re
import signal
import sys

import numpy as np
import pytest

from pycaffe2.cli import main
from pycaffe2.distributed import scoring, worker_addresses, workers_client
from pycaffe2.errors import RunError, RunFailure
from pycaffe2.executor import num_threads
from pycaffe2.run import run_model
from tests.conftest import REPO
from tests.registries import registries_restored

pytest.importorskip("distributed")
from pycaffe2.distributed import predict
from pycaffe2.distributed.worker import loads_here

MLP = REPO / "nets" / "mlp.yaml"


def digits(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 1, 28, 28)).astype(np.float32)


def in_batches(model, feeds, batch_size, **options):
    """The reference: the same batches, one after another in this process, on one BLAS
    thread as each worker runs (more threads sum a product in another order)."""
    with num_threads(1):
        return scoring.predict_in_process(model, feeds, batch_size=batch_size, **options)


@pytest.mark.parametrize("rows, batch_size", [(10, 4), (5, 1), (1, None), (9, None)],
                         ids=["uneven-last-batch", "batch-size-1", "more-workers-than-batches", "default"])
def test_mlp_equals_one_process(dask_client, rows, batch_size):
    x = digits(rows)
    seen = []
    out = predict(MLP, {"data": x}, client=dask_client, batch_size=batch_size, seed=3,
                  on_batch=lambda *batch: seen.append(batch))
    workers = len(worker_addresses(dask_client))
    effective = batch_size or -(-rows // workers)  # default: the rows split evenly over the workers
    assert sorted(index for index, *_ in seen) == list(range(-(-rows // effective)))
    assert out["prob"].shape == (rows, 10)
    np.testing.assert_array_equal(out["prob"], in_batches(MLP, {"data": x}, effective, seed=3)["prob"])
    whole = run_model(MLP, feeds={"data": x}, seed=3)["prob"]
    np.testing.assert_allclose(out["prob"], whole, rtol=1e-5, atol=1e-6)


def test_dask_array_and_memmap_feeds(dask_client, tmp_path):
    import dask.array
    x = digits(7, seed=1)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    reference = in_batches(MLP, {"data": x}, 3, seed=4)["prob"]
    for feed in (mapped, dask.array.from_array(x, chunks=(2, 1, 28, 28))):
        out = predict(MLP, {"data": feed}, client=dask_client, batch_size=3, seed=4)
        np.testing.assert_array_equal(out["prob"], reference)


def test_the_model_loads_once_per_worker(dask_client):
    seed = 1234567  # a model spec no other test loads
    where = []
    predict(MLP, {"data": digits(12)}, client=dask_client, batch_size=2, seed=seed,
            on_batch=lambda index, start, stop, worker: where.append(worker))
    digest = scoring.model_spec(MLP, seed=seed).digest
    loads = {worker: counts.get(digest, 0) for worker, counts in dask_client.run(loads_here).items()}
    assert set(where) <= set(loads)
    assert all(loads[worker] == 1 for worker in set(where)), loads
    assert sum(loads.values()) == len(set(where))


def test_real_lenet_export(dask_client, caffe2_models):
    model = caffe2_models / "hungmingwu_pytorch_export"
    x = digits(6, seed=2)
    out = predict(model, {"1": x}, client=dask_client, batch_size=4)
    np.testing.assert_array_equal(out["26"], in_batches(model, {"1": x}, 4)["26"])
    np.testing.assert_allclose(out["26"], run_model(model, feeds={"1": x})["26"], rtol=1e-5, atol=1e-5)


def test_real_squeezenet_with_made_up_weights(dask_client, caffe2_models):
    model = caffe2_models / "squeezenet_predict_only" / "squeeze_predict_net.pb"
    x = np.random.default_rng(5).standard_normal((3, 3, 64, 64)).astype(np.float32)
    options = {"random_init": True, "seed": 7}
    out = predict(model, {"data": x}, client=dask_client, batch_size=2, **options)
    name, value = next(iter(out.items()))
    assert value.shape[0] == 3
    np.testing.assert_array_equal(value, in_batches(model, {"data": x}, 2, **options)[name])
    whole = run_model(model, feeds={"data": x}, **options)[name]
    np.testing.assert_allclose(value, whole, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- errors

def net_file(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


RESHAPE_TO_4_ROWS = """
name: four_rows
external_input: [data]
external_output: [flat]
op:
  - {type: Reshape, input: [data], output: [flat, old_shape], arg: {shape: [4, 784]}}
"""


def test_a_failing_batch_names_its_index_rows_and_op(dask_client, tmp_path):
    model = net_file(tmp_path, "four_rows.yaml", RESHAPE_TO_4_ROWS)
    with pytest.raises(RunFailure, match=r"batch 2 \(rows 8-9 of 10\).*Reshape"):
        predict(model, {"data": digits(10)}, client=dask_client, batch_size=4)


def test_per_batch_blobs_are_refused(dask_client):
    with pytest.raises(RunError, match=r"fetched blob 'fc1_w' is shape \[32, 784\].*first axis"):
        predict(MLP, {"data": digits(4)}, fetch=["fc1_w", "prob"], client=dask_client, batch_size=2)


def test_bad_requests_are_refused_before_any_worker_starts():
    with pytest.raises(RunError, match="different numbers of rows.*'data' 4, 'label' 3"):
        predict(MLP, {"data": digits(4), "label": np.zeros(3, np.int32)}, workers=1)
    for bad in (0, -2, 1.5):
        with pytest.raises(RunError, match="batch size"):
            predict(MLP, {"data": digits(4)}, batch_size=bad, workers=1)
    with pytest.raises(RunError, match="scalar has no rows"):
        predict(MLP, {"data": np.float32(1)}, workers=1)
    with pytest.raises(RunError, match="has no rows"):
        predict(MLP, {"data": digits(0)}, workers=1)


def test_a_zarr_store_without_zarr_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(RunError, match="pip install zarr"):
        predict(MLP, {"data": "images.zarr"}, workers=1)


def test_without_dask_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(RunError, match=r"pycaffe2\[distributed\]"):
        predict(MLP, {"data": digits(2)}, workers=1)
    np.save(tmp_path / "x.npy", digits(2))
    assert main(["run", str(MLP), "--feed", f"data={tmp_path / 'x.npy'}", "--workers", "2"]) == 2


def test_an_unreachable_scheduler_is_named(monkeypatch, capsys):
    import socket

    from pycaffe2.distributed import cluster
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(RunError, match=f"cannot reach the Dask scheduler at {address}"):
        predict(MLP, {"data": digits(2)}, scheduler=address)


# ---------------------------------------------------------------- the command line

def test_cli_batches_equal_one_process(tmp_path, capsys):
    x = digits(10, seed=6)
    np.save(tmp_path / "x.npy", x)
    common = ["run", str(MLP), "--feed", f"data={tmp_path / 'x.npy'}", "--seed", "3", "--out"]
    assert main([*common, str(tmp_path / "one.npz")]) == 0
    assert main([*common, str(tmp_path / "local.npz"), "--batch-size", "4"]) == 0
    assert main([*common, str(tmp_path / "dask.npz"), "--batch-size", "4", "--workers", "2"]) == 0
    assert re.search(r"scored 10 rows in 3 batches of 4 rows on [12] worker", capsys.readouterr().err)
    one, local, dask_run = (np.load(tmp_path / f"{name}.npz")["prob"] for name in ("one", "local", "dask"))
    np.testing.assert_array_equal(dask_run, local)
    np.testing.assert_allclose(dask_run, one, rtol=1e-5, atol=1e-6)


def test_cli_refuses_what_batches_cannot_do(tmp_path, capsys):
    np.save(tmp_path / "x.npy", digits(4))
    np.save(tmp_path / "y.npy", digits(3))
    run = ["run", str(MLP), "--feed", f"data={tmp_path / 'x.npy'}"]
    assert main([*run, "--batch-size", "0"]) == 2
    assert main([*run, "--batch-size", "2", "--iters", "3"]) == 2
    assert main([*run, "--batch-size", "2", "--keep-all"]) == 2
    assert main(["run", str(MLP), "--feed", f"data={tmp_path / 'y.npy'}", "--feed",
                 f"other={tmp_path / 'x.npy'}", "--batch-size", "2"]) == 2
    err = capsys.readouterr().err
    assert "batch size" in err and "--iters" in err and "--keep-all" in err and "different numbers" in err


# ---------------------------------------------------------------- faults (a cluster of their own)

SLOW_COPY = """
name: slow
external_input: [data]
external_output: [copy]
op:
  - {type: SlowCopy, input: [data], output: [copy], arg: {seconds: 1.0}}
"""


@pytest.fixture(scope="module")
def fault_client():
    from tests.distributed.slow_op import SlowOpPlugin, register_slow_copy
    with registries_restored(), workers_client(2) as client:
        register_slow_copy()  # the schema, for reading the net here (gone after these tests)
        client.register_plugin(SlowOpPlugin())
        yield client


def kill_a_busy_worker(client) -> str:
    """SIGKILL the process of a worker that is running a batch; its address."""
    busy = [worker for worker, keys in client.processing().items() if keys]
    victim = busy[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    return victim


@pytest.mark.slow
def test_a_killed_workers_batches_are_rerun_and_reported(fault_client, tmp_path):
    model = net_file(tmp_path, "slow.yaml", SLOW_COPY)
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    killed, events = [], []

    def on_batch(index, start, stop, worker):
        if not killed:
            killed.append(kill_a_busy_worker(fault_client))

    out = predict(model, {"data": x}, client=fault_client, batch_size=1, on_batch=on_batch,
                  on_event=events.append)
    np.testing.assert_array_equal(out["copy"], x)  # every row, in order
    assert len(events) == 1 and killed[0] in events[0] and "re-run" in events[0], events
    assert "every row was scored" in events[0]


@pytest.mark.slow
def test_when_dask_gives_up_the_batches_lost_are_named(fault_client, tmp_path):
    from pycaffe2.errors import WorkerLost
    model = net_file(tmp_path, "slow.yaml", SLOW_COPY)
    fault_client.wait_for_workers(2, timeout=30)
    previous = fault_client.run_on_scheduler(_set_allowed_failures, count=0)
    try:
        killed = []
        with pytest.raises(WorkerLost, match=r"batch \d \(row \d of 4\): Dask gave up.*not scored"):
            predict(model, {"data": np.zeros((4, 2), np.float32)}, client=fault_client, batch_size=1,
                    on_batch=lambda *batch: killed or killed.append(kill_a_busy_worker(fault_client)))
    finally:
        fault_client.run_on_scheduler(_set_allowed_failures, count=previous)


def _set_allowed_failures(dask_scheduler, count):
    previous, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, count
    return previous
