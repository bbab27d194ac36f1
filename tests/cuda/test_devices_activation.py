"""CUDA kernels of the activation family added beside test_devices.py's (activation.cu):
Selu, Softplus, Swish, PRelu and their gradients against their CPU twins (marked gpu)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
SHAPES = [(), (0, 3), (7,), (3, 5, 4), (300, 257)]  # the last: more than 64 blocks of 256
SELU = {"alpha": 1.3, "scale": 0.9}


def normal(shape):
    x = rng.uniform(-4, 4, shape).astype(np.float32)
    return np.where(np.abs(x) < 0.05, 0.3, x).astype(np.float32)  # away from the kink at 0


def gradient_inputs(forward, args, reads_x=False):
    """(Y, dY) or, for Swish, (X, Y, dY), made by running `forward` on the CPU."""
    def make(shape):
        x = normal(shape)
        y = run_op(forward, [x], args)[0]
        return ([x] if reads_x else []) + [y, normal(shape)]
    return make


# op type -> (inputs for a shape, args)
CASES = {
    "Selu": (lambda s: [normal(s)], SELU),
    "SeluGradient": (gradient_inputs("Selu", SELU), SELU),
    "Softplus": (lambda s: [normal(s) * 8], {}),
    "SoftplusGradient": (gradient_inputs("Softplus", {}), {}),
    "Swish": (lambda s: [normal(s)], {}),
    "SwishGradient": (gradient_inputs("Swish", {}, reads_x=True), {}),
}


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", ["Selu", "Softplus", "Swish"])
def test_special_values_match_cpu(op_type):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -100.0, 100.0, 20.0, -20.0], np.float32)
    with np.errstate(all="ignore"):
        check_devices(op_type, [x], SELU if op_type == "Selu" else {}, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
def test_selu_defaults_match_cpu():
    check_devices("Selu", [normal((5, 7))], {}, atol=1e-6, rtol=2e-6)


# (X shape, slope size, order): per channel and shared, both orders, empty batches,
# 0-d and 1-D X with a shared slope, and more channels than the emulator's 64 blocks.
PRELU_CASES = [
    ((2, 3, 5, 4), 3, "NCHW"), ((2, 3, 5, 4), 4, "NHWC"), ((2, 3, 5, 4), 1, "NCHW"),
    ((2, 3, 5, 4), 1, "NHWC"), ((3, 7), 7, "NCHW"), ((3, 7), 7, "NHWC"), ((5, 2, 9), 2, "NCHW"),
    ((0, 3, 4), 3, "NCHW"), ((0, 3, 4), 4, "NHWC"), ((), 1, "NCHW"), ((6,), 1, "NHWC"),
    ((2, 0, 3), 0, "NCHW"), ((4, 130, 3), 130, "NCHW"), ((4, 3, 130), 130, "NHWC"),
    ((70, 300), 1, "NCHW"),
]


def prelu_inputs(x_shape, slope_size):
    x, slope = normal(x_shape), rng.uniform(-0.5, 1, slope_size).astype(np.float32)
    return x, slope


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape, slope_size, order", PRELU_CASES, ids=str)
def test_prelu_matches_cpu(x_shape, slope_size, order):
    x, slope = prelu_inputs(x_shape, slope_size)
    check_devices("PRelu", [x, slope], {"order": order}, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape, slope_size, order", PRELU_CASES, ids=str)
def test_prelu_gradient_matches_cpu(x_shape, slope_size, order):
    x, slope = prelu_inputs(x_shape, slope_size)
    y = run_op("PRelu", [x, slope], {"order": order})[0]
    dy = normal(x_shape)
    # dSlope sums up to 21000 terms: NumPy's float32 pairwise sum against our double sum
    check_devices("PReluGradient", [y, dy, x, slope], {"order": order}, num_outputs=2,
                  atol=1e-3, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", ["PRelu", "PReluGradient"])
@pytest.mark.parametrize("x_shape, slope_size", [((2, 3, 4), 4), ((5,), 5)])
def test_a_slope_that_does_not_fit_gets_the_cpu_error(op_type, x_shape, slope_size):
    x, slope = prelu_inputs(x_shape, slope_size)
    inputs = [x, slope] if op_type == "PRelu" else [x, x, x, slope]
    cuda = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    for device_option in (None, cuda):
        with pytest.raises((OpFailure, NetError), match=f"{op_type}: Slope must have 1 or"):
            run_op(op_type, inputs, {}, num_outputs=len(inputs) // 2, device_option=device_option)


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(["PRelu", "PReluGradient"])
