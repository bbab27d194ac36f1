"""The elementwise converters on forms ONNX's node cases leave out: opset<7
broadcast attributes, Clip's attribute and one-bound forms, PRelu's three
translations, and the attribute values that are refused."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper

from pycaffe2.errors import ConversionError
from pycaffe2.onnx import backend


def model(op_type, inputs, outputs=("y",), opset=18, **attrs):
    """One node; `inputs` is [(name, TensorProto type, shape)], "" for an omitted one."""
    node = helper.make_node(op_type, [name for name, _, _ in inputs], list(outputs), **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs if n],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(m, *arrays):
    rep = backend.prepare(m, "CPU")
    return rep.run(list(arrays))[0], [op.type for op in rep.predict_net.op]


F = TensorProto.FLOAT


@pytest.mark.parametrize("op_type, function", [("Add", np.add), ("Mul", np.multiply), ("Pow", np.power),
                                               ("Greater", np.greater)])
def test_opset6_legacy_broadcast(op_type, function):
    m = model(op_type, [("a", F, [2, 3, 4]), ("b", F, [3])], opset=6, broadcast=1, axis=1)
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 10
    b = np.array([1.0, 2.0, 0.5], np.float32)
    y, _ = run(m, a, b)
    np.testing.assert_allclose(y, function(a, b.reshape(3, 1)), rtol=1e-6)


def test_clip6_attributes():
    x = np.array([-2.0, 0.0, 2.0], np.float32)
    y, ops = run(model("Clip", [("x", F, [3])], opset=6, min=-1.0, max=0.5), x)
    np.testing.assert_array_equal(y, [-1.0, 0.0, 0.5])
    assert ops == ["Clip"]


@pytest.mark.parametrize("names, expected, ops", [
    (["x"], [-5, 0, 5], ["Copy"]),
    (["x", "lo"], [-1, 0, 5], ["Clip"]),
    (["x", "", "hi"], [-5, 0, 1], ["Min"]),
    (["x", "lo", "hi"], [-1, 0, 1], ["Clip"]),
])
def test_clip11_bound_forms(names, expected, ops):
    kinds = {"x": [3], "lo": [], "hi": []}
    m = model("Clip", [(n, TensorProto.INT8, kinds.get(n)) for n in names], opset=13)
    values = {"x": np.array([-5, 0, 5], np.int8), "lo": np.int8(-1), "hi": np.int8(1)}
    y, emitted = run(m, *[values[n] for n in names if n])
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.int8 and emitted == ops


@pytest.mark.parametrize("slope_shape, ops", [
    ((3, 1), ["PRelu"]), ((4,), ["PRelu"]), ((1,), ["PRelu"]),
    ((2, 1, 1), ["Mul", "LT", "Where"]), ((3, 4), ["Mul", "LT", "Where"]),
])
def test_prelu_translations(slope_shape, ops):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    slope = rng.standard_normal(slope_shape).astype(np.float32)
    y, emitted = run(model("PRelu", [("x", F, [2, 3, 4]), ("s", F, list(slope_shape))]), x, slope)
    np.testing.assert_allclose(y, np.where(x < 0, x * slope, x), rtol=1e-6)
    assert emitted == ops


@pytest.mark.parametrize("op_type, inputs, attrs, message", [
    ("BitShift", [("x", TensorProto.UINT8, [2]), ("n", TensorProto.UINT8, [2])], {"direction": "UP"},
     "direction 'UP'"),
    ("Gelu", [("x", F, [2])], {"approximate": "erf"}, "approximate 'erf'"),
    ("Mod", [("a", F, [2]), ("b", F, [2])], {"fmod": 2}, "fmod 2"),
])
def test_refused_attributes(op_type, inputs, attrs, message):
    with pytest.raises(ConversionError, match=message):
        backend.prepare(model(op_type, inputs, opset=20, **attrs), "CPU")


def test_swish_alpha_and_selu_gamma():
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    y, _ = run(model("Swish", [("x", F, [3])], opset=24, alpha=0.5), x)
    np.testing.assert_allclose(y, x / (1 + np.exp(-0.5 * x)), rtol=1e-6)
    y, _ = run(model("Selu", [("x", F, [3])], alpha=2.0, gamma=3.0), x)
    np.testing.assert_allclose(y, 3.0 * np.where(x > 0, x, 2.0 * np.expm1(x)), rtol=1e-6)


@pytest.mark.parametrize("kind, dtype, ops", [(TensorProto.FLOAT, np.float32, ["Abs"]),
                                              (TensorProto.INT64, np.int64, ["Negative", "Max"]),
                                              (TensorProto.INT8, np.int8, ["Negative", "Max"]),
                                              (TensorProto.UINT16, np.uint16, ["Copy"])])
def test_abs_of_every_type(kind, dtype, ops):
    x = np.array([-3, 0, 2], dtype) if np.dtype(dtype).kind != "u" else np.array([3, 0, 2], dtype)
    y, emitted = run(model("Abs", [("x", kind, [3])]), x)
    np.testing.assert_array_equal(y, np.abs(x))
    assert y.dtype == dtype and emitted == ops
