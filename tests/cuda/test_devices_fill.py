"""CUDA fill kernels (marked gpu: skipped without a GPU and PyCUDA). ConstantFill
is deterministic, so it is checked against the CPU op; the random fills draw
from fill.cu's own generator, so they are checked for shape, dtype, bounds and
loose statistics over 1M samples, and for repeating under one random_seed."""
import numpy as np
import pytest

from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op
from tests.cuda import DEVICE_CHECKED

load_kernels()

# op type -> (inputs, args) of one representative run (the tests below cover more)
CASES = {
    "ConstantFill": ([], {"shape": [3, 5], "value": 2.5}),
    "UniformFill": ([], {"shape": [3, 5], "min": -2.0, "max": 3.0}),
    "GaussianFill": ([], {"shape": [3, 5], "mean": 1.0, "std": 2.0}),
    "XavierFill": ([], {"shape": [3, 5]}),
    "MSRAFill": ([], {"shape": [3, 5]}),
}
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
