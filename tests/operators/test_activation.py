"""Activation family: each op and gradient op against its NumPy reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_reference, make_op

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
]

arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                    elements=st.floats(-3, 3, width=32))


def away_from_kinks(x):
    """Move values off the points where these functions have corners (0, HardSigmoid's +-2.5)."""
    x = np.where(np.abs(x) < 1e-2, 0.05, x)
    return np.where(np.abs(np.abs(x) - 2.5) < 1e-2, 2.0, x).astype(np.float32)


@pytest.mark.parametrize("op_type, args, reference", FORWARD, ids=[f[0] for f in FORWARD])
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


@pytest.mark.parametrize("order, slope_shape", [("NCHW", (3,)), ("NHWC", (4,)), ("NCHW", (1,))])
def test_prelu_and_gradient(order, slope_shape):
    rng = np.random.default_rng(0)
    x = away_from_kinks(rng.standard_normal((2, 3, 5, 4)).astype(np.float32))
    slope = rng.standard_normal(slope_shape).astype(np.float32)
    axis = 1 if order == "NCHW" else 3
    view = slope.reshape([-1 if a == axis and slope.size > 1 else 1 for a in range(4)])
    reference = lambda x, s, order: np.where(x >= 0, x, view * x)
    (y,) = check_reference("PRelu", [x, slope], reference, {"order": order})
    dy = rng.standard_normal(x.shape).astype(np.float32)
    sum_axes = tuple(a for a in range(4) if a != axis) if slope.size > 1 else None
    dslope = np.where(x >= 0, 0, x * dy).sum(axis=sum_axes).reshape(slope_shape)
    check_reference("PReluGradient", [y, dy, x, slope],
                    lambda *_, **__: (np.where(x >= 0, dy, view * dy), dslope), {"order": order},
                    atol=1e-3)


def test_float64_keeps_its_dtype():
    x = np.linspace(-2, 2, 7)
    (y,) = check_reference("HardSigmoid", [x], lambda x: np.clip(0.2 * x + 0.5, 0, 1))
    assert y.dtype == np.float64


# Gradient makers: the registered gradient of each op against central differences.
MAKER_CASES = [("Relu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Sigmoid", {}), ("Tanh", {}),
               ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Softplus", {}), ("Softsign", {}), ("Swish", {}),
               ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4})]


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
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("order, slope", [("NCHW", [0.2, 0.3, 0.4]), ("NHWC", [0.1, 0.5]), ("NCHW", [0.25])])
def test_prelu_registered_gradient(order, slope, input_to_check):
    x = away_from_kinks(np.random.default_rng(3).standard_normal((2, 3, 2, 2) if order == "NCHW" else (2, 2, 2, 2)))
    report = check_op_gradient(make_op("PRelu", ["X", "S"], ["Y"], {"order": order}),
                               [x.astype(np.float64), np.array(slope)], input_to_check)
    assert report.ok, report
