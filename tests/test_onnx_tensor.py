"""The tensor converters (pycaffe2/onnx/converters/tensor.py) beyond ONNX's node cases:
attribute-like inputs fed at run time keep the net static, dtypes Caffe2's enum lacks,
and the errors for what pycaffe2 cannot hold."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

from pycaffe2.errors import ConversionError
from pycaffe2.onnx import backend


def _model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _static(model):
    """A rep whose nets exist before the first run (no traced translation)."""
    rep = backend.prepare(model)
    assert rep.predict_net.op
    return rep


def test_fed_shapes_pads_and_axes_stay_runtime_inputs():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["r"]),
                    helper.make_node("Unsqueeze", ["r", "axes"], ["u"]),
                    helper.make_node("Squeeze", ["u", "axes"], ["s"]),
                    helper.make_node("Pad", ["s", "pads", "", "pad_axes"], ["p"], mode="reflect")],
                   [_info("x", shape=[2, 3, 4]), _info("shape", TensorProto.INT64, [2]),
                    _info("axes", TensorProto.INT64, [1]), _info("pads", TensorProto.INT64, [2]),
                    _info("pad_axes", TensorProto.INT64, [1])],
                   [_info("p")])
    rep = _static(model)
    assert [op.type for op in rep.predict_net.op] == ["Reshape", "ExpandDims", "Squeeze", "Pad"]
    for shape, axes in (([6, 4], [0]), ([4, 6], [-1])):
        out = rep.run([x, np.array(shape), np.array(axes), np.array([1, 2]), np.array([-1])]).p
        np.testing.assert_array_equal(out, np.pad(x.reshape(shape), [(0, 0), (1, 2)], "reflect"))


def test_split_num_outputs_uneven_needs_no_shape():
    model = _model([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
                   [_info("x", shape=["n", "m"])], [_info("a"), _info("b"), _info("c")])
    rep = _static(model)
    x = np.arange(14, dtype=np.float32).reshape(2, 7)
    assert [o.shape for o in rep.run([x])] == [(2, 3), (2, 3), (2, 1)]


@pytest.mark.parametrize("elem, dtype", [(TensorProto.UINT32, np.uint32), (TensorProto.UINT64, np.uint64),
                                         (TensorProto.INT8, np.int8), (TensorProto.BOOL, np.bool_)])
def test_constant_of_shape_and_cast_to_every_held_type(elem, dtype):
    value = numpy_helper.from_array(np.array([1], dtype))
    model = _model([helper.make_node("ConstantOfShape", ["shape"], ["c"], value=value),
                    helper.make_node("Cast", ["x"], ["y"], to=elem)],
                   [_info("shape", TensorProto.INT64, [2]), _info("x", shape=[3])], [_info("c"), _info("y")])
    c, y = _static(model).run([np.array([2, 3]), np.array([0.0, 1.0, 2.0], np.float32)])
    assert c.dtype == dtype and c.shape == (2, 3) and (c == dtype(1)).all()
    np.testing.assert_array_equal(y, np.array([0, 1, 2]).astype(dtype))


def test_cast_like_without_a_known_type_casts_at_run_time():
    model = _model([helper.make_node("CastLike", ["x", "t"], ["y"])],
                   [_info("x", shape=[2]), helper.make_tensor_value_info("t", TensorProto.UNDEFINED, None)],
                   [_info("y")])
    model.graph.input[1].type.tensor_type.ClearField("elem_type")
    rep = backend.prepare(model)
    assert [op.type for op in rep.predict_net.op] == ["CastLike"]
    assert rep.run([np.array([1.5, 2.5], np.float32), np.zeros(1, np.int16)]).y.dtype == np.int16


@pytest.mark.parametrize("to", [TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.STRING])
def test_cast_to_a_type_pycaffe2_cannot_hold_is_named(to):
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=to)], [_info("x", shape=[2])],
                   [_info("y", to)])
    with pytest.raises(ConversionError, match=f"to {TensorProto.DataType.Name(to)} "):
        backend.prepare(model)


def test_opset_1_forms():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = _model([helper.make_node("Cast", ["x"], ["c"], to="INT32"),
                    helper.make_node("Reshape", ["c"], ["r"], shape=[3, 2]),
                    helper.make_node("Pad", ["x"], ["p"], paddings=[0, 1, 0, 1], value=5.0)],
                   [_info("x", shape=[2, 3])], [_info("r", TensorProto.INT32), _info("p")], opset=1)
    r, p = _static(model).run([x])
    np.testing.assert_array_equal(r, x.astype(np.int32).reshape(3, 2))
    np.testing.assert_array_equal(p, np.pad(x, [(0, 0), (1, 1)], constant_values=5.0))
