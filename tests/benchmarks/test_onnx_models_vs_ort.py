"""benchmarks/onnx_models_vs_ort.py in a tiny configuration: a three-node ONNX model (a
constant Add that the translation folds into the init net, Gemm, Relu) timed once at batch 2, the
re-batching of Reshape shapes, and the skip of a model pycaffe2 cannot translate.
Skipped without onnx and onnxruntime."""
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("threadpoolctl")
from onnx import TensorProto, helper, numpy_helper

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import onnx_models_vs_ort
    monkeypatch.setattr(onnx_models_vs_ort, "SKIPPED", [])
    return onnx_models_vs_ort


def tiny_model(op_type="Relu", domain=""):
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3), "c": rng.standard_normal(3)}
    nodes = [helper.make_node("Add", ["b", "c"], ["bc"]),  # constant: the prototype runs it once
             helper.make_node("Gemm", ["x", "w", "bc"], ["g"]),
             helper.make_node(op_type, ["g"], ["y"], domain=domain)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def use(bench, monkeypatch, model):
    monkeypatch.setitem(bench.SPECS, "tiny", ("Tiny", "light:none"))
    monkeypatch.setattr(bench, "load", lambda name: model)


def test_tiny_model_rows(bench, monkeypatch):
    use(bench, monkeypatch, tiny_model())
    case = bench.Case("tiny", 2, threads=1)
    assert len(case.net.op) == 2 and case.net.op[-1].type == "Relu"  # the constant Add is folded away
    assert max(case.differences()) < bench.TOLERANCE
    rows = bench.model_rows("tiny", 2, threads=1, repeat=1, with_prepare=True)
    assert [row.case for row in rows] == ["Tiny prepare", "Tiny batch 2", "Tiny batch 2 optimized"]
    assert all(row.ours > 0 and row.theirs > 0 for row in rows)


def test_a_model_it_cannot_translate_is_skipped_with_the_reason(bench, monkeypatch):
    use(bench, monkeypatch, tiny_model("Frobnicate", domain="com.example"))
    assert bench.rows(1, repeat=1, models=["tiny"], batches=[1]) == []
    (note,) = bench.SKIPPED
    assert note.startswith("Tiny batch 1: skipped: pycaffe2 cannot run it: ") and "Frobnicate" in note


def test_rebatching_copies_the_batch_through_reshape_shapes(bench):
    shape = numpy_helper.from_array(np.array([1, 12], np.int64), "shape")
    kept = numpy_helper.from_array(np.array([6, 2], np.int64), "kept")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"]),
             helper.make_node("Reshape", ["w", "kept"], ["w2"])]  # a weight's: left alone
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12])],
                              [shape, kept, numpy_helper.from_array(np.zeros((3, 4), np.float32), "w")])
    model = helper.make_model(graph)
    rebatched, patched = bench.at_batch(model, 8)
    assert patched
    values = {t.name: numpy_helper.to_array(t).tolist() for t in rebatched.graph.initializer}
    assert values["shape"] == [0, 12] and values["kept"] == [6, 2]
    assert rebatched.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 8
    assert numpy_helper.to_array(model.graph.initializer[0]).tolist() == [1, 12]  # the original is unchanged
    shape.CopyFrom(numpy_helper.from_array(np.array([2, 6], np.int64), "shape"))
    graph.initializer[0].CopyFrom(shape)
    with pytest.raises(bench.Skip, match="fixes the batch at"):
        bench.at_batch(helper.make_model(graph), 8)
