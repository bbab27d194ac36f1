"""benchmarks/_onnx_peer.py is faithful: ONNX Runtime on its output computes what pycaffe2 does.

A tiny net using every op it converts (Caffe's ceil-mode pooling with padding, a
grouped conv, in-place writes, a Softmax on a 3-D blob included), and LeNet
three ways through models_vs_ort's Case. Skipped without onnx and onnxruntime."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pycaffe2 import core
from pycaffe2.executor.workspace import Workspace

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def peer(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _onnx_peer
    return _onnx_peer


def tiny_net():
    net = core.Net("tiny")
    net.Conv(["data", "w", "b"], "c", kernel=3, pad=1)
    net.SpatialBN(["c", "s", "bb", "m", "v"], "c", is_test=1, epsilon=1e-3)
    net.Relu("c", "c")
    net.MaxPool("c", "p", kernel=3, stride=2, pad=1, legacy_pad=3)
    net.Conv(["p", "gw", "gb"], "g", kernel=1, group=2)
    net.Sum(["p", "g"], "sum")
    net.Concat(["sum", "p"], ["cat", "cat_info"])
    net.Dropout("cat", ["cat", "mask"], is_test=1)
    net.AveragePool("cat", "avg", kernel=2, stride=1, pad=1)
    net.Flatten("avg", "flat")
    net.FC(["flat", "fw", "fb"], "fc")
    net.Reshape("fc", ["r", "old_shape"], shape=[-1, 2, 5])
    net.Softmax("r", "prob")
    net.AveragePool("cat", "gap", global_pooling=1)
    net.Proto().external_input.extend(["data", "w", "b", "s", "bb", "m", "v", "gw", "gb", "fw", "fb"])
    return net.Proto()


def test_tiny_net_agrees_with_pycaffe2(peer):
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((4, 3, 3, 3)), "b": rng.standard_normal(4),
               "s": rng.random(4) + 0.5, "bb": rng.standard_normal(4), "m": rng.standard_normal(4),
               "v": rng.random(4) + 0.5, "gw": rng.standard_normal((4, 2, 1, 1)), "gb": rng.standard_normal(4),
               "fw": rng.standard_normal((10, 8 * 7 * 7)), "fb": rng.standard_normal(10)}
    weights = {name: value.astype(np.float32) for name, value in weights.items()}
    data = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    ws = Workspace()
    for name, value in {**weights, "data": data}.items():
        ws.FeedBlob(name, value)
    net = tiny_net()
    ws.RunNetOnce(net)
    shapes = {name: np.shape(value) for name, value in ws.blobs.items()}
    assert shapes["p"] == (2, 4, 6, 6)  # ceil mode: (10 + 2 - 3) / 2 rounded up, + 1
    outputs = ["fc", "prob", "gap", "cat"]
    session = peer.session(peer.to_onnx(net, weights, shapes, outputs), threads=1)
    for name, theirs in zip(outputs, session.run(None, {"data": data})):
        np.testing.assert_allclose(ws.FetchBlob(name), theirs, rtol=1e-4, atol=1e-4, err_msg=name)


def test_refuses_what_it_does_not_know(peer):
    net = core.Net("t")
    net.Tanh("data", "y")
    net.Proto().external_input.append("data")
    with pytest.raises(NotImplementedError, match="op 0 \\(Tanh\\)"):
        peer.to_onnx(net.Proto(), {}, {"data": (1, 2), "y": (1, 2)}, ["y"])


@pytest.mark.slow  # imports torch: seconds on a loaded 2-core machine
def test_lenet_three_ways(peer):
    pytest.importorskip("torch")
    import models_vs_ort
    case = models_vs_ort.Case("lenet", 2, threads=1)
    case.check()
