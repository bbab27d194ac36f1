"""CUDA kernels of the nn family (nn.cu) against their CPU twins (marked gpu).
Dropout's CUDA mask comes from its own RNG, so it is checked by its statistics."""
import numpy as np
import pytest

from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op
from tests.cuda import many_rows

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
# Odd sizes, more rows than the emulator's grid has blocks, one huge row, and more rows
# than a real grid has blocks (65535).
SHAPES = [(1, 1), (3, 7), (2, 3, 5), (5, 1000), (300, 3), (1, 1 << 20), many_rows(((1 << 20) // 3 + 1, 3))]


def logits(shape):
    return rng.uniform(-20, 20, shape).astype(np.float32)  # large enough to need the max shift


def forward_then_gradient(forward):
    """(Y, dY): Y from the CPU forward op."""
    def make(shape):
        return [run_op(forward, [logits(shape)])[0], rng.standard_normal(shape).astype(np.float32)]
    return make


def dropout_grad_inputs(shape):
    mask = rng.random(shape) >= 0.4
    return [rng.standard_normal(shape).astype(np.float32), mask]


# op type -> (inputs for a shape, args)
CASES = {
    "Softmax": (lambda s: [logits(s)], {}),
    "LogSoftmax": (lambda s: [logits(s)], {}),
    "SoftmaxGradient": (forward_then_gradient("Softmax"), {}),
    "LogSoftmaxGradient": (forward_then_gradient("LogSoftmax"), {}),
    "DropoutGrad": (dropout_grad_inputs, {"ratio": 0.4}),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.add("Dropout")  # test_dropout_* below


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("axis", [0, 2, -1])
@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_axis(op_type, axis):
    make_inputs, _ = CASES[op_type]
    check_devices(op_type, make_inputs((4, 3, 33)), {"axis": axis}, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
def test_softmax_of_extreme_rows():
    x = np.array([[1e30, -1e30, 0.0], [88.0, 88.0, -88.0], [-np.inf, 0.0, 1.0]], np.float32)
    for op_type in ("Softmax", "LogSoftmax"):
        check_devices(op_type, [x], atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
def test_dropout_grad_in_test_mode_passes_dy():
    check_devices("DropoutGrad", [rng.standard_normal((5, 7)).astype(np.float32)], {"is_test": 1})


def run_cuda(op_type, inputs, args, num_outputs, seed=None):
    option = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    if seed is not None:
        option.random_seed = seed
    return run_op(op_type, list(inputs), args, num_outputs=num_outputs, device_option=option)


@pytest.mark.gpu
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.75, 1.0])
def test_dropout_keeps_one_minus_ratio_scaled(ratio):
    x = rng.uniform(0.5, 2.0, (1 << 20) + 3).astype(np.float32)  # nonzero: kept means y != 0
    y, mask = run_cuda("Dropout", [x], {"ratio": ratio}, 2)
    assert mask.dtype == np.bool_ and mask.shape == x.shape
    keep = 1.0 - ratio
    assert abs(mask.mean() - keep) <= 5 * np.sqrt(keep * ratio / x.size) + 1e-12
    scale = np.float32(0.0 if ratio >= 1 else 1.0 / (1.0 - ratio))
    np.testing.assert_array_equal(y[mask], x[mask] * scale)
    np.testing.assert_array_equal(y[~mask], 0)
    # The mask looks random: no long runs, halves alike.
    if 0 < ratio < 1:
        half = x.size // 2
        assert abs(mask[:half].mean() - mask[half:].mean()) < 0.01


@pytest.mark.gpu
def test_dropout_seeds():
    x = np.ones(4099, np.float32)
    first, again = (run_cuda("Dropout", [x], {"ratio": 0.5}, 2, seed=7)[1] for _ in range(2))
    other = run_cuda("Dropout", [x], {"ratio": 0.5}, 2, seed=8)[1]
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.4


@pytest.mark.gpu
def test_dropout_in_test_mode_is_the_identity():
    x = rng.standard_normal((3, 1001)).astype(np.float32)
    y, mask = run_cuda("Dropout", [x], {"ratio": 0.5, "is_test": 1}, 2)
    np.testing.assert_array_equal(y, x)
    assert mask.all() and mask.shape == x.shape
    (y,) = run_cuda("Dropout", [x], {"ratio": 0.5, "is_test": 1}, 1)
    np.testing.assert_array_equal(y, x)


@pytest.mark.gpu
def test_dropout_grad_reads_the_cuda_mask():
    x = rng.standard_normal((7, 513)).astype(np.float32)
    _, mask = run_cuda("Dropout", [x], {"ratio": 0.3}, 2)
    check_devices("DropoutGrad", [rng.standard_normal(x.shape).astype(np.float32), mask], {"ratio": 0.3})
