"""CUDA fill kernels (marked gpu: skipped without a GPU and PyCUDA). ConstantFill
is deterministic, so it is checked against the CPU op; the random fills draw
from fill.cu's own generator, so they are checked for shape, dtype, bounds and
loose statistics over 1M samples, and for repeating under one random_seed."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
rng = np.random.default_rng(0)

# op type -> (inputs, args) of one representative run (the tests below cover more)
CASES = {
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
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
BIG = [1000, 1001]  # 1,001,000 samples


def run_cuda(op_type, args, inputs=(), seed=None) -> np.ndarray:
    option = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    if seed is not None:
        option.random_seed = seed
    return run_op(op_type, list(inputs), args, num_outputs=1, device_option=option)[0]


@pytest.mark.gpu
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
def test_cuda_uniform_fill_is_uniform_in_its_bounds():
    y = run_cuda("UniformFill", {"shape": BIG, "min": -2.0, "max": 3.0})
    assert y.shape == tuple(BIG) and y.dtype == np.float32
    assert y.min() >= -2.0 and y.max() <= 3.0
    assert_moments(y, 0.5, 5 / np.sqrt(12))
    counts, _ = np.histogram(y, bins=10, range=(-2.0, 3.0))
    np.testing.assert_allclose(counts / y.size, 0.1, atol=0.002)
    assert_uncorrelated(y)


@pytest.mark.gpu
def test_cuda_uniform_fill_bounds_from_inputs():
    y = run_cuda("UniformFill", {}, [np.zeros((4, 6), np.float32), np.array([1.0], np.float32),
                                     np.array([1.5], np.float32)])
    assert y.shape == (4, 6) and y.min() >= 1.0 and y.max() <= 1.5
    crossed = run_cuda("UniformFill", {}, [np.zeros((4, 6), np.float32), np.array([2.0], np.float32),
                                           np.array([1.0], np.float32)])
    assert crossed.shape == (0, 6)


@pytest.mark.gpu
def test_cuda_gaussian_fill_moments():
    y = run_cuda("GaussianFill", {"shape": BIG, "mean": 1.0, "std": 2.0})
    assert y.shape == tuple(BIG) and y.dtype == np.float32 and np.isfinite(y).all()
    assert_moments(y, 1.0, 2.0)
    assert abs(float(np.mean(np.abs(y - 1.0) < 2.0)) - 0.6827) < 0.003
    assert abs(float(np.mean(np.abs(y - 1.0) < 4.0)) - 0.9545) < 0.002
    assert_uncorrelated(y)


@pytest.mark.gpu
def test_cuda_xavier_and_msra_fill_scales():
    y = run_cuda("XavierFill", {"shape": BIG})
    scale = np.sqrt(3.0 / BIG[1])  # fan_in = size / dim 0
    assert y.shape == tuple(BIG) and -scale <= y.min() and y.max() <= scale
    assert_moments(y, 0.0, scale / np.sqrt(3))
    y = run_cuda("MSRAFill", {"shape": BIG[::-1]})
    assert y.shape == tuple(BIG[::-1])
    assert_moments(y, 0.0, np.sqrt(2.0 / BIG[1]))  # fan_out = size / dim 1


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", ["UniformFill", "GaussianFill", "XavierFill", "MSRAFill"])
@pytest.mark.parametrize("shape", [[3, 5, 7], [1, 1], [0, 4], [2, 1 << 19]])
def test_cuda_random_fills_shapes_and_seeds(op_type, shape):
    first = run_cuda(op_type, {"shape": shape}, seed=5)
    assert first.shape == tuple(shape) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(run_cuda(op_type, {"shape": shape}, seed=5), first)
    if first.size > 1:
        assert not np.array_equal(run_cuda(op_type, {"shape": shape}, seed=6), first)


@pytest.mark.gpu
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
    values = rng.standard_normal(count)
    if op_type == "GivenTensorFill":
        return [float(v) for v in values]
    if op_type == "GivenTensorBoolFill":
        return [int(v > 0) for v in values]
    return [int(v * 1000) for v in values]


def shape_size(inputs, args) -> int:
    dims = (list(inputs[0]) if args.get("input_as_shape") else list(inputs[0].shape)) if inputs else []
    return int(np.prod(dims + args.get("shape", []) + args.get("extra_shape", [])))



@pytest.mark.gpu
@pytest.mark.parametrize("inputs, args", SHAPE_MODES + [([], {"shape": [3, 1 << 18]})], ids=str)
def test_cuda_range_fill_matches_cpu(inputs, args):
    check_devices("RangeFill", inputs, args, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("inputs, args", SHAPE_MODES, ids=str)
@pytest.mark.parametrize("op_type", ["GivenTensorFill", "GivenTensorIntFill", "GivenTensorInt64Fill",
                                     "GivenTensorBoolFill"])
def test_cuda_given_tensor_fills_match_cpu(op_type, inputs, args):
    values = given_values(op_type, shape_size(inputs, args))
    out = check_devices(op_type, inputs, {**args, "values": values}, atol=0, rtol=0)[0]
    assert out.dtype == run_op(op_type, inputs, {**args, "values": values})[0].dtype


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, values", [("FLOAT", [1.5, -2.0]), ("INT32", [3, -4]), ("INT64", [5, 1 << 40]),
                                           ("INT16", [7, -8]), ("BOOL", [1, 0])])
def test_cuda_given_tensor_fill_dtypes(dtype, values):
    out = check_devices("GivenTensorFill", [], {"shape": [2], "values": values, "dtype": dtype}, atol=0, rtol=0)[0]
    assert out.dtype == run_op("GivenTensorFill", [], {"shape": [2], "values": values, "dtype": dtype})[0].dtype


@pytest.mark.gpu
def test_cuda_given_tensor_fill_refusals():
    with pytest.raises((OpFailure, NetError), match="CUDA blob cannot hold float64"):
        run_cuda("GivenTensorFill", {"shape": [2], "values": [1.0, 2.0], "dtype": "DOUBLE"})
    with pytest.raises((OpFailure, NetError), match="CUDA blob cannot hold object"):
        run_cuda("GivenTensorFill", {"shape": [1], "values": ["a"], "dtype": "STRING"})
    with pytest.raises((OpFailure, NetError), match="3 values cannot fill shape"):  # the CPU's check
        run_cuda("GivenTensorFill", {"shape": [2], "values": [1.0, 2.0, 3.0]})
    for op_type, values in (("GivenTensorDoubleFill", [1.0]), ("GivenTensorStringFill", ["a"])):  # CPU-only
        with pytest.raises(NetError, match=f"no CUDA kernel for {op_type}"):
            run_cuda(op_type, {"shape": [1], "values": values})
