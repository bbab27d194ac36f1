"""Fill family: deterministic fillers against NumPy, random fillers by their
moments and bounds, and reproducibility from device_option.random_seed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import make_argument
from pycaffe2.testing import check_reference, make_op, run_op

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
    ("GivenTensorIntFill", {}, [1, -2, 3, 2**31 - 1], np.int32),
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


def test_given_tensor_fill_count_checked_at_run_time():
    with pytest.raises((OpFailure, NetError), match=r"3 values cannot fill shape \[2, 2\] \(4 elements\)"):
        run_op("GivenTensorFill", [np.zeros((2, 2))], {"values": [1.0, 2.0, 3.0]})


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
    ("ConstantFill", {"shape": [2]}, [np.zeros(2)], r"give the shape \[2\] or an input, not both"),
    ("GaussianFill", {"extra_shape": [3]}, [], r"extra_shape \[3\] needs an input"),
    ("RangeFill", {"input_as_shape": 1}, [], "input_as_shape=1 needs an input"),
    ("UniformFill", {"input_as_shape": 1}, [np.array([2.0, 3.0])],
     r"1-D int64 tensor, got \[2\] float64"),
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
def test_fill_errors(op_type, args, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)
