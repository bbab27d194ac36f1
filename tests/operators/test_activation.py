"""Activation family: each op and gradient op against its NumPy reference (on the CPU,
and on CUDA for the kernels tests/cuda/test_devices.py does not check), the gradient ops
of those CUDA kernels against their CPU twins, PRelu's slope checks on both devices and
in inference, and the registered gradients against central differences."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def sig(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


# (type, args, reference(x, **args)): forward ops of one input.
FORWARD = [
    ("Relu", {}, lambda x: np.maximum(x, 0)),
    ("LeakyRelu", {"alpha": 0.3}, lambda x, alpha: np.where(x >= 0, x, alpha * x)),
    ("Sigmoid", {}, sig),
    ("Tanh", {}, np.tanh),
    ("Elu", {"alpha": 0.7}, lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1))),
    ("Selu", {}, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))),
    ("Softplus", {}, lambda x: np.log1p(np.exp(x.astype(np.float64)))),
    ("Softsign", {}, lambda x: x / (1 + np.abs(x))),
    ("Swish", {}, lambda x: x * sig(x)),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, lambda x, alpha, beta: np.clip(alpha * x + beta, 0, 1)),
    ("HardSigmoid", {}, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
]
ERF = np.vectorize(math.erf, otypes=[np.float64])
# Forward ops without a CUDA kernel (CPU rows only).
CPU_FORWARD = [
    ("Gelu", {}, lambda x: x * 0.5 * (1 + ERF(x / math.sqrt(2)))),
    ("Gelu", {"fast_gelu": 1},
     lambda x, fast_gelu: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    ("ReluN", {}, lambda x: np.clip(x, 0, 6)),
    ("ReluN", {"n": 1.5}, lambda x, n: np.clip(x, 0, n)),
    ("Swish", {"alpha": 0.5}, lambda x, alpha: x * sig(alpha * x)),
]

# (gradient type, forward reference y(x), reference dx(x, y, dy), inputs(x, y, dy), args)
GRADIENT = [
    ("ReluGradient", lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (x > 0), lambda x, y, dy: [y, dy], {}),
    ("LeakyReluGradient", lambda x: np.where(x >= 0, x, 0.3 * x),
     lambda x, y, dy: np.where(x >= 0, dy, 0.3 * dy), lambda x, y, dy: [y, dy], {"alpha": 0.3}),
    ("SigmoidGradient", sig, lambda x, y, dy: dy * y * (1 - y), lambda x, y, dy: [y, dy], {}),
    ("TanhGradient", np.tanh, lambda x, y, dy: dy * (1 - np.tanh(x) ** 2), lambda x, y, dy: [y, dy], {}),
    ("EluGradient", lambda x: np.where(x > 0, x, np.exp(x) - 1),
     lambda x, y, dy: np.where(x > 0, dy, dy * np.exp(x)), lambda x, y, dy: [y, dy], {}),
    ("SeluGradient", lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
     lambda x, y, dy: SELU_SCALE * np.where(x > 0, dy, dy * SELU_ALPHA * np.exp(x)),
     lambda x, y, dy: [y, dy], {}),
    ("SoftplusGradient", lambda x: np.log1p(np.exp(x)), lambda x, y, dy: dy * sig(x),
     lambda x, y, dy: [y, dy], {}),
    ("SoftsignGradient", lambda x: x, lambda x, y, dy: dy / (1 + np.abs(x)) ** 2,
     lambda x, y, dy: [x, dy], {}),
    ("SwishGradient", lambda x: x * sig(x), lambda x, y, dy: dy * (sig(x) + x * sig(x) * (1 - sig(x))),
     lambda x, y, dy: [x, y, dy], {}),
    ("HardSigmoidGradient", lambda x: np.clip(0.2 * x + 0.5, 0, 1),
     lambda x, y, dy: np.where(np.abs(x) < 2.5, 0.2 * dy, 0), lambda x, y, dy: [y, dy], {}),
    ("ReluNGradient", lambda x: np.clip(x, 0, 1.5), lambda x, y, dy: np.where((x > 0) & (x < 1.5), dy, 0),
     lambda x, y, dy: [y, dy], {"n": 1.5}),
    ("GeluGradient", lambda x: x, lambda x, y, dy: dy * (
        0.5 * (1 + ERF(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
     lambda x, y, dy: [dy, x], {}),
    ("SwishGradient", lambda x: x * sig(0.5 * x),
     lambda x, y, dy: dy * (sig(0.5 * x) + 0.5 * x * sig(0.5 * x) * (1 - sig(0.5 * x))),
     lambda x, y, dy: [x, y, dy], {"alpha": 0.5}),
]

arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                    elements=st.floats(-3, 3, width=32))


def away_from_kinks(x):
    """Move values off the points where these functions have corners (0, HardSigmoid's +-2.5)."""
    x = np.where(np.abs(x) < 1e-2, 0.05, x)
    return np.where(np.abs(np.abs(x) - 2.5) < 1e-2, 2.0, x).astype(np.float32)


@pytest.mark.parametrize("op_type, args, reference", FORWARD + CPU_FORWARD,
                         ids=[f[0] for f in FORWARD + CPU_FORWARD])
@settings(max_examples=15, deadline=None)
@given(x=arrays)
def test_forward_matches_reference(op_type, args, reference, x):
    (y,) = check_reference(op_type, [x], reference, args)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type, forward, reference, inputs, args", GRADIENT, ids=[g[0] for g in GRADIENT])
@settings(max_examples=15, deadline=None)
@given(x=arrays, seed=st.integers(0, 2**16))
def test_gradient_kernel_matches_reference(op_type, forward, reference, inputs, args, x, seed):
    x = away_from_kinks(x)
    y = forward(x).astype(np.float32)
    dy = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    check_reference(op_type, inputs(x, y, dy), lambda *_, **__: reference(x, y, dy), args)


# (X shape, slope size, order): per channel and shared, both orders, empty batches,
# 0-d and 1-D X with a shared slope, and more channels than the emulator's 64 blocks.
PRELU_CASES = [
    ((2, 3, 5, 4), 3, "NCHW"), ((2, 3, 5, 4), 4, "NHWC"), ((2, 3, 5, 4), 1, "NCHW"),
    ((2, 3, 5, 4), 1, "NHWC"), ((3, 7), 7, "NCHW"), ((3, 7), 7, "NHWC"), ((5, 2, 9), 2, "NCHW"),
    ((0, 3, 4), 3, "NCHW"), ((0, 3, 4), 4, "NHWC"), ((), 1, "NCHW"), ((6,), 1, "NHWC"),
    ((2, 0, 3), 0, "NCHW"), ((4, 130, 3), 130, "NCHW"), ((4, 3, 130), 130, "NHWC"),
    ((70, 300), 1, "NCHW"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, slope_size, order", PRELU_CASES, ids=str)
def test_prelu_and_gradient(x_shape, slope_size, order, device):
    rng = np.random.default_rng(0)
    x = away_from_kinks(rng.uniform(-4, 4, x_shape).astype(np.float32))
    slope = rng.uniform(-0.5, 1, slope_size).astype(np.float32)
    axis = 1 if order == "NCHW" else len(x_shape) - 1
    view = slope.reshape([-1 if a == axis and slope.size != 1 else 1 for a in range(len(x_shape))])
    reference = lambda x, s, order: np.where(x >= 0, x, view * x)
    (y,) = check_reference("PRelu", [x, slope], reference, {"order": order}, atol=1e-6, rtol=2e-6,
                           device=device)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    sum_axes = tuple(a for a in range(len(x_shape)) if a != axis) if slope.size != 1 else None
    dslope = np.where(x >= 0, 0, x.astype(np.float64) * dy).sum(axis=sum_axes).reshape(slope.shape)
    # dSlope sums up to 21000 terms in float32 on the CPU
    check_reference("PReluGradient", [y, dy, x, slope],
                    lambda *_, **__: (np.where(x >= 0, dy, view * dy), dslope), {"order": order},
                    atol=1e-3, rtol=1e-5, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type", ["PRelu", "PReluGradient"])
@pytest.mark.parametrize("x_shape, slope_size, channels", [((2, 3, 4), 4, 3), ((5,), 5, 1)])
def test_a_slope_that_does_not_fit_is_refused(op_type, x_shape, slope_size, channels, device):
    """Inference and both kernels give one message."""
    x, slope = np.ones(x_shape, np.float32), np.ones(slope_size, np.float32)
    inputs = [x, slope] if op_type == "PRelu" else [x, x, x, slope]
    message = re.escape(f"Slope must have 1 or {channels} values (X {list(x_shape)}'s channels, order NCHW), "
                        f"got [{slope_size}]")
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [v.shape for v in inputs], len(inputs) // 2)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\) failed: {message}"):
        run_op(op_type, inputs, {}, num_outputs=len(inputs) // 2, device_option=device_option(device))


@pytest.mark.parametrize("device", DEVICES)
def test_prelu_gradient_needs_dy_of_x_shape(device):
    x, slope = np.ones((2, 3), np.float32), np.ones(1, np.float32)
    message = r"dY is \[2, 2\] but X is \[2, 3\]: they must have the same shape"
    with pytest.raises(ShapeError, match=message):
        infer("PReluGradient", [(2, 3), (2, 2), (2, 3), (1,)], 2)
    with pytest.raises(OpFailure, match=rf"\(PReluGradient\) failed: {message}"):
        run_op("PReluGradient", [x, x[:, :2], x, slope], num_outputs=2, device_option=device_option(device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, names", [("ReluGradient", ("Y", "dY")), ("TanhGradient", ("Y", "dY")),
                                            ("SoftsignGradient", ("X", "dY")),
                                            ("SwishGradient", ("X", "Y", "dY"))])
def test_gradient_inputs_pair_element_by_element(op_type, names, device):
    """A dY with another number of elements is refused by validate and on both devices in
    the same words (NumPy would broadcast it silently); one of another shape but as many
    elements is taken in X's shape, as Caffe2 does."""
    shapes = [(2, 3)] * (len(names) - 1) + [(3,)]
    listed = ", ".join(f"{name} {list(shape)}" for name, shape in zip(names, shapes))
    message = re.escape(f"{listed}: these must hold the same number of elements")
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes)
    inputs = [np.ones(shape, np.float32) for shape in shapes]
    with pytest.raises(OpFailure, match=rf"\({op_type}\) failed: {message}"):
        run_op(op_type, inputs, device_option=device_option(device))
    flat = [np.full((2, 3), 0.5, np.float32)] * (len(names) - 1) + [np.arange(6, dtype=np.float32)]
    (got,) = run_op(op_type, flat, device_option=device_option(device))
    (expected,) = run_op(op_type, flat[:-1] + [flat[-1].reshape(2, 3)])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_hard_sigmoid_takes_float_only():
    with pytest.raises(ShapeError, match="input 0 must be float, got int32"):
        infer("HardSigmoid", [(3,)], dtype="int32")
    with pytest.raises(OpFailure, match=r"\(HardSigmoid\) failed: input 0 must be float, got int32"):
        run_op("HardSigmoid", [np.arange(3, dtype=np.int32)])


def test_float64_keeps_its_dtype():
    x = np.linspace(-2, 2, 7)
    (y,) = check_reference("HardSigmoid", [x], lambda x: np.clip(0.2 * x + 0.5, 0, 1))
    assert y.dtype == np.float64


def test_gelu_and_relu_n_gradient_ops():
    """Against numeric differentiation of their forward ops, with Caffe2's input order."""
    x = away_from_kinks(np.random.default_rng(7).uniform(-3, 3, (3, 4))).astype(np.float32)
    x = np.where(np.abs(x - 1.5) < 0.05, 1.7, x).astype(np.float32)
    dy = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    for args in ({}, {"fast_gelu": 1}):
        check_gradient_op("Gelu", [x], "GeluGradient", [dy, x], {0: 0}, [dy], args)
    y = run_op("ReluN", [x], {"n": 1.5})[0]
    check_gradient_op("ReluN", [x], "ReluNGradient", [y, dy], {0: 0}, [dy], {"n": 1.5})


def test_gelu_and_relu_n_checks():
    for shape in [(), (0, 3)]:
        x = np.full(shape, 0.5, np.float32)
        for op_type, args, reference in CPU_FORWARD:
            check_reference(op_type, [x], reference, args)
    with pytest.raises(OpFailure, match="int32"):
        run_op("Gelu", [np.ones(3, np.int32)])
    with pytest.raises(OpFailure, match=r"dY \[2\], X \[3\]: these must hold the same number of elements"):
        run_op("GeluGradient", [np.ones(2, np.float32), np.ones(3, np.float32)])
    with pytest.raises(NetError, match="n"):
        run_op("ReluN", [np.ones(3, np.float32)], {"n": 0.0})
    assert infer("ReluNGradient", [(2, 3), (2, 3)]) == infer("Gelu", [(2, 3)])
    with pytest.raises(ShapeError, match="int64"):
        infer("ReluN", [(2,)], dtype="int64")


# Gradient makers: the registered gradient of each op against central differences.
MAKER_CASES = [("Relu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Sigmoid", {}), ("Tanh", {}),
               ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Softplus", {}), ("Softsign", {}), ("Swish", {}),
               ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
               ("Gelu", {}), ("Gelu", {"fast_gelu": 1}), ("ReluN", {}), ("ReluN", {"n": 1.5}),
               ("Swish", {"alpha": 1.7})]


@pytest.mark.parametrize("op_type, args", MAKER_CASES, ids=[f"{c[0]}-{c[1]}" for c in MAKER_CASES])
@settings(max_examples=8, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=st.floats(-3, 3)))
def test_registered_gradient_matches_numeric(op_type, args, x):
    x = away_from_kinks(x).astype(np.float64)
    if op_type == "HardSigmoid":  # corners at (0 - beta) / alpha and (1 - beta) / alpha
        alpha, beta = args.get("alpha", 0.2), args.get("beta", 0.5)
        for corner in (-beta / alpha, (1 - beta) / alpha):
            x = np.where(np.abs(x - corner) < 0.05, corner + 0.2, x)
    if op_type == "ReluN":  # a corner at n as well
        n = args.get("n", 6.0)
        x = np.where(np.abs(x - n) < 0.05, n + 0.2, x)
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("order, slope", [("NCHW", [0.2, 0.3, 0.4]), ("NHWC", [0.1, 0.5]), ("NCHW", [0.25])])
def test_prelu_registered_gradient(order, slope, input_to_check):
    x = away_from_kinks(np.random.default_rng(3).standard_normal((2, 3, 2, 2) if order == "NCHW" else (2, 2, 2, 2)))
    report = check_op_gradient(make_op("PRelu", ["X", "S"], ["Y"], {"order": order}),
                               [x.astype(np.float64), np.array(slope)], input_to_check)
    assert report.ok, report


# ---- CUDA kernels that tests/cuda/test_devices.py does not check ----------------------------

SHAPES = [(), (0, 3), (7,), (3, 5, 4), (300, 257)]  # the last: more than 64 blocks of 256
SELU = {"alpha": 1.3, "scale": 0.9}
rng = np.random.default_rng(0)


def normal(shape):
    x = rng.uniform(-4, 4, shape).astype(np.float32)
    return np.where(np.abs(x) < 0.05, 0.3, x).astype(np.float32)  # away from the kink at 0


# Forward ops against FORWARD's references on both devices (Selu with its defaults and others).
DEVICE_FORWARD = [("Selu", SELU, lambda x, alpha, scale: scale * np.where(x > 0, x, alpha * np.expm1(x))),
                  *FORWARD]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type, args, reference", DEVICE_FORWARD, ids=[f"{f[0]}-{f[1]}" for f in DEVICE_FORWARD])
def test_forward_on_each_device(op_type, args, reference, shape, device):
    x = normal(shape) * (8 if op_type == "Softplus" else 1)
    check_reference(op_type, [x], lambda x, **a: reference(x.astype(np.float64), **a), args,
                    atol=1e-5, rtol=1e-5, device=device)


def gradient_inputs(forward, args, reads_x=False):
    """(Y, dY) or, for Swish, (X, Y, dY), made by running `forward` on the CPU."""
    def make(shape):
        x = normal(shape)
        y = run_op(forward, [x], args)[0]
        return ([x] if reads_x else []) + [y, normal(shape)]
    return make


# gradient op -> (inputs for a shape, args): CUDA against the CPU twin
GRADIENT_CASES = {
    "ReluGradient": (gradient_inputs("Relu", {}), {}),
    "LeakyReluGradient": (gradient_inputs("LeakyRelu", {"alpha": 0.3}), {"alpha": 0.3}),
    "SigmoidGradient": (gradient_inputs("Sigmoid", {}), {}),
    "TanhGradient": (gradient_inputs("Tanh", {}), {}),
    "EluGradient": (gradient_inputs("Elu", {"alpha": 0.7}), {"alpha": 0.7}),
    "SoftsignGradient": (lambda shape: [normal(shape), normal(shape)], {}),  # (X, dY)
    "HardSigmoidGradient": (gradient_inputs("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), {"alpha": 0.3}),
    "SeluGradient": (gradient_inputs("Selu", SELU), SELU),
    "SoftplusGradient": (gradient_inputs("Softplus", {}), {}),
    "SwishGradient": (gradient_inputs("Swish", {}, reads_x=True), {}),
}


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(GRADIENT_CASES))
def test_cuda_gradient_kernel_matches_cpu(op_type, shape):
    make_inputs, args = GRADIENT_CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["Selu", "Softplus", "Swish"])
def test_special_values_match_cpu(op_type):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -100.0, 100.0, 20.0, -20.0], np.float32)
    with np.errstate(all="ignore"):
        check_devices(op_type, [x], SELU if op_type == "Selu" else {}, atol=1e-6, rtol=2e-6)


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = {f[0] for f in DEVICE_FORWARD} | set(GRADIENT_CASES) | {"PRelu", "PReluGradient"}


@pytest.mark.parametrize("shape", [(0,), (3,), (2, 8192), (3, 8192 + 5), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_row_blocks_match_maximum(shape, dtype):
    """Relu compares rows of 8192 elements with a block of zeros, the rest apart: every split
    agrees with np.maximum, NaN and infinities included; ReluGradient with dY * (Y > 0)."""
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    if x.size:
        x.reshape(-1)[[0, -1]] = [np.nan, -np.inf]
    (y,) = run_op("Relu", [x])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert y.dtype == dtype and y.shape == x.shape
    dy = np.ones_like(x)
    (dx,) = run_op("ReluGradient", [y, dy])
    np.testing.assert_array_equal(dx, dy * (y > 0))


def test_relu_takes_a_non_contiguous_x():
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)[:, ::2]
    np.testing.assert_array_equal(run_op("Relu", [x])[0], np.maximum(x, 0))


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_swish_refuses_other_alphas():
    x = np.ones(3, np.float32)
    with pytest.raises(OpFailure, match="takes alpha 1 only, got 0.5"):
        check_reference("Swish", [x], None, {"alpha": 0.5}, device="cuda")
    with pytest.raises(OpFailure, match="takes alpha 1 only, got 0.5"):
        check_reference("SwishGradient", [x, x, x], None, {"alpha": 0.5}, device="cuda")
