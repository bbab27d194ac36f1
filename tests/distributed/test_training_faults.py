"""A worker SIGKILLed mid-training: the run stops with WorkerLost, the last checkpoint stays whole,
and the message names the worker, the iterations lost and the --resume command. These tests kill
workers, so they share a cluster of their own (its nanny restarts a killed worker)."""
import os
import signal
import threading
import time

import pytest

from pycaffe2.cli import main
from pycaffe2.errors import WorkerLost
from pycaffe2.run import checkpoint as checkpoints
from tests.distributed.fc_plan import write_fc_plan

distributed = pytest.importorskip("distributed")
from pycaffe2.distributed import worker_addresses, workers_client
from pycaffe2.distributed.plan_run import DistributedPlanRun


@pytest.fixture(scope="module")
def killable_client():
    with workers_client(2) as client:
        yield client


def two_workers(client) -> list[str]:
    """The cluster's 2 workers, once a worker killed by an earlier test has been replaced."""
    deadline = time.monotonic() + 30
    while len(worker_addresses(client)) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = worker_addresses(client)
    assert len(workers) == 2, workers
    return workers


def kill_when(client, victim, ready, timeout_s=60.0):
    """A thread that SIGKILLs worker `victim`'s process once `ready()` is true (unless
    `killed["cancel"]` is set first, when the run ended some other way); `killed` says whom."""
    pids = client.run(os.getpid, workers=[victim])
    killed = {"cancel": threading.Event()}

    def watch():
        deadline = time.monotonic() + timeout_s
        while not ready() and time.monotonic() < deadline:
            if killed["cancel"].is_set():
                return
            time.sleep(0.02)
        killed["address"] = victim
        os.kill(pids[victim], signal.SIGKILL)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def test_a_killed_worker_stops_the_run_at_the_last_checkpoint(tmp_path, killable_client, capsys):
    path = write_fc_plan(tmp_path, batch=32, iters=3000)
    folder = tmp_path / "ckpt"
    file = checkpoints.checkpoint_path(folder)
    victim = two_workers(killable_client)[1]  # run --scheduler uses the workers in this order
    thread, killed = kill_when(killable_client, victim, file.is_file)
    address = killable_client.scheduler.address
    code = main(["run", str(path), "--scheduler", address, "--checkpoint", str(folder), "--save-every", "5",
                 "--seed", "3", "--quiet"])
    killed["cancel"].set()
    thread.join(10)
    message = capsys.readouterr().err.strip()
    assert code == 1, message
    assert len(message.splitlines()) == 1 and message.startswith("pycaffe2 run: ")
    assert f"worker {killed['address']} (replica 1) was lost during iteration " in message
    assert "since the checkpoint after iteration 5" in message or "since the checkpoint after iteration 10" \
        in message
    assert "that checkpoint is whole" in message
    assert f"--checkpoint {folder} --resume" in message and f"--scheduler {address}" in message
    blobs, iteration = checkpoints.load(file)  # whole, and at a multiple of --save-every
    assert (iteration + 1) % 5 == 0 and {"fc_w", "fc_b", "iteration"} <= set(blobs)
    assert [p.name for p in folder.iterdir()] == [file.name]  # nothing half-written beside it


def test_without_a_checkpoint_the_message_says_nothing_was_kept(tmp_path, killable_client):
    path = write_fc_plan(tmp_path, batch=32, iters=3000)
    run = DistributedPlanRun(path, client=killable_client, workers=two_workers(killable_client), quiet=True,
                             seed=3)
    thread, killed = kill_when(killable_client, run.workers[1], lambda: (run.last_iteration or 0) >= 3)
    with pytest.raises(WorkerLost) as lost:
        try:
            run.run()
        finally:
            killed["cancel"].set()
    thread.join(10)
    text = str(lost.value)
    assert f"worker {killed['address']} (replica 1) was lost during iteration" in text
    assert "nothing was kept (run with --checkpoint DIR --save-every K" in text
