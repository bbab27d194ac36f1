"""The attention converters: ONNX's omitted optional inputs and outputs become the
pycaffe2 ops' `extra_inputs` and fresh blobs, results agree with ONNX's reference
evaluator, and what pycaffe2 cannot run is refused naming the attribute."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from pycaffe2.errors import ConversionError
from pycaffe2.onnx import backend


def _model(node, inputs, outputs, opset):
    infos = [helper.make_tensor_value_info(name, elem, None) for name, elem in inputs]
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs]
    graph = helper.make_graph([node], "g", infos, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check(model, feeds):
    rep = backend.prepare(model)
    got = rep.run(feeds)
    expected = ReferenceEvaluator(model).run(None, dict(zip([i.name for i in model.graph.input], feeds)))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    return rep


def test_attention_skipped_inputs_and_outputs():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 3, 4)).astype(np.float32) for _ in range(3))
    nonpad = np.array([2], np.int64)
    node = helper.make_node("Attention", ["q", "k", "v", "", "", "", "n"], ["y", "", "", "qk"],
                            is_causal=1, qk_matmul_output_mode=3)
    model = _model(node, [("q", 1), ("k", 1), ("v", 1), ("n", TensorProto.INT64)], ["y", "qk"], 24)
    rep = _check(model, [q, k, v, nonpad])
    op, = rep.predict_net.op
    assert op.type == "Attention" and list(op.input) == ["q", "k", "v", "n"] and len(op.output) == 4
    assert [a.strings for a in op.arg if a.name == "extra_inputs"] == [[b"nonpad_kv_seqlen"]]


def test_attention_bfloat16_softmax_is_refused():
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], softmax_precision=TensorProto.BFLOAT16)
    with pytest.raises(ConversionError, match="softmax_precision 16"):
        backend.prepare(_model(node, [("q", 1), ("k", 1), ("v", 1)], ["y"], 23))


def test_causal_conv_with_state_past_without_bias():
    rng = np.random.default_rng(1)
    x, w, past = (rng.standard_normal(shape).astype(np.float32) for shape in [(2, 3, 5), (3, 1, 3), (2, 3, 2)])
    node = helper.make_node("CausalConvWithState", ["x", "w", "", "p"], ["y", "s"], activation="silu")
    rep = _check(_model(node, [("x", 1), ("w", 1), ("p", 1)], ["y", "s"], 27), [x, w, past])
    assert [a.strings for a in rep.predict_net.op[0].arg if a.name == "extra_inputs"] == [[b"past_state"]]


def test_linear_attention_and_rotary_embedding():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 3, 8)).astype(np.float32) for _ in range(3))
    beta = rng.random((1, 3, 2)).astype(np.float32)
    node = helper.make_node("LinearAttention", ["q", "k", "v", "", "", "b"], ["y", "s"], q_num_heads=2,
                            kv_num_heads=2, update_rule="delta")
    _check(_model(node, [("q", 1), ("k", 1), ("v", 1), ("b", 1)], ["y", "s"], 27), [q, k, v, beta])
    angles = rng.uniform(0, 6, (1, 3, 2))
    node = helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"], num_heads=2, interleaved=1)
    _check(_model(node, [("x", 1), ("c", 1), ("s", 1)], ["y"], 23),
           [q, np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)])
