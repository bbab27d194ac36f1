"""benchmarks/models_vs_ort.py's cases agree before they are timed: pycaffe2, ONNX Runtime
on the model pycaffe2.onnx.export wrote, and PyTorch give the same logits and softmax.
Skipped without onnx, onnxruntime and torch."""
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow  # imports torch: seconds on a loaded 2-core machine
def test_lenet_three_ways(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import models_vs_ort
    case = models_vs_ort.Case("lenet", 2, threads=1)
    case.check()
    assert case.onnx.opset_import[0].version == 17


def test_ort_session_runs_an_exported_model(monkeypatch):
    import numpy as np

    from pycaffe2 import core
    from pycaffe2.onnx.export import export_model
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _ort
    net = core.Net("t")
    net.Relu("x", "y")
    model = export_model(net.Proto(), None, {"x": (2, 3)}, outputs=["y"])
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    (y,) = _ort.session(model, threads=1).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0))
