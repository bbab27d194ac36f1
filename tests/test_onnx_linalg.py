"""The linalg converters beyond ONNX's node cases: Gemm as FC where FC means the
same (and as Gemm where an [N, 1]-like C would broadcast the other way), the
float-only reductions over integers (cast through float64), axes given as an
initializer (one static net), and the errors a bad node meets."""
import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper

from pycaffe2.onnx import backend

RNG = np.random.default_rng(0)
ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.int64): TensorProto.INT64}


def model(node, inputs: dict, outputs: list, initializers=(), opset=18):
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, ONNX_TYPES[v.dtype], v.shape) for n, v in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(node, inputs: dict, initializers=(), opset=18):
    rep = backend.prepare(model(node, inputs, list(node.output), initializers, opset))
    return rep, rep.run(list(inputs.values()))


def op_types(rep) -> list:
    return [op.type for op in rep.predict_net.op]


@pytest.mark.parametrize("c_shape, expect_fc", [((5,), True), ((1, 5), True), ((5, 1), False), ((3, 5), False)])
def test_gemm_becomes_fc_only_where_fc_means_the_same(c_shape, expect_fc):
    a, b = RNG.standard_normal((3, 4)).astype(np.float32), RNG.standard_normal((5, 4)).astype(np.float32)
    c = RNG.standard_normal(c_shape).astype(np.float32)
    if c_shape == (5, 1):  # [N, 1] broadcasts down the columns: needs M = N
        a = RNG.standard_normal((5, 4)).astype(np.float32)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1)
    rep, (y,) = run(node, {"a": a, "b": b, "c": c})
    np.testing.assert_allclose(y, a @ b.T + c, rtol=1e-5, atol=1e-5)
    assert ("FC" in op_types(rep)) == expect_fc


@pytest.mark.parametrize("op_type, reference", [
    ("ReduceMean", lambda x: np.mean(x, axis=1).astype(x.dtype)),
    ("ReduceL1", lambda x: np.sum(np.abs(x), axis=1)),
])
def test_float_only_reductions_take_integers(op_type, reference):
    x = np.array([[1, -2, 4], [7, 8, -9]], np.int32)
    node = helper.make_node(op_type, ["x", "axes"], ["y"], keepdims=0)
    _, (y,) = run(node, {"x": x}, [("axes", np.array([1], np.int64))])
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, reference(x))


def test_axes_from_an_initializer_and_as_an_attribute():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    _, (y,) = run(node, {"x": x}, [("axes", np.array([-1, 0], np.int64))])
    np.testing.assert_allclose(y, x.sum(axis=(0, 2), keepdims=True), rtol=1e-5)
    node = helper.make_node("ReduceLogSumExp", ["x"], ["y"], axes=[1], keepdims=0)
    _, (y,) = run(node, {"x": x}, opset=13)
    np.testing.assert_allclose(y, np.log(np.exp(x).sum(axis=1)), rtol=1e-5)


def test_noop_with_empty_axes_passes_the_data():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    node = helper.make_node("ReduceMax", ["x"], ["y"], noop_with_empty_axes=1)
    _, (y,) = run(node, {"x": x})
    np.testing.assert_array_equal(y, x)


def test_argmax_default_axis_is_onnx_zero():
    x = np.array([[1, 9], [5, 2], [7, 3]], np.float32)
    _, (y,) = run(helper.make_node("ArgMax", ["x"], ["y"]), {"x": x}, opset=13)
    np.testing.assert_array_equal(y, [[2, 0]])
    assert y.dtype == np.int64


def test_bad_nodes_meet_clear_errors():
    from pycaffe2.errors import PyCaffe2Error

    x = np.ones((2, 3), np.float32)
    with pytest.raises(PyCaffe2Error, match="equation 'ij,jk' has 2 input terms but the op has 1 inputs"):
        run(helper.make_node("Einsum", ["x"], ["y"], equation="ij,jk"), {"x": x})
    with pytest.raises(PyCaffe2Error, match=r"axes must be a 1-D integer tensor, got float32 \[1\]"):
        run(helper.make_node("ReduceSum", ["x", "axes"], ["y"]), {"x": x}, [("axes", np.array([0.5], np.float32))])
    with pytest.raises(PyCaffe2Error, match="K must match"):
        run(helper.make_node("Gemm", ["x", "w"], ["y"]), {"x": x, "w": np.ones((4, 5), np.float32)})


def test_matmul_of_two_vectors_is_0d():
    a, b = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    _, (y,) = run(helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": a, "b": b}, opset=13)
    assert y.shape == () and y == 3.0
