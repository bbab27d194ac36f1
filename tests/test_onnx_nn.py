"""The nn converters (pycaffe2/onnx/converters/nn*.py) on what ONNX's node cases leave
out: explicit pads with ceil_mode and count_include_pad, ConvTranspose's output_shape
with SAME_LOWER, opset 18's per-group GroupNormalization, a rank-2 BatchNormalization,
the coerced softmaxes before opset 13, and the refusals. Expected values come from
ONNX's reference evaluator, or (where it implements only opset 13's softmaxes) from
the opset's definition written here."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from pycaffe2.errors import ConversionError
from pycaffe2.onnx import backend


def _model(op_type, attrs, arrays, opset=22, outputs=1):
    names = [f"x{i}" for i in range(len(arrays))]
    node = helper.make_node(op_type, names, [f"y{i}" for i in range(outputs)], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
                                            for n, a in zip(names, arrays)],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(outputs)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _positive(*shape):
    return np.random.default_rng(1).uniform(0.5, 1.5, shape).astype(np.float32)


CASES = [
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
                     "count_include_pad": 1}, [_randn(1, 2, 6, 6)], 22),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1,
                     "count_include_pad": 1}, [_randn(1, 2, 7, 6)], 22),
    ("AveragePool", {"kernel_shape": [3], "strides": [2], "ceil_mode": 1, "count_include_pad": 1}, [_randn(1, 2, 8)], 22),
    ("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 0], "ceil_mode": 1}, [_randn(1, 2, 8)], 22),
    ("ConvTranspose", {"strides": [2, 2], "output_shape": [10, 9], "auto_pad": "SAME_LOWER"},
     [_randn(1, 2, 4, 4), _randn(2, 3, 3, 3, seed=1)], 22),
    ("ConvTranspose", {"strides": [3], "output_padding": [2], "pads": [1, 1]}, [_randn(1, 2, 4), _randn(2, 3, 3, seed=1)], 22),
    ("Conv", {"strides": [2, 2], "auto_pad": "SAME_LOWER", "dilations": [2, 1]},
     [_randn(1, 2, 7, 6), _randn(4, 2, 3, 3, seed=1)], 22),
    ("GroupNormalization", {"num_groups": 2}, [_randn(2, 4, 3), _randn(2, seed=1), _randn(2, seed=2)], 18),
    ("BatchNormalization", {"epsilon": 1e-3}, [_randn(3, 4), _positive(4), _randn(4), _randn(4), _positive(4)], 15),
    ("LpPool", {"kernel_shape": [2, 2], "p": 3, "strides": [1, 2]}, [_randn(1, 2, 4, 5)], 22),
]


@pytest.mark.parametrize("op_type, attrs, arrays, opset", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_against_onnx_reference(op_type, attrs, arrays, opset):
    model = _model(op_type, attrs, arrays, opset)
    (expected,) = ReferenceEvaluator(model).run(None, {f"x{i}": a for i, a in enumerate(arrays)})
    (got,) = backend.prepare(model).run(arrays)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _asymmetric(x, scales, linear):
    """Upsample-7/9 and Resize-10: source o / scale per axis, floored or linear (edge-clamped)."""
    for axis, scale in enumerate(scales):
        size = x.shape[axis]
        out = []
        for o in range(int(size * scale)):
            v = o / scale
            low = min(int(np.floor(v)), size - 1)
            high, t = min(low + 1, size - 1), v - low
            a, b = np.take(x, low, axis=axis), np.take(x, high, axis=axis)
            out.append(a * (1 - t) + b * t if linear else a)
        x = np.stack(out, axis=axis)
    return x


def test_upsample_and_resize_10_use_asymmetric_coordinates():
    x = _randn(1, 1, 2, 3)
    scales = np.array([1, 1, 2, 1.5], np.float32)
    (got,) = backend.prepare(_model("Resize", {"mode": "nearest"}, [x, scales], opset=10)).run([x, scales])
    np.testing.assert_allclose(got, _asymmetric(x, scales, linear=False))
    (got,) = backend.prepare(_model("Upsample", {"mode": "linear", "scales": [1.0, 1.0, 2.0, 2.0]}, [x], 7)).run([x])
    np.testing.assert_allclose(got, _asymmetric(x, [1, 1, 2, 2], linear=True), rtol=1e-6)


def _coerced(x, axis):
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmaxes_before_opset_13_coerce_to_2d(op_type):
    x = _randn(2, 3, 4)
    rows = _coerced(x, 1)
    if op_type == "Hardmax":
        expected = np.eye(rows.shape[1], dtype=np.float32)[rows.argmax(axis=1)]
    else:
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        expected = e / e.sum(axis=1, keepdims=True)
        expected = np.log(expected) if op_type == "LogSoftmax" else expected
    (got,) = backend.prepare(_model(op_type, {"axis": 1}, [x], opset=11)).run([x])
    np.testing.assert_allclose(got, expected.reshape(x.shape), rtol=1e-5, atol=1e-6)


def test_same_upper_conv_translates_statically_to_explicit_pads():
    x, w = _randn(1, 2, 5, 6), _randn(3, 2, 3, 3, seed=1)
    rep = backend.prepare(_model("Conv", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [x, w]))
    (conv,) = [op for op in rep.predict_net.op if op.type == "Conv"]
    assert [list(a.ints) for a in conv.arg if a.name == "pads"] == [[1, 0, 1, 1]]


@pytest.mark.parametrize("op_type, attrs, arrays, message", [
    ("LpNormalization", {"p": 3}, [_randn(2, 3)], "p 3 .pycaffe2 has L1 and L2."),
    ("Resize", {"mode": "area"}, [_randn(1, 1, 2, 2), np.zeros(0, np.float32), np.ones(4, np.float32)],
     "mode 'area'"),
    ("MaxPool", {"kernel_shape": [2], "auto_pad": "WRONG"}, [_randn(1, 1, 4)], "auto_pad 'WRONG'"),
])
def test_refusals_name_what_is_missing(op_type, attrs, arrays, message):
    model = _model(op_type, attrs, arrays)
    with pytest.raises(ConversionError, match=message):
        backend.prepare(model).run(arrays)


def test_max_roi_pool_is_caffe2_roi_pool():
    x = _randn(2, 3, 6, 7)
    rois = np.array([[0, 1, 1, 4, 3], [1, 0, 2, 6, 5]], np.float32)
    model = _model("MaxRoiPool", {"pooled_shape": [2, 2], "spatial_scale": 1.0}, [x, rois], opset=22)
    (got,) = backend.prepare(model).run([x, rois])
    expected = np.zeros((2, 3, 2, 2), np.float32)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.astype(int)):
        h, w = y2 - y1 + 1, x2 - x1 + 1
        for i in range(2):
            for j in range(2):
                rows = slice(y1 + i * h // 2, y1 + -(-(i + 1) * h // 2))
                cols = slice(x1 + j * w // 2, x1 + -(-(j + 1) * w // 2))
                expected[r, :, i, j] = x[b, :, rows, cols].max(axis=(1, 2))
    np.testing.assert_allclose(got, expected)


def test_layer_normalization_of_a_dynamic_batch_translates_statically():
    scale, bias = _randn(4, seed=1), _randn(4, seed=2)
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y", "mean", "inv_std"], axis=-1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "mean", "inv_std")],
        initializer=[onnx.numpy_helper.from_array(scale, "scale"), onnx.numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rep = backend.prepare(model)
    assert [op.type for op in rep.predict_net.op if op.type == "LayerNorm"] == ["LayerNorm"]  # no traced run needed
    for n in (2, 5):
        x = _randn(n, 3, 4, seed=n)
        expected = ReferenceEvaluator(model).run(None, {"x": x})
        for got, want in zip(rep.run([x]), expected):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_same_upper_conv_of_unknown_size_uses_caffe2s_legacy_same():
    w = _randn(3, 2, 3, 3, seed=1)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rep = backend.prepare(model)
    (conv,) = [op for op in rep.predict_net.op if op.type == "Conv"]  # static: no traced run
    assert [a.i for a in conv.arg if a.name == "legacy_pad"] == [2]
    for shape in ((1, 2, 5, 6), (1, 2, 8, 7)):
        x = _randn(*shape, seed=shape[2])
        (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
        np.testing.assert_allclose(rep.run([x])[0], expected, rtol=1e-4, atol=1e-5)
