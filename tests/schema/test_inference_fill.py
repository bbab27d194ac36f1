"""Inference rules of the fill family, checked against the arrays NumPy builds."""
import numpy as np
import pytest

from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import ShapeError, TensorInfo, infer_op

T = caffe2_pb2.TensorProto
FLOAT_FILLERS = ["GaussianFill", "UniformFill", "XavierFill", "MSRAFill", "RangeFill"]
ALL_FILLERS = FLOAT_FILLERS + ["ConstantFill", "GivenTensorFill"]


def infer(op_type, shapes, in_dtype="float32", **args):
    """Output infos of op_type on inputs of these shapes (None = unknown). List args
    are stored as their schema type says (so [1.0, 2.0] stays a float list); scalars
    by Caffe2's MakeArgument rules (so value=7 is an int)."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=[f"x{i}" for i in range(len(shapes))],
                                output=["y"])
    schema_args = all_schemas()[op_type].args
    op.arg.extend(make_argument(name, value, schema_args[name].types if isinstance(value, list)
                                else ()) for name, value in args.items())
    infos = [None if s is None else s if isinstance(s, TensorInfo)
             else TensorInfo(tuple(s), in_dtype) for s in shapes]
    return infer_op(op, infos)


def info_of(array):
    return TensorInfo(array.shape, array.dtype.name)


def test_every_op_of_the_family_has_a_rule_and_no_gradient():
    family = {name: s for name, s in all_schemas().items() if s.family == "fill"}
    assert len(family) == 12
    assert all(s.inference != "none" and s.gradient == "none" for s in family.values())


@pytest.mark.parametrize("op_type", FLOAT_FILLERS)
def test_float_fillers_from_shape_and_input(op_type):
    assert infer(op_type, [], shape=[2, 3]) == [info_of(np.zeros((2, 3), np.float32))]
    assert infer(op_type, []) == [info_of(np.zeros((), np.float32))]
    source = np.zeros((4, 5), np.int32)
    expected = np.zeros(source.shape + (6,), np.float32)
    assert infer(op_type, [source.shape], in_dtype="int32", extra_shape=[6]) == [info_of(expected)]
    assert infer(op_type, [None]) == [None]


def test_range_fill_matches_arange():
    expected = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert infer("RangeFill", [], shape=[2, 3, 4]) == [info_of(expected)]


@pytest.mark.parametrize("op_type", ALL_FILLERS)
def test_filler_shape_errors(op_type):
    values = {"values": [0.0] * 6} if op_type == "GivenTensorFill" else {}
    with pytest.raises(ShapeError, match=r"give the shape \[2, 3\] or an input, not both"):
        infer(op_type, [(2, 3)], shape=[2, 3], **values)
    with pytest.raises(ShapeError, match=r"extra_shape \[3\] needs an input"):
        infer(op_type, [], shape=[2], extra_shape=[3], **values)
    with pytest.raises(ShapeError, match="input_as_shape=1 needs an input"):
        infer(op_type, [], input_as_shape=1, **values)


@pytest.mark.parametrize("op_type", ["ConstantFill", "GaussianFill", "XavierFill"])
def test_input_as_shape(op_type):
    assert infer(op_type, [TensorInfo((3,), "int64")], input_as_shape=1) == [None]
    with pytest.raises(ShapeError, match=r"1-D int64 tensor, got \[2, 3\] int64"):
        infer(op_type, [TensorInfo((2, 3), "int64")], input_as_shape=1)
    with pytest.raises(ShapeError, match=r"1-D int64 tensor, got \[3\] float32"):
        infer(op_type, [(3,)], input_as_shape=1)


def test_uniform_fill_three_inputs():
    out = infer("UniformFill", [(2, 3), (1,), ()])
    assert out == [info_of(np.random.uniform(0, 1, (2, 3)).astype(np.float32))]
    with pytest.raises(ShapeError, match=r"input max must hold one element, got \[2\]"):
        infer("UniformFill", [(2, 3), (1,), (2,)])


@pytest.mark.parametrize("value, dtype, expected", [
    (0.5, None, np.full((2, 3), 0.5, np.float32)),
    (7, None, np.full((2, 3), 7, np.int64)),
    (7, T.INT32, np.full((2, 3), 7, np.int32)),
    (1, T.BOOL, np.full((2, 3), True)),
    (1.0, T.DOUBLE, np.full((2, 3), 1.0)),
    ("a", T.STRING, np.full((2, 3), "a", dtype=object)),
])
def test_constant_fill_dtype(value, dtype, expected):
    args = {"value": value} if dtype is None else {"value": value, "dtype": dtype}
    assert infer("ConstantFill", [], shape=[2, 3], **args) == [info_of(expected)]


def test_constant_fill_defaults_and_errors():
    assert infer("ConstantFill", [], shape=[4]) == [info_of(np.zeros(4, np.float32))]
    with pytest.raises(ShapeError, match="a string value needs dtype=STRING"):
        infer("ConstantFill", [], shape=[4], value="a")
    with pytest.raises(ShapeError, match="dtype UNDEFINED cannot be filled"):
        infer("ConstantFill", [], shape=[4], dtype=T.UNDEFINED)


@pytest.mark.parametrize("op_type, values, dtype", [
    ("GivenTensorFill", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32),
    ("GivenTensorDoubleFill", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float64),
    ("GivenTensorIntFill", [1, 2, 3, 4, 5, 6], np.int32),
    ("GivenTensorInt64Fill", [1, 2, 3, 4, 5, 6], np.int64),
    ("GivenTensorBoolFill", [1, 0, 1, 0, 1, 0], np.bool_),
    ("GivenTensorStringFill", ["a", "b", "c", "d", "e", "f"], object),
])
def test_given_tensor_fills_match_numpy(op_type, values, dtype):
    expected = np.array(values, dtype=dtype).reshape(2, 3)
    assert infer(op_type, [], shape=[2, 3], values=values) == [info_of(expected)]
    assert infer(op_type, [(3,)], extra_shape=[2], values=values) == [
        info_of(np.array(values, dtype=dtype).reshape(3, 2))]
    with pytest.raises(ValueError):
        np.array(values, dtype=dtype).reshape(4, 2)
    with pytest.raises(ShapeError, match=r"6 values cannot fill shape \[4, 2\] \(8 elements\)"):
        infer(op_type, [], shape=[4, 2], values=values)


def test_given_tensor_fill_dtype():
    out = infer("GivenTensorFill", [], shape=[2], values=[1, 2], dtype=T.INT64)
    assert out == [info_of(np.array([1, 2], np.int64))]
    assert infer("GivenTensorFill", [], values=[1.5]) == [info_of(np.array(1.5, np.float32))]
    with pytest.raises(ShapeError, match="dtype UINT8 is not one of FLOAT"):
        infer("GivenTensorFill", [], shape=[2], values=[1, 2], dtype=T.UINT8)
