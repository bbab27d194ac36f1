"""Fill family: deterministic fillers against NumPy (on the CPU, and on CUDA where a row
takes `device`), random fillers by their moments and bounds, reproducibility from
device_option.random_seed, errors on both devices, the shape inference rules against the
arrays NumPy builds, and the CUDA fills (fill.cu) against their CPU twins or, for the
random ones, by their statistics over 1M samples."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import ShapeError, TensorInfo, infer_op
from pycaffe2.testing import check_devices, check_reference, make_op, run_op
from tests.operators import DEVICES

load_kernels()
RNG = np.random.default_rng(0)

dims = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


def check_fill(op_type, inputs, expected, args):
    """check_reference, or for string tensors (which it cannot compare) an exact comparison."""
    if expected.dtype != object:
        (y,) = check_reference(op_type, inputs, lambda *_, **__: expected, args)
    else:
        (y,) = run_op(op_type, inputs, args)
        assert y.shape == expected.shape and y.tolist() == expected.tolist()
    assert y.dtype == expected.dtype
    return y


def expected_shape(inputs, shape=None, extra_shape=(), input_as_shape=0, **_):
    if not inputs:
        return tuple(shape or ())
    source = inputs[0]
    return (tuple(source.tolist()) if input_as_shape else source.shape) + tuple(extra_shape)


# (args, inputs, reference output): ConstantFill's dtype from `dtype` or the value's type.
CONSTANT = [
    ({"shape": [2, 3], "value": 1.5}, [], np.full((2, 3), 1.5, np.float32)),
    ({"shape": [2], "value": 7, "dtype": "INT32"}, [], np.full(2, 7, np.int32)),
    ({"shape": [3], "value": 1, "dtype": "BOOL"}, [], np.ones(3, bool)),
    ({"shape": [2], "value": 0.25, "dtype": "DOUBLE"}, [], np.full(2, 0.25)),
    ({"shape": [2], "value": 3.0, "dtype": "INT64"}, [], np.full(2, 3, np.int64)),
    ({"shape": [2], "value": "ab", "dtype": "STRING"}, [], np.array([b"ab", b"ab"], dtype=object)),
    ({"shape": [1], "dtype": "STRING"}, [], np.array([b""], dtype=object)),
    ({}, [], np.zeros((), np.float32)),
    ({"value": 2.0}, [np.zeros((2, 2), np.int32)], np.full((2, 2), 2.0, np.float32)),
    ({"value": 2.0, "extra_shape": [3]}, [np.zeros(2)], np.full((2, 3), 2.0, np.float32)),
    ({"value": -1, "dtype": "INT64", "input_as_shape": 1, "extra_shape": [2]},
     [np.array([3, 1], np.int64)], np.full((3, 1, 2), -1, np.int64)),
]


@pytest.mark.parametrize("args, inputs, expected", CONSTANT)
def test_constant_fill(args, inputs, expected):
    check_fill("ConstantFill", inputs, expected, args)


def test_constant_fill_int_value_gives_int64():
    """A value stored as an int (as Caffe2's MakeArgument stores a Python int) gives INT64."""
    op = caffe2_pb2.OperatorDef(type="ConstantFill", output=["y"],
                                arg=[make_argument("shape", [4]), make_argument("value", 7)])
    workspace = Workspace()
    workspace.RunOperatorOnce(op)
    y = workspace.FetchBlob("y")
    assert y.dtype == np.int64 and y.tolist() == [7] * 4


@settings(max_examples=25, deadline=None)
@given(source=dims, extra=dims, value=st.floats(-5, 5, width=32), with_input=st.booleans(),
       as_shape=st.booleans())
def test_fill_shapes(source, extra, value, with_input, as_shape):
    """The shape rule of every filler: `shape`, or the input's shape or values, then extra_shape."""
    if with_input:
        inputs = [np.array(source, np.int64)] if as_shape else [np.zeros(source, np.float32)]
        args = {"extra_shape": list(extra), "input_as_shape": int(as_shape)}
    else:
        inputs, args = [], {"shape": list(source)}
    shape = expected_shape(inputs, **args)
    check_reference("ConstantFill", inputs, lambda *_, **__: np.full(shape, value, np.float32),
                    {**args, "value": value})
    check_reference("RangeFill", inputs,
                    lambda *_, **__: np.arange(math.prod(shape), dtype=np.float32).reshape(shape), args)
    for op_type in ("GaussianFill", "UniformFill", "XavierFill"):
        if op_type != "XavierFill" or shape:
            (y,) = run_op(op_type, inputs, args)
            assert y.shape == shape and y.dtype == np.float32


GIVEN = [
    ("GivenTensorFill", {}, [1.5, -2.0, 3.25, 0.0], np.float32),
    ("GivenTensorFill", {"dtype": "INT64"}, [1, -2, 3, 2**40], np.int64),
    ("GivenTensorFill", {"dtype": "STRING"}, ["a", "bc", "", "é"], object),
    # Argument.floats holds float32s, so Caffe2's double values are float32s widened.
    ("GivenTensorDoubleFill", {}, [0.1, 1e-30, -3.0, 2.0], np.float64),
    ("GivenTensorFp16Fill", {}, [0.1, -3.0, 65504.0, 2.0**-24], np.float16),  # the largest and smallest halves
    ("GivenTensorInt16Fill", {}, [1, -2, 3, 2**15 - 1], np.int16),
    ("GivenTensorIntFill", {}, [1, -2, 3, 2**31 - 1], np.int32),
    ("GivenTensorIntFill", {"dtype": "INT32"}, [1, -2, 3, 4], np.int32),  # Caffe2 scripts pass dtype too
    ("GivenTensorInt64Fill", {}, [1, -2, 3, 2**62], np.int64),
    ("GivenTensorBoolFill", {}, [1, 0, 0, 1], np.bool_),
    ("GivenTensorStringFill", {}, ["x", "yy", "zzz", "é"], object),
]


@pytest.mark.parametrize("op_type, args, values, dtype", GIVEN,
                         ids=[f"{g[0]}-{g[3].__name__}" for g in GIVEN])
def test_given_tensor_fills(op_type, args, values, dtype):
    if dtype is object:
        expected = np.array([v.encode() for v in values], dtype=object).reshape(2, 2)
    elif dtype is np.float64:
        expected = np.array(values, dtype=np.float32).astype(np.float64).reshape(2, 2)
    else:
        expected = np.array(values, dtype=dtype).reshape(2, 2)
    for inputs, shape_args in (([], {"shape": [2, 2]}), ([np.zeros(2)], {"extra_shape": [2]}),
                               ([np.array([2, 2], np.int64)], {"input_as_shape": 1})):
        all_args = {**args, **shape_args, "values": values}
        y = check_fill(op_type, inputs, expected, all_args)
        assert y.tolist() == expected.tolist()


@pytest.mark.parametrize("device", DEVICES)
def test_given_tensor_fill_count_checked_at_run_time(device):
    with pytest.raises(OpFailure, match=r"\(GivenTensorFill\) failed: 3 values cannot fill shape \[2, 2\] \(4 elements\)"):
        check_reference("GivenTensorFill", [np.zeros((2, 2), np.float32)], None, {"values": [1.0, 2.0, 3.0]},
                        device=device)


# Random fillers: (type, args, shape, expected mean, expected std, bounds or None).
XAVIER = math.sqrt(3 / (20 * 30))
RANDOM = [
    ("GaussianFill", {"mean": 2.0, "std": 0.5}, (200, 100), 2.0, 0.5, None),
    ("GaussianFill", {}, (20000,), 0.0, 1.0, None),
    ("UniformFill", {"min": -1.0, "max": 3.0}, (200, 100), 1.0, 4 / math.sqrt(12), (-1.0, 3.0)),
    ("UniformFill", {}, (20000,), 0.5, 1 / math.sqrt(12), (0.0, 1.0)),
    ("XavierFill", {}, (40, 20, 30), 0.0, XAVIER / math.sqrt(3), (-XAVIER, XAVIER)),
    ("MSRAFill", {}, (30, 40, 5, 5), 0.0, math.sqrt(2 / (30 * 25)), None),
]


@pytest.mark.parametrize("op_type, args, shape, mean, std, bounds", RANDOM)
def test_random_fill_moments(op_type, args, shape, mean, std, bounds):
    (y,) = run_op(op_type, [], {**args, "shape": list(shape)}, seed=3)
    assert y.shape == shape and y.dtype == np.float32
    assert abs(y.mean() - mean) < 0.05 * std + 1e-6
    assert abs(y.std() - std) < 0.05 * std
    if bounds is not None:
        assert bounds[0] <= y.min() and y.max() <= bounds[1]


def test_uniform_fill_bounds_from_inputs():
    (y,) = run_op("UniformFill", [np.zeros((50, 40)), np.array([5.0], np.float32), np.array(6.0)])
    assert y.shape == (50, 40) and 5 <= y.min() and y.max() <= 6
    (y,) = run_op("UniformFill", [np.zeros((50, 40)), np.array([2.0]), np.array([1.0])])
    assert y.shape == (0, 40)  # Caffe2 empties the batch when the input bounds cross


def seeded_fill(op_type, seed, shape=(4, 5), runs=1):
    """Values of a filler whose op has device_option.random_seed, run `runs` times in one net."""
    op = make_op(op_type, [], ["y"], {"shape": list(shape)})
    if seed is not None:
        op.device_option.random_seed = seed
    net = caffe2_pb2.NetDef(name="fill", op=[op])
    workspace = Workspace()
    workspace.CreateNet(net)
    values = []
    for _ in range(runs):
        workspace.RunNet("fill")
        values.append(workspace.FetchBlob("y"))
    return values


@pytest.mark.parametrize("op_type", ["GaussianFill", "UniformFill", "XavierFill", "MSRAFill"])
def test_random_seed_makes_runs_reproducible(op_type):
    first, second = seeded_fill(op_type, 7, runs=2)
    again = seeded_fill(op_type, 7, runs=2)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    assert not np.array_equal(first, second)  # each run draws afresh
    assert not np.array_equal(first, seeded_fill(op_type, 8)[0])
    assert not np.array_equal(seeded_fill(op_type, None)[0], seeded_fill(op_type, None)[0])


@pytest.mark.parametrize("op_type, args, inputs, message", [
    ("ConstantFill", {"shape": [2]}, [np.zeros(2, np.float32)], r"give the shape \[2\] or an input, not both"),
    ("GaussianFill", {"extra_shape": [3]}, [], r"extra_shape \[3\] needs an input"),
    ("RangeFill", {"input_as_shape": 1}, [], "input_as_shape=1 needs an input"),
    ("UniformFill", {"input_as_shape": 1}, [np.array([2.0, 3.0], np.float32)],
     r"1-D int64 tensor, got \[2\] float32"),
    ("XavierFill", {"input_as_shape": 1}, [np.array([2, -3], np.int64)], r"negative dim"),
    ("MSRAFill", {"shape": [5]}, [], r"at least 2 dims .* got \[5\]"),
    ("XavierFill", {}, [], "at least 1 dim"),
    ("GaussianFill", {"shape": [2], "std": -1.0}, [], "std must not be negative"),
    ("UniformFill", {"shape": [2], "min": 2.0, "max": 1.0}, [], "min 2.0 is above max 1.0"),
    ("ConstantFill", {"shape": [2], "value": "a"}, [], "a string value needs dtype=STRING"),
    ("ConstantFill", {"shape": [2], "value": 1.5, "dtype": "INT32"}, [], "not a whole number"),
    ("ConstantFill", {"shape": [2], "dtype": "UNDEFINED"}, [], "dtype UNDEFINED cannot be filled"),
    ("GivenTensorFill", {"shape": [2], "values": [1, 2], "dtype": "UINT8"}, [], "UINT8 is not one of"),
])
@pytest.mark.parametrize("device", DEVICES)
def test_fill_errors(op_type, args, inputs, message, device):
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) .*{message}"):
        check_reference(op_type, inputs, None, args, device=device)


# --- shape inference ---------------------------------------------------------------------------

T = caffe2_pb2.TensorProto
FLOAT_FILLERS = ["GaussianFill", "UniformFill", "XavierFill", "MSRAFill", "RangeFill"]
ALL_FILLERS = FLOAT_FILLERS + ["ConstantFill", "GivenTensorFill"]


def infer_fill(op_type, shapes, in_dtype="float32", **args):
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
    assert len(family) == 20
    assert all(s.inference != "none" and s.gradient == "none" for s in family.values())


@pytest.mark.parametrize("op_type", FLOAT_FILLERS)
def test_float_fillers_from_shape_and_input(op_type):
    assert infer_fill(op_type, [], shape=[2, 3]) == [info_of(np.zeros((2, 3), np.float32))]
    if op_type in ("XavierFill", "MSRAFill"):  # their fan is read from dim 0 or 1
        with pytest.raises(ShapeError, match=r"needs a shape of at least [12] dims? \(fan_.*\), got \[\]"):
            infer_fill(op_type, [])
    else:
        assert infer_fill(op_type, []) == [info_of(np.zeros((), np.float32))]
    source = np.zeros((4, 5), np.int32)
    expected = np.zeros(source.shape + (6,), np.float32)
    assert infer_fill(op_type, [source.shape], in_dtype="int32", extra_shape=[6]) == [info_of(expected)]
    assert infer_fill(op_type, [None]) == [None]


def test_range_fill_matches_arange():
    expected = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert infer_fill("RangeFill", [], shape=[2, 3, 4]) == [info_of(expected)]


@pytest.mark.parametrize("op_type", ALL_FILLERS)
def test_filler_shape_errors(op_type):
    values = {"values": [0.0] * 6} if op_type == "GivenTensorFill" else {}
    with pytest.raises(ShapeError, match=r"give the shape \[2, 3\] or an input, not both"):
        infer_fill(op_type, [(2, 3)], shape=[2, 3], **values)
    with pytest.raises(ShapeError, match=r"extra_shape \[3\] needs an input"):
        infer_fill(op_type, [], shape=[2], extra_shape=[3], **values)
    with pytest.raises(ShapeError, match="input_as_shape=1 needs an input"):
        infer_fill(op_type, [], input_as_shape=1, **values)


@pytest.mark.parametrize("op_type", ["ConstantFill", "GaussianFill", "XavierFill"])
def test_infer_input_as_shape(op_type):
    assert infer_fill(op_type, [TensorInfo((3,), "int64")], input_as_shape=1) == [None]
    with pytest.raises(ShapeError, match=r"1-D int64 tensor, got \[2, 3\] int64"):
        infer_fill(op_type, [TensorInfo((2, 3), "int64")], input_as_shape=1)
    with pytest.raises(ShapeError, match=r"1-D int64 tensor, got \[3\] float32"):
        infer_fill(op_type, [(3,)], input_as_shape=1)


def test_uniform_fill_three_inputs():
    out = infer_fill("UniformFill", [(2, 3), (1,), ()])
    assert out == [info_of(np.random.uniform(0, 1, (2, 3)).astype(np.float32))]
    with pytest.raises(ShapeError, match=r"input max must hold one element, got \[2\]"):
        infer_fill("UniformFill", [(2, 3), (1,), (2,)])


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
    assert infer_fill("ConstantFill", [], shape=[2, 3], **args) == [info_of(expected)]


def test_constant_fill_defaults_and_errors():
    assert infer_fill("ConstantFill", [], shape=[4]) == [info_of(np.zeros(4, np.float32))]
    with pytest.raises(ShapeError, match="a string value needs dtype=STRING"):
        infer_fill("ConstantFill", [], shape=[4], value="a")
    with pytest.raises(ShapeError, match="dtype UNDEFINED cannot be filled"):
        infer_fill("ConstantFill", [], shape=[4], dtype=T.UNDEFINED)


@pytest.mark.parametrize("op_type, values, dtype", [
    ("GivenTensorFill", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32),
    ("GivenTensorDoubleFill", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float64),
    ("GivenTensorFp16Fill", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float16),
    ("GivenTensorInt16Fill", [1, 2, 3, 4, 5, 6], np.int16),
    ("GivenTensorIntFill", [1, 2, 3, 4, 5, 6], np.int32),
    ("GivenTensorInt64Fill", [1, 2, 3, 4, 5, 6], np.int64),
    ("GivenTensorBoolFill", [1, 0, 1, 0, 1, 0], np.bool_),
    ("GivenTensorStringFill", ["a", "b", "c", "d", "e", "f"], object),
])
def test_given_tensor_fills_match_numpy(op_type, values, dtype):
    expected = np.array(values, dtype=dtype).reshape(2, 3)
    assert infer_fill(op_type, [], shape=[2, 3], values=values) == [info_of(expected)]
    assert infer_fill(op_type, [(3,)], extra_shape=[2], values=values) == [
        info_of(np.array(values, dtype=dtype).reshape(3, 2))]
    with pytest.raises(ValueError):
        np.array(values, dtype=dtype).reshape(4, 2)
    with pytest.raises(ShapeError, match=r"6 values cannot fill shape \[4, 2\] \(8 elements\)"):
        infer_fill(op_type, [], shape=[4, 2], values=values)


@pytest.mark.parametrize("values", [[b"\x80\x81\x82\x83\x00\xff"], b"\x80\x81\x82\x83\x00\xff",
                                    [b"\x80\x81", b"\x82\x83\x00\xff"]])
def test_given_tensor_byte_string_to_uint8_fill(values):
    """Raw bytes read as uint8 (Glow's fill_test_init_net.pbtxt and Caffe2's save path)."""
    expected = np.array([128, 129, 130, 131, 0, 255], np.uint8).reshape(2, 3)
    for inputs, shape_args in (([], {"shape": [2, 3]}), ([np.zeros(2)], {"extra_shape": [3]})):
        y = check_fill("GivenTensorByteStringToUInt8Fill", inputs, expected, {**shape_args, "values": values})
        assert y.dtype == np.uint8
    (empty,) = run_op("GivenTensorByteStringToUInt8Fill", [], {"shape": [0], "values": [b""], "dtype": "STRING"})
    assert empty.shape == (0,) and empty.dtype == np.uint8


@pytest.mark.parametrize("dtype, np_type", [("INT32", np.int32), ("INT64", np.int64)])
def test_unique_uniform_fill(dtype, np_type):
    avoid = np.array([3, 5, 5, 40, -2], np_type)  # repeats and values outside [min, max] are fine
    for count in (0, 4, 8):
        (y,) = run_op("UniqueUniformFill", [np.array([count], np.int64), avoid],
                      {"min": 1, "max": 10, "input_as_shape": 1, "dtype": dtype})
        assert y.dtype == np_type and y.shape == (count,) and len(set(y.tolist())) == count
        assert set(y.tolist()) <= set(range(1, 11)) - {3, 5}
    (y,) = run_op("UniqueUniformFill", [], {"min": 1, "max": 10, "shape": [2, 5], "dtype": dtype})
    assert sorted(y.ravel().tolist()) == list(range(1, 11))  # all of them, each once
    assert infer_fill("UniqueUniformFill", [], shape=[2, 3], min=0, max=9) == [TensorInfo((2, 3), "int32")]
    big = run_op("UniqueUniformFill", [], {"min": 0, "max": 10**12, "shape": [6], "dtype": "INT64"})[0]
    assert len(set(big.tolist())) == 6  # drawn without listing the range


def test_unique_uniform_fill_errors():
    with pytest.raises(ShapeError, match=r"max \(3\) must be above min \(3\)"):
        infer_fill("UniqueUniformFill", [], shape=[1], min=3, max=3)
    with pytest.raises(ShapeError, match="dtype must be INT32 or INT64, got FLOAT"):
        infer_fill("UniqueUniformFill", [], shape=[1], min=0, max=3, dtype=T.FLOAT)
    with pytest.raises((OpFailure, NetError), match=r"5 distinct values cannot be drawn from the 4 in \[0, 3\]"):
        run_op("UniqueUniformFill", [], {"min": 0, "max": 3, "shape": [5]})
    with pytest.raises((OpFailure, NetError), match=r"avoid \(int64\) must have the output's type \(int32\)"):
        run_op("UniqueUniformFill", [np.zeros(2), np.array([1], np.int64)], {"min": 0, "max": 3})


def test_given_tensor_byte_string_to_uint8_fill_errors():
    with pytest.raises(ShapeError, match=r"3 values cannot fill shape \[2, 2\] \(4 elements\)"):
        infer_fill("GivenTensorByteStringToUInt8Fill", [], shape=[2, 2], values=[b"abc"])
    with pytest.raises(ShapeError, match="dtype must be STRING"):
        infer_fill("GivenTensorByteStringToUInt8Fill", [], shape=[1], values=[b"a"], dtype=T.FLOAT)
    with pytest.raises((OpFailure, NetError), match="dtype must be STRING"):
        run_op("GivenTensorByteStringToUInt8Fill", [], {"shape": [1], "values": [b"a"], "dtype": "INT32"})


def test_given_tensor_fill_dtype():
    out = infer_fill("GivenTensorFill", [], shape=[2], values=[1, 2], dtype=T.INT64)
    assert out == [info_of(np.array([1, 2], np.int64))]
    assert infer_fill("GivenTensorFill", [], values=[1.5]) == [info_of(np.array(1.5, np.float32))]
    with pytest.raises(ShapeError, match="dtype UINT8 is not one of FLOAT"):
        infer_fill("GivenTensorFill", [], shape=[2], values=[1, 2], dtype=T.UINT8)


def test_numpy_values_make_arguments_as_in_caffe2():
    """Caffe2 scripts pass NumPy arrays (flattened) and scalars as arg values."""
    assert list(make_argument("values", np.array([[3, 1], [2, 5]], np.int64), ("floats",)).floats) == [3, 1, 2, 5]
    assert list(make_argument("values", np.arange(3)).ints) == [0, 1, 2]
    assert make_argument("value", np.float32(0.5)).f == 0.5
    (y,) = run_op("GivenTensorFill", [], {"shape": [2], "values": np.array([4, 9])})
    np.testing.assert_array_equal(y, np.array([4, 9], np.float32))


# --- CUDA (gpu) ---------------------------------------------------------------------------------


# op type -> (inputs, args) of one representative run (the tests below cover more)
CUDA_CASES = {
    "ConstantFill": ([], {"shape": [3, 5], "value": 2.5}),
    "UniformFill": ([], {"shape": [3, 5], "min": -2.0, "max": 3.0}),
    "GaussianFill": ([], {"shape": [3, 5], "mean": 1.0, "std": 2.0}),
    "XavierFill": ([], {"shape": [3, 5]}),
    "MSRAFill": ([], {"shape": [3, 5]}),
    "RangeFill": ([], {"shape": [3, 5]}),
    "GivenTensorFill": ([], {"shape": [2, 3], "values": [0.5, -1.0, 2.0, 3.5, 1e-3, 7.0]}),
    "GivenTensorIntFill": ([], {"shape": [3], "values": [1, -2, 3]}),
    "GivenTensorInt64Fill": ([], {"shape": [3], "values": [1, -2, 1 << 40]}),
    "GivenTensorBoolFill": ([], {"shape": [2, 2], "values": [1, 0, 0, 1]}),
    "GivenTensorInt16Fill": ([], {"shape": [3], "values": [1, -2, 300]}),
    "GivenTensorByteStringToUInt8Fill": ([], {"shape": [2, 2], "values": [b"\x00\x7f\x80\xff"]}),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CUDA_CASES)
BIG = [1000, 1001]  # 1,001,000 samples


def run_cuda(op_type, args, inputs=(), seed=None) -> np.ndarray:
    option = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    if seed is not None:
        option.random_seed = seed
    return run_op(op_type, list(inputs), args, num_outputs=1, device_option=option)[0]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("inputs, args", [
    ([], {"shape": [7], "value": 2.5}),
    ([], {"shape": [3, 5, 4], "value": -1.25, "dtype": "FLOAT"}),
    ([], {"shape": [1 << 20], "value": 0.5}),
    ([], {"shape": [3, 5]}),
    ([], {"shape": [2, 3], "value": 7}),  # an int value: INT64, filled on the host and copied over
    ([], {"shape": [4], "value": 3, "dtype": "INT32"}),
    ([], {"shape": [0, 3], "value": 1.0}),
    ([np.zeros((2, 3, 5), np.float32)], {"value": 4.0, "extra_shape": [2]}),
    ([np.array([2, 3], np.int64)], {"value": 1.5, "input_as_shape": 1, "extra_shape": [4]}),
])
def test_cuda_constant_fill_matches_cpu(inputs, args):
    check_devices("ConstantFill", inputs, args)


def test_constant_fill_strings_and_doubles_stay_off_the_gpu():
    """The CUDA launcher's refusal is a plain check (no GPU needed to see it)."""
    from pycaffe2.operators.fill import constant_fill_cuda
    with pytest.raises(ValueError, match="CUDA blob cannot hold float64"):
        constant_fill_cuda(shape=[2], extra_shape=None, input_as_shape=0, value=0.5, dtype=caffe2_pb2.TensorProto.DOUBLE)


def assert_moments(y, mean, std, tol=0.01):
    assert abs(float(y.mean()) - mean) < tol * max(std, 1e-3) * 3
    assert abs(float(y.std()) - std) < tol * std


def assert_uncorrelated(y):
    flat = y.reshape(-1).astype(np.float64)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01
    assert abs(np.corrcoef(flat[:-1024], flat[1024:])[0, 1]) < 0.01


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_uniform_fill_is_uniform_in_its_bounds():
    y = run_cuda("UniformFill", {"shape": BIG, "min": -2.0, "max": 3.0})
    assert y.shape == tuple(BIG) and y.dtype == np.float32
    assert y.min() >= -2.0 and y.max() <= 3.0
    assert_moments(y, 0.5, 5 / np.sqrt(12))
    counts, _ = np.histogram(y, bins=10, range=(-2.0, 3.0))
    np.testing.assert_allclose(counts / y.size, 0.1, atol=0.002)
    assert_uncorrelated(y)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_uniform_fill_bounds_from_inputs():
    y = run_cuda("UniformFill", {}, [np.zeros((4, 6), np.float32), np.array([1.0], np.float32),
                                     np.array([1.5], np.float32)])
    assert y.shape == (4, 6) and y.min() >= 1.0 and y.max() <= 1.5
    crossed = run_cuda("UniformFill", {}, [np.zeros((4, 6), np.float32), np.array([2.0], np.float32),
                                           np.array([1.0], np.float32)])
    assert crossed.shape == (0, 6)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_gaussian_fill_moments():
    y = run_cuda("GaussianFill", {"shape": BIG, "mean": 1.0, "std": 2.0})
    assert y.shape == tuple(BIG) and y.dtype == np.float32 and np.isfinite(y).all()
    assert_moments(y, 1.0, 2.0)
    assert abs(float(np.mean(np.abs(y - 1.0) < 2.0)) - 0.6827) < 0.003
    assert abs(float(np.mean(np.abs(y - 1.0) < 4.0)) - 0.9545) < 0.002
    assert_uncorrelated(y)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_xavier_and_msra_fill_scales():
    y = run_cuda("XavierFill", {"shape": BIG})
    scale = np.sqrt(3.0 / BIG[1])  # fan_in = size / dim 0
    assert y.shape == tuple(BIG) and -scale <= y.min() and y.max() <= scale
    assert_moments(y, 0.0, scale / np.sqrt(3))
    y = run_cuda("MSRAFill", {"shape": BIG[::-1]})
    assert y.shape == tuple(BIG[::-1])
    assert_moments(y, 0.0, np.sqrt(2.0 / BIG[1]))  # fan_out = size / dim 1


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["UniformFill", "GaussianFill", "XavierFill", "MSRAFill"])
@pytest.mark.parametrize("shape", [[3, 5, 7], [1, 1], [0, 4], [2, 1 << 19]])
def test_cuda_random_fills_shapes_and_seeds(op_type, shape):
    first = run_cuda(op_type, {"shape": shape}, seed=5)
    assert first.shape == tuple(shape) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(run_cuda(op_type, {"shape": shape}, seed=5), first)
    if first.size > 1:
        assert not np.array_equal(run_cuda(op_type, {"shape": shape}, seed=6), first)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_fill_shape_from_a_gpu_input():
    y = run_cuda("GaussianFill", {"input_as_shape": 1, "extra_shape": [3]}, [np.array([4, 2], np.int64)])
    assert y.shape == (4, 2, 3)
    assert run_cuda("XavierFill", {}, [np.zeros((6, 5), np.float32)]).shape == (6, 5)


# (inputs, args) of the shape modes every filler takes: shape arg, 0-d, empty, the
# input's shape with extra_shape, and the input's values (input_as_shape).
SHAPE_MODES = [
    ([], {"shape": [7]}),
    ([], {"shape": []}),
    ([], {"shape": [0, 3]}),
    ([np.zeros((2, 3), np.float32)], {"extra_shape": [2]}),
    ([np.array([2, 3], np.int64)], {"input_as_shape": 1, "extra_shape": [1]}),
]


def given_values(op_type, count):
    values = RNG.standard_normal(count)
    if op_type == "GivenTensorFill":
        return [float(v) for v in values]
    if op_type == "GivenTensorBoolFill":
        return [int(v > 0) for v in values]
    return [int(v * 1000) for v in values]


def shape_size(inputs, args) -> int:
    dims = (list(inputs[0]) if args.get("input_as_shape") else list(inputs[0].shape)) if inputs else []
    return int(np.prod(dims + args.get("shape", []) + args.get("extra_shape", [])))



@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("inputs, args", SHAPE_MODES + [([], {"shape": [3, 1 << 18]})], ids=str)
def test_cuda_range_fill_matches_cpu(inputs, args):
    check_devices("RangeFill", inputs, args, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("inputs, args", SHAPE_MODES, ids=str)
@pytest.mark.parametrize("op_type", ["GivenTensorFill", "GivenTensorInt16Fill", "GivenTensorIntFill",
                                     "GivenTensorInt64Fill", "GivenTensorBoolFill"])
def test_cuda_given_tensor_fills_match_cpu(op_type, inputs, args):
    values = given_values(op_type, shape_size(inputs, args))
    out = check_devices(op_type, inputs, {**args, "values": values}, atol=0, rtol=0)[0]
    assert out.dtype == run_op(op_type, inputs, {**args, "values": values})[0].dtype


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("dtype, values", [("FLOAT", [1.5, -2.0]), ("INT32", [3, -4]), ("INT64", [5, 1 << 40]),
                                           ("INT16", [7, -8]), ("BOOL", [1, 0])])
def test_cuda_given_tensor_fill_dtypes(dtype, values):
    out = check_devices("GivenTensorFill", [], {"shape": [2], "values": values, "dtype": dtype}, atol=0, rtol=0)[0]
    assert out.dtype == run_op("GivenTensorFill", [], {"shape": [2], "values": values, "dtype": dtype})[0].dtype


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_given_tensor_fill_refusals():
    with pytest.raises((OpFailure, NetError), match="CUDA blob cannot hold float64"):
        run_cuda("GivenTensorFill", {"shape": [2], "values": [1.0, 2.0], "dtype": "DOUBLE"})
    with pytest.raises((OpFailure, NetError), match="CUDA blob cannot hold object"):
        run_cuda("GivenTensorFill", {"shape": [1], "values": ["a"], "dtype": "STRING"})
    with pytest.raises((OpFailure, NetError), match="3 values cannot fill shape"):  # the CPU's check
        run_cuda("GivenTensorFill", {"shape": [2], "values": [1.0, 2.0, 3.0]})
    for op_type, values in (("GivenTensorDoubleFill", [1.0]), ("GivenTensorFp16Fill", [1.0]),
                            ("GivenTensorStringFill", ["a"])):  # CPU-only
        with pytest.raises(NetError, match=f"no CUDA kernel for {op_type}"):
            run_cuda(op_type, {"shape": [1], "values": values})


# --- UniformIntFill, DiagonalFill, LengthsRangeFill, Range -------------------------------------

def test_uniform_int_fill_bounds_and_shapes():
    (y,) = check_reference("UniformIntFill", [], lambda **_: None, {"shape": [400, 5], "min": -3, "max": 3})
    assert y.dtype == np.int32 and y.shape == (400, 5)
    assert set(np.unique(y)) == set(range(-3, 4))  # both bounds included, every value drawn
    shape, low, high = np.array([3, 2], np.int64), np.array([5], np.int32), np.array([7], np.int32)
    (y,) = check_reference("UniformIntFill", [shape, low, high], lambda *_, **__: None, {"input_as_shape": 1})
    assert y.shape == (3, 2) and ((y >= 5) & (y <= 7)).all()
    (y,) = run_op("UniformIntFill", [shape, high, low], {"input_as_shape": 1})
    assert y.shape == (0, 2) and y.dtype == np.int32  # crossed input bounds: an empty batch
    (y,) = run_op("UniformIntFill", [np.zeros((2, 4))], {"min": 4, "max": 4})
    assert (y == 4).all() and y.shape == (2, 4)


@pytest.mark.parametrize("args, inputs, message", [
    ({"shape": [2], "min": 3, "max": 1}, [], "min 3 is above max 1"),
    ({"input_as_shape": 1}, [np.array([2], np.int64), np.array([1, 2], np.int32), np.array([3], np.int32)],
     r"input min must hold one element, got \[2\]"),
])
def test_uniform_int_fill_errors(args, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("UniformIntFill", inputs, args)


def reference_diagonal(shape, value, dtype=np.float32):
    out = np.zeros(shape, dtype)
    np.fill_diagonal(out, value, wrap=True)
    return out


@pytest.mark.parametrize("args, inputs, expected", [
    ({"shape": [3, 3], "value": 2.5}, [], reference_diagonal((3, 3), 2.5)),
    ({"shape": [4, 4, 4], "value": 1.0}, [], reference_diagonal((4, 4, 4), 1.0)),
    ({"shape": [2, 4], "value": 3.0, "dtype": "INT32"}, [], reference_diagonal((2, 4), 3, np.int32)),
    ({"shape": [5, 2], "value": -1.0}, [], reference_diagonal((5, 2), -1.0)),  # tall: starts over
    ({"value": 7.0, "dtype": "DOUBLE"}, [np.zeros((2, 3))], reference_diagonal((2, 3), 7.0, np.float64)),
    ({"value": 1.0, "input_as_shape": 1}, [np.array([2, 0], np.int64)], np.zeros((2, 0), np.float32)),
])
def test_diagonal_fill(args, inputs, expected):
    check_fill("DiagonalFill", inputs, expected, args)


@pytest.mark.parametrize("args, message", [
    ({"shape": [3]}, r"needs a shape of at least 2 dims, got \[3\]"),
    ({"shape": [2, 2], "dtype": T.STRING}, "dtype STRING cannot hold a diagonal value"),
])
def test_diagonal_fill_errors(args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("DiagonalFill", [], args)
    with pytest.raises(ShapeError, match=message):
        infer_fill("DiagonalFill", [], **args)


@pytest.mark.parametrize("lengths", [[2, 0, 3], [], [0, 0], [1, 4]])
def test_lengths_range_fill(lengths):
    lengths = np.array(lengths, np.int32)
    expected = np.array([i for n in lengths for i in range(n)], np.int32)
    (y,) = check_reference("LengthsRangeFill", [lengths], lambda _: expected)
    assert y.dtype == np.int32


def test_lengths_range_fill_errors():
    with pytest.raises((OpFailure, NetError), match="lengths must be >= 0"):
        run_op("LengthsRangeFill", [np.array([2, -1], np.int32)])
    with pytest.raises((OpFailure, NetError), match=r"input lengths must be a 1-D int tensor, got \[2\] float32"):
        run_op("LengthsRangeFill", [np.array([2, 1], np.float32)])


@pytest.mark.parametrize("values, dtype", [
    ((10,), np.int64), ((10.0,), np.float32), ((0,), np.int32), ((0, 0), np.int64),
    ((10.0, 5.0, -1.0), np.float64), ((2, 10000), np.int32), ((2, 10000, 20000), np.int64),
    ((2, 10000, -1), np.int64), ((0.5, 2.0, 0.25), np.float32),
])
def test_range(values, dtype):
    inputs = [np.array(v, dtype) for v in values]
    expected = np.arange(*values).astype(dtype)
    (y,) = check_reference("Range", inputs, lambda *_: expected)
    assert y.dtype == dtype


@pytest.mark.parametrize("inputs, message", [
    ([np.array(0), np.array(10), np.array(0)], "Step size cannot be 0"),
    ([np.array([1, 2])], r"input stop must hold one element, got \[2\]"),
    ([np.array(0, np.int32), np.array(3, np.int64)], "inputs start, stop must share one type, got int32, int64"),
    ([np.array(True)], "input stop must be a number, got bool"),
    ([np.array(0), np.array(1 << 45), np.array(1)], r"the output would be \[35184372088832\] int64"),
    ([np.array(0.0), np.array(np.inf)], "give no finite length"),
])
def test_range_errors(inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("Range", inputs)


def test_new_fillers_inference():
    assert infer_fill("UniformIntFill", [], shape=[2, 3]) == [TensorInfo((2, 3), "int32")]
    assert infer_fill("DiagonalFill", [(2, 3)], dtype=T.INT64) == [TensorInfo((2, 3), "int64")]
    assert infer_fill("LengthsRangeFill", [TensorInfo((3,), "int32")]) == [None]
    assert infer_fill("Range", [TensorInfo((), "int32"), TensorInfo((1,), "int32")]) == [None]
    with pytest.raises(ShapeError, match="must share one type"):
        infer_fill("Range", [TensorInfo((), "int32"), TensorInfo((), "float32")])
    with pytest.raises(ShapeError, match="input lengths must be a 1-D int tensor"):
        infer_fill("LengthsRangeFill", [TensorInfo((3, 1), "int32")])


@pytest.mark.parametrize("op_type", ["ConstantFill", "GaussianFill", "RangeFill"])
def test_a_shape_read_from_values_is_checked_before_allocating(op_type):
    shape = np.array([1 << 20, 1 << 20, 1 << 10], np.int64)
    with pytest.raises((OpFailure, NetError), match=r"the output would be \[1048576, 1048576, 1024\]"):
        run_op(op_type, [shape], {"input_as_shape": 1})
