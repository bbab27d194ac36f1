"""CreateNet(free_blobs=True): each run drops the blobs the net makes for itself after
their last use, with the same results as keeping them, on simple and dag nets; what is
kept (external inputs and outputs, blobs already in the workspace, loop-carried blobs,
names nested nets mention, keep=); FetchBlob of a freed blob says why; memory stays low;
`pycaffe2 run` frees all but the fetched blobs unless --keep-all."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.cli import main
from pycaffe2.errors import OpFailure, PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.executor.liveness import free_after, last_touches, own_blobs
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.model import ModelRunner, RunError, run_model
from pycaffe2.testing import make_op

NETS = Path(__file__).resolve().parents[2] / "nets"


def net_of(name, *ops, net_type="simple", external_input=("X",), external_output=(), workers=2):
    net = caffe2_pb2.NetDef(name=name, type=net_type, external_input=list(external_input),
                            external_output=list(external_output), num_workers=workers)
    net.op.extend(ops)
    return net


def diamond(net_type="simple"):
    """X -> a -> (b, c) -> d: a has two readers, which a dag net runs side by side."""
    return net_of("diamond", make_op("Relu", ["X"], ["a"]), make_op("Sigmoid", ["a"], ["b"]),
                  make_op("Tanh", ["a"], ["c"]), make_op("Add", ["b", "c"], ["d"]),
                  make_op("Scale", ["d"], ["out"], {"scale": 2.0}), net_type=net_type,
                  external_output=["out"])


def run(net, free, feeds=None, num_iter=1, **create):
    ws = Workspace()
    for name, value in (feeds or {"X": np.linspace(-2, 2, 12, dtype=np.float32)}).items():
        ws.FeedBlob(name, value)
    ws.CreateNet(net, free_blobs=free, **create)
    ws.RunNet(net.name, num_iter)
    return ws


@pytest.mark.parametrize("net_type", ["simple", "dag"])
def test_same_results_and_only_kept_blobs_stay(net_type):
    kept, freed = run(diamond(net_type), False), run(diamond(net_type), True)
    assert kept.Blobs() == ["X", "a", "b", "c", "d", "out"]
    assert freed.Blobs() == ["X", "out"]
    np.testing.assert_array_equal(freed.FetchBlob("out"), kept.FetchBlob("out"))


def test_fetching_a_freed_blob_says_how_to_keep_it():
    ws = run(diamond(), True)
    with pytest.raises(PyCaffe2Error, match=r"Can't find blob: b .*net 'diamond' frees it.*free_blobs=True.*"
                                            r"keep=\['b'\]"):
        ws.FetchBlob("b")
    with pytest.raises(PyCaffe2Error, match="no such blob"):
        ws.FetchBlob("never_made")


@pytest.mark.parametrize("net_type", ["simple", "dag"])
def test_keep_names_and_blobs_already_in_the_workspace(net_type):
    ws = run(diamond(net_type), True, keep=["b"])
    assert ws.Blobs() == ["X", "b", "out"]
    ws = Workspace()
    ws.FeedBlob("X", np.ones(3, np.float32))
    ws.CreateNet(diamond(net_type), free_blobs=True, keep="c")  # one name as a string
    ws.FeedBlob("a", np.zeros(3, np.float32))  # there when the run starts: the run keeps it
    ws.RunNet("diamond")
    assert ws.Blobs() == ["X", "a", "c", "out"]
    np.testing.assert_array_equal(ws.FetchBlob("a"), np.ones(3, np.float32))  # written, not dropped


def test_loop_carried_blobs_stay_across_runs():
    """`acc` is read before the net writes it: it carries over from one RunNet to the next."""
    net = net_of("acc", make_op("Relu", ["X"], ["r"]), make_op("Add", ["acc", "r"], ["acc"]),
                 make_op("Scale", ["acc"], ["s"], {"scale": 0.5}), external_input=["X", "acc"])
    feeds = {"X": np.array([1.0, -1.0], np.float32), "acc": np.zeros(2, np.float32)}
    kept, freed = run(net, False, feeds, num_iter=3), run(net, True, feeds, num_iter=3)
    assert freed.Blobs() == ["X", "acc"]
    np.testing.assert_array_equal(freed.FetchBlob("acc"), kept.FetchBlob("acc"))
    np.testing.assert_array_equal(freed.FetchBlob("acc"), [3.0, 0.0])


def test_names_nested_nets_mention_are_kept():
    then_net = net_of("then", make_op("Relu", ["t"], ["inner_out"]), external_input=())
    net = net_of("nested", make_op("Sigmoid", ["X"], ["t"]), make_op("Relu", ["X"], ["gone"]),
                 make_op("Scale", ["gone"], ["cond_f"], {"scale": 0.0}),
                 make_op("ConstantFill", [], ["flag"], {"shape": [1], "value": 1.0,
                                                        "dtype": caffe2_pb2.TensorProto.BOOL}),
                 make_op("If", ["flag"], ["inner_out"], {"then_net": then_net}))
    kept, freed = run(net, False), run(net, True)
    assert "t" in freed.Blobs() and "inner_out" in freed.Blobs()
    assert "gone" not in freed.Blobs() and "cond_f" not in freed.Blobs()
    np.testing.assert_array_equal(freed.FetchBlob("inner_out"), kept.FetchBlob("inner_out"))


def test_an_op_given_the_workspace_still_sees_earlier_blobs():
    """A Python op with pass_workspace may read any blob by name: what the net made before
    it stays until it has run."""
    seen = {}

    def read(inputs, outputs, ws):
        seen["a"] = ws.FetchBlob("a")
        outputs[0].feed(seen["a"] + 1)
    net = core.Net("opaque")
    net.Relu(["X"], ["a"])
    net.Python(read, pass_workspace=True)([], ["y"])
    net.Scale(["y"], ["z"], scale=2.0)
    proto = net.Proto()
    proto.external_input.append("X")
    proto.external_output.append("z")
    ws = run(proto, True)
    np.testing.assert_array_equal(seen["a"], np.maximum(np.linspace(-2, 2, 12, dtype=np.float32), 0))
    assert ws.Blobs() == ["X", "z"]


@pytest.mark.parametrize("net_type", ["simple", "dag"])
def test_a_failing_op_names_itself_and_keeps_what_ran(net_type):
    net = net_of("fails", make_op("Relu", ["X"], ["a"]), make_op("Sigmoid", ["a"], ["b"]),
                 make_op("PRelu", ["b", "slope"], ["c"]), make_op("Relu", ["c"], ["out"]),
                 external_input=["X", "slope"], external_output=["out"], net_type=net_type)
    ws = Workspace()
    ws.FeedBlob("X", np.ones(4, np.float32))
    ws.FeedBlob("slope", np.ones(3, np.float32))  # wrong size: PRelu fails
    ws.CreateNet(net, free_blobs=True)
    with pytest.raises(OpFailure) as info:
        ws.RunNet("fails")
    assert (info.value.net_name, info.value.op_index, info.value.op_type) == ("fails", 2, "PRelu")
    assert "b [4] float32" in str(info.value)
    assert not ws.HasBlob("c") and not ws.HasBlob("out")
    ws.FeedBlob("slope", np.ones(1, np.float32))
    assert ws.RunNet("fails") and ws.Blobs() == ["X", "out", "slope"]


def test_peak_memory_holds_two_live_blobs_not_all():
    """A chain of 16 ops on 1 MB blobs: freed, about two blobs live at any time."""
    size = 1 << 18  # float32: 1 MB
    ops = [make_op("Relu", [f"h{i - 1}" if i else "X"], [f"h{i}"]) for i in range(16)]
    peaks = {}
    for free in (False, True):
        ws = Workspace()
        ws.FeedBlob("X", np.ones(size, np.float32))
        ws.CreateNet(net_of("chain", *ops, external_output=["h15"]), free_blobs=free)
        tracemalloc.start()
        ws.RunNet("chain")
        peaks[free] = tracemalloc.get_traced_memory()[1] / 4 / size  # in blobs
        tracemalloc.stop()
    assert peaks[False] >= 15 and peaks[True] <= 3, peaks


def test_liveness_facts():
    uses = [(("X",), ("a",)), (("a",), ("b",)), (("acc", "b"), ("acc",)), (("b",), ("c",)), ((), ("d",))]
    assert own_blobs(uses, keep={"c"}) == {"a", "b", "d"}  # acc is read first; c is kept
    assert last_touches(uses) == {"X": 0, "a": 1, "b": 3, "acc": 2, "c": 3, "d": 4}
    assert last_touches(uses, opaque=[4])["a"] == 4  # an opaque op may read anything made before it
    assert free_after(uses, {"a", "b", "d"}) == [(), ("a",), (), ("b",), ("d",)]


def test_the_front_end_passes_the_options_through():
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.ones(3, np.float32))
    workspace.CreateNet(diamond(), free_blobs=True, keep=["c"])
    workspace.RunNet("diamond")
    assert workspace.Blobs() == ["X", "c", "out"]
    with pytest.raises(RuntimeError, match="frees it"):
        workspace.FetchBlob("a")
    workspace.ResetWorkspace()


def test_run_command_frees_all_but_fetched_blobs_unless_keep_all(tmp_path, monkeypatch):
    blobs = {}
    original = ModelRunner.fetch

    def recording_fetch(self, names=None):
        blobs["after"] = self.workspace.Blobs()
        return original(self, names)
    monkeypatch.setattr(ModelRunner, "fetch", recording_fetch)
    np.save(tmp_path / "x.npy", np.ones((2, 1, 28, 28), np.float32))
    command = ["run", str(NETS / "mlp.yaml"), "--feed", f"data={tmp_path / 'x.npy'}", "--quiet"]
    assert main([*command, "--fetch", "logits", "--fetch", "prob"]) == 0
    assert "fc1" not in blobs["after"] and {"logits", "prob"} <= set(blobs["after"])
    assert main([*command, "--keep-all"]) == 0
    assert {"fc1", "logits", "prob"} <= set(blobs["after"])


def test_model_runner_names_the_way_to_keep_a_freed_blob(tmp_path):
    runner = ModelRunner(NETS / "mlp.yaml", feeds={"data": np.ones((2, 1, 28, 28), np.float32)},
                         free_blobs=True)
    runner.run()
    assert set(runner.fetch()) == {"prob"}
    with pytest.raises(RunError, match="cannot fetch 'logits'.*frees it.*--keep-all"):
        runner.fetch(["logits"])
    kept = run_model(NETS / "mlp.yaml", feeds={"data": np.ones((2, 1, 28, 28), np.float32)}, fetch=["fc1"],
                     seed=1)
    everything = run_model(NETS / "mlp.yaml", feeds={"data": np.ones((2, 1, 28, 28), np.float32)},
                           fetch=["fc1"], seed=1, keep_all=True)
    np.testing.assert_array_equal(kept["fc1"], everything["fc1"])
