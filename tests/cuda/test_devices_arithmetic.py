"""CUDA kernels of the arithmetic family (arithmetic.cu) against their CPU twins (marked gpu):
same-shape ops, every broadcasting layout (NumPy-style and legacy broadcast=1) forward and
backward, the variadic ops and their gradients."""
import numpy as np
import pytest

from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
SHAPES = [(1,), (7,), (3, 5, 4), (1 << 20,), (1000, 1025)]
BINARY = ["Add", "Sub", "Mul", "Div"]
# Gradients of operands of one shape sum nothing.
SUMS = {"atol": 1e-5, "rtol": 1e-5}


def normal(shape):
    return rng.standard_normal(shape).astype(np.float32)


def divisor(shape):  # |B| in [1, 2]: no blow-up in A / B or its gradient
    return (rng.uniform(1, 2, shape) * rng.choice([-1, 1], shape)).astype(np.float32)


def sums(c_shape, *operand_shapes):
    """Tolerances for sums down to the operands: the CPU adds n terms in float32 (an error
    up to ~n ulps of the running sum, ~sqrt(n)), the GPU in double."""
    terms = max(1, int(np.prod(c_shape)) // min(int(np.prod(s)) for s in operand_shapes))
    return {"atol": 1e-5 + 2e-7 * terms, "rtol": 1e-4}


def binary_inputs(a_shape, b_shape):
    return [normal(a_shape), divisor(b_shape)]


def gradient_inputs(forward, a_shape, b_shape, args=None):
    """(dC, A, B) of the forward op, plus C for Div."""
    a, b = binary_inputs(a_shape, b_shape)
    c = run_op(forward, [a, b], args)[0]
    return [normal(c.shape), a, b] + ([c] if forward == "Div" else [])


# op type -> (inputs for a shape, args); the binary ops here with operands of one shape
CASES = {t: ((lambda s: binary_inputs(s, s)), {}) for t in BINARY}
CASES.update({t + "Gradient": ((lambda s, t=t: gradient_inputs(t, s, s)), {}) for t in BINARY})
CASES.update({
    "Sum": (lambda s: [normal(s) for _ in range(3)], {}),
    "Mean": (lambda s: [normal(s) for _ in range(3)], {}),
    "Max": (lambda s: [normal(s) for _ in range(3)], {}),
    "Min": (lambda s: [normal(s) for _ in range(3)], {}),
    "SumReduceLike": (lambda s: [normal(s), normal(s)], {}),
})
VARIADIC_GRADIENTS = ["MeanGradient", "MaxGradient", "MinGradient"]  # test_variadic_gradients
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(VARIADIC_GRADIENTS)

# (A's shape, B's shape, args): B (or A) broadcast over C, C's shape from both
BROADCASTS = [
    ((3, 5, 4), (4,), {}),
    ((3, 5, 4), (5, 1), {}),
    ((3, 1, 4), (1, 5, 1), {}),  # both operands broadcast
    ((1, 5, 1), (3, 5, 4), {}),  # A broadcasts
    ((3, 5, 4), (), {}),
    ((2, 3, 7, 11), (3, 1, 11), {}),
    ((512, 2049), (2049,), {}),  # ~1M: a bias, 512 terms per sum
    ((1025, 1024), (1025, 1), {}),  # ~1M: rows summed
    ((5, 300001), (300001,), {}),  # many short sums
    ((64, 16, 33, 31), (16, 1, 1), {}),  # ~1M: NCHW channels
    ((2, 3, 4, 5), (3, 4), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis_str": "C"}),
    ((2, 4, 5, 3), (3,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3, 4, 5), (1,), {"broadcast": 1}),
    ((2, 3, 4, 5), (4, 5), {"broadcast": 1}),
    ((2, 3, 4, 5), (3, 1), {"broadcast": 1, "axis": 1}),
    ((64, 17, 31, 31), (17,), {"broadcast": 1, "axis": 1}),  # ~1M
]
IDS = [f"{a}-{b}-{'legacy' if args else 'numpy'}" for a, b, args in BROADCASTS]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    outputs = 2 if op_type.endswith("Gradient") else None
    tolerance = SUMS if outputs else {"atol": 1e-6, "rtol": 1e-6}
    check_devices(op_type, make_inputs(shape), args, outputs, **tolerance)


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS, ids=IDS)
@pytest.mark.parametrize("op_type", BINARY)
def test_broadcasting_forward(op_type, a_shape, b_shape, args):
    check_devices(op_type, binary_inputs(a_shape, b_shape), args, atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS, ids=IDS)
@pytest.mark.parametrize("op_type", BINARY)
def test_broadcasting_gradient(op_type, a_shape, b_shape, args):
    inputs = gradient_inputs(op_type, a_shape, b_shape, args)
    check_devices(op_type + "Gradient", inputs, args, 2, **sums(inputs[0].shape, a_shape, b_shape))


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", [(s, s, {}) for s in SHAPES] + BROADCASTS[10:],
                         ids=str)
def test_div_gradient_older_three_input_form(a_shape, b_shape, args):
    d_c, _, b, c = gradient_inputs("Div", a_shape, b_shape, args)
    check_devices("DivGradient", [b, c, d_c], args, 2, **sums(c.shape, b_shape))


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS[10:], ids=IDS[10:])
def test_sum_reduce_like(a_shape, b_shape, args):
    args = {k: v for k, v in args.items() if k != "broadcast"}
    check_devices("SumReduceLike", [normal(a_shape), normal(b_shape)], args, **sums(a_shape, b_shape))


@pytest.mark.gpu
@pytest.mark.parametrize("count", [1, 2, 5])
@pytest.mark.parametrize("shape", [(7,), (1 << 20,)], ids=str)
@pytest.mark.parametrize("op_type", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op_type, shape, count):
    check_devices(op_type, [normal(shape) for _ in range(count)], atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (1 << 20,)], ids=str)
@pytest.mark.parametrize("op_type", VARIADIC_GRADIENTS)
def test_variadic_gradients(op_type, shape, count):
    if op_type == "MeanGradient":
        inputs = [normal(shape)]
    else:
        xs = [np.round(normal(shape)) for _ in range(count)]  # ties: each receives dY
        y = run_op(op_type.replace("Gradient", ""), xs)[0]
        inputs = [y, normal(shape)] + xs
    check_devices(op_type, inputs, num_outputs=count, atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
def test_nan_propagates_through_max_and_min():
    xs = [np.array([np.nan, 1, 2], np.float32), np.array([0, np.nan, 3], np.float32)]
    check_devices("Max", xs)
    check_devices("Min", xs)


@pytest.mark.gpu
def test_integer_operands_are_refused_clearly():
    with pytest.raises(Exception, match="Add: the CUDA kernel takes float32, got int32"):
        check_devices("Add", [np.arange(4, dtype=np.int32)] * 2)
