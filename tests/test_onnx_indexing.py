"""The indexing converters' paths ONNX's node cases leave out: Slice-1 and TopK-1 with
attributes, Slice without axes but with steps, bounds from initializers (a static net,
no traced run), Unique with skipped outputs; each against onnx.reference."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from pycaffe2.onnx import backend

TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


def model_of(node, inputs: dict, outputs: list, opset: int, initializers: dict | None = None):
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(name, TYPES[value.dtype], value.shape) for name, value in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in outputs],
        [numpy_helper.from_array(value, name) for name, value in (initializers or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def check(model, feeds: dict):
    expected = ReferenceEvaluator(model).run(None, feeds)
    rep = backend.prepare(model)
    got = rep.run(feeds)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-6)
    return rep


X = np.arange(60, dtype=np.float32).reshape(3, 4, 5)


@pytest.mark.parametrize("attrs", [{"starts": [1, 0], "ends": [3, -1]}, {"starts": [-2], "ends": [100], "axes": [2]},
                                   {"starts": [0, 4], "ends": [9, 1], "axes": [-1, 1]}])
def test_slice_1_attributes(attrs):
    check(model_of(helper.make_node("Slice", ["x"], ["y"], **attrs), {"x": X}, ["y"], 9), {"x": X})


def test_slice_steps_without_axes_and_initializer_bounds():
    bounds = {"s": np.array([2, 0], np.int64), "e": np.array([-4, 100], np.int64), "t": np.array([-1, 2], np.int64)}
    model = model_of(helper.make_node("Slice", ["x", "s", "e", "", "t"], ["y"]), {"x": X}, ["y"], 13, bounds)
    rep = check(model, {"x": X})
    assert [op.type for op in rep.predict_net.op] == ["Slice"]  # a static net: the bounds stay inputs


def test_top_k_1_attribute_k():
    x = np.array([[3, 1, 3, 2], [0, 5, 5, 1]], np.float32)
    check(model_of(helper.make_node("TopK", ["x"], ["v", "i"], k=3), {"x": x}, ["v", "i"], 9), {"x": x})


def test_unique_with_skipped_outputs():
    x = np.array([2, 1, 1, 3, 4, 3], np.float32)
    node = helper.make_node("Unique", ["x"], ["y", "", "", "counts"], sorted=0)
    check(model_of(node, {"x": x}, ["y", "counts"], 11), {"x": x})


def test_compress_without_axis_on_an_initializer_condition():
    condition = np.array([True, False, True], bool)
    node = helper.make_node("Compress", ["x", "c"], ["y"])
    model = model_of(node, {"x": X}, ["y"], 11, {"c": condition})
    check(model, {"x": X})
