"""One thread count for a run: num_threads(N) holds the BLAS pools to N threads inside
the ops (threadpoolctl.threadpool_info() read from within a run) and a dag net to N ops
at once; `pycaffe2 run --threads N` runs inside it. Never timed."""
import threading
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from pycaffe2 import core
from pycaffe2.cli import main
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace, num_threads
from pycaffe2.run.model import ModelRunner

NETS = Path(__file__).resolve().parents[2] / "nets"


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]


def recording_net(seen: list, net_type="simple", ops=3):
    """`ops` independent Python ops, each noting its thread and the BLAS pools' sizes."""
    def record(inputs, outputs):
        seen.append((threading.current_thread(), blas_threads()))
        outputs[0].feed(inputs[0].data + 1)
    net = core.Net(f"record_{net_type}")
    for i in range(ops):
        net.Python(record)(["X"], [f"y{i}"])
    proto = net.Proto()
    proto.type, proto.num_workers = net_type, 4
    proto.external_input.append("X")
    return proto


def run(net):
    ws = Workspace()
    ws.FeedBlob("X", np.zeros(2, np.float32))
    ws.CreateNet(net)
    ws.RunNet(net.name)
    return ws


def test_blas_pools_hold_the_count_inside_a_run_and_come_back():
    assert threadpoolctl.threadpool_info(), "numpy should bring a BLAS for this test to mean something"
    before, seen = blas_threads(), []
    with num_threads(1):
        run(recording_net(seen))
    assert seen and all(pools == [1] * len(pools) for _, pools in seen)
    assert blas_threads() == before


@pytest.mark.parametrize("limit", [1, 2])
def test_a_dag_net_runs_at_most_the_count_of_ops_at_once(limit):
    seen = []
    with num_threads(limit):
        run(recording_net(seen, "dag", ops=6))
    threads = {thread for thread, _ in seen}
    if limit == 1:  # in order, on the calling thread
        assert threads == {threading.current_thread()}
    else:
        assert threading.current_thread() not in threads and len(threads) <= limit
    assert all(pools == [limit] * len(pools) for _, pools in seen)  # the workers' BLAS too


def test_no_count_changes_nothing():
    before, seen = blas_threads(), []
    with num_threads(None):
        run(recording_net(seen))
    assert all(pools == before for _, pools in seen)


@pytest.mark.parametrize("count", [0, -2, 1.5, True, "2"])
def test_a_bad_count_is_refused(count):
    with pytest.raises(PyCaffe2Error, match="thread count must be a positive integer"), num_threads(count):
        pass


def test_run_command_threads_option(tmp_path, monkeypatch, capsys):
    seen = []
    original = ModelRunner.run

    def recording_run(self, iters=1):
        seen.append(blas_threads())
        return original(self, iters)
    monkeypatch.setattr(ModelRunner, "run", recording_run)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    assert main(["run", str(NETS / "mlp.yaml"), "--feed", f"data={tmp_path / 'x.npy'}", "--threads", "1",
                 "--quiet"]) == 0
    assert seen and seen[0] == [1] * len(seen[0])
    assert main(["run", str(NETS / "mlp.yaml"), "--threads", "0"]) == 2
    assert "thread count must be a positive integer, got 0" in capsys.readouterr().err


def test_run_command_workers_option_sets_the_dag_width(tmp_path, monkeypatch, capsys):
    created = []
    original = Workspace.CreateNet

    def recording_create(self, net, *args, **kwargs):
        created.append(net.num_workers)
        return original(self, net, *args, **kwargs)
    monkeypatch.setattr(Workspace, "CreateNet", recording_create)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    feed = ["--feed", f"data={tmp_path / 'x.npy'}", "--quiet"]
    assert main(["run", str(NETS / "mlp.yaml"), *feed, "--dag-workers", "3"]) == 0
    assert created[-1] == 3
    assert main(["run", str(NETS / "mlp.yaml"), *feed, "--dag-workers", "0"]) == 2
    assert "workers (--dag-workers) must be at least 1, not 0" in capsys.readouterr().err
