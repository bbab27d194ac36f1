"""activation_extra family: Celu, HardSwish, Mish and Shrink against NumPy references
written here, their gradient ops against central differences and the makers' wiring,
inference and error rows."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(3)


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


# (type, args, reference(x, **args) in float64, kinks to keep inputs away from)
FORWARD = [
    ("Celu", {}, lambda x: np.where(x > 0, x, np.exp(x) - 1), [0.0]),
    ("Celu", {"alpha": 2.0}, lambda x, alpha: np.maximum(x, 0) + np.minimum(0, alpha * (np.exp(x / alpha) - 1)),
     [0.0]),
    ("HardSwish", {}, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6, [-3.0, 3.0]),
    ("Mish", {}, lambda x: x * np.tanh(softplus(x)), []),
    ("Shrink", {}, lambda x: np.select([x > 0.5, x < -0.5], [x, x], 0), [-0.5, 0.5]),
    ("Shrink", {"bias": 1.5, "lambd": 1.0},
     lambda x, bias, lambd: np.select([x > lambd, x < -lambd], [x - bias, x + bias], 0), [-1.0, 1.0]),
]
IDS = [f"{t}-{'-'.join(map(str, a.values())) or 'default'}" for t, a, _, _ in FORWARD]


def away_from(x, kinks):
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.05, k + 0.1, x)
    return x


@pytest.mark.parametrize("op_type, args, reference, kinks", FORWARD, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_reference(op_type, args, reference, kinks, dtype):
    x = RNG.uniform(-6, 6, (4, 5)).astype(dtype)
    (y,) = check_reference(op_type, [x], lambda x, **a: reference(x.astype(np.float64), **a), args,
                           rtol=1e-5, atol=1e-6)
    assert y.dtype == dtype
    (y0,) = run_op(op_type, [np.array(0.75, dtype)], args)
    assert y0.shape == () and y0.dtype == dtype


def test_float16_celu_and_special_values():
    x = np.array([-2.0, -0.5, 0.0, 1.5], np.float16)
    (y,) = run_op("Celu", [x])
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, np.where(x > 0, x, np.expm1(x.astype(np.float64))), rtol=1e-3)
    (y,) = run_op("Mish", [np.array([np.inf, -100.0, 100.0], np.float32)])
    np.testing.assert_allclose(y, [np.inf, 0.0, 100.0], atol=1e-30)


@pytest.mark.parametrize("op_type, args, reference, kinks", FORWARD, ids=IDS)
def test_gradient_op_matches_numeric(op_type, args, reference, kinks):
    x = away_from(RNG.uniform(-5, 5, (3, 4)), kinks).astype(np.float32)
    dy = RNG.standard_normal(x.shape).astype(np.float32)
    (y,) = run_op(op_type, [x], args)
    first = y if op_type == "Celu" else x
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [first, dy], {0: 0}, [dy], args)
    (grad,), _ = GetGradientForOp(make_op(op_type, ["X"], ["Y"], args), ["Y_grad"])
    wired = ["Y" if op_type == "Celu" else "X", "Y_grad"]
    assert (grad.type, list(grad.input), list(grad.output)) == (f"{op_type}Gradient", wired, ["X_grad"])


@pytest.mark.parametrize("op_type, args, reference, kinks", FORWARD, ids=IDS)
def test_registered_gradient_matches_numeric(op_type, args, reference, kinks):
    x = away_from(RNG.uniform(-5, 5, (5,)), kinks)
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


def test_celu_in_place_stays_differentiable():
    x = np.array([-2.0, -0.3, 0.4, 2.0], np.float32)
    (y,) = run_op("Celu", [x], {"alpha": 0.5})
    (dx,) = run_op("CeluGradient", [y, np.ones(4, np.float32)], {"alpha": 0.5})
    np.testing.assert_allclose(dx, np.where(x > 0, 1, np.exp(x / 0.5)), rtol=1e-5)


@pytest.mark.parametrize("op_type, gradient_type", [
    ("Celu", "CeluGradient"), ("HardSwish", "HardSwishGradient"), ("Mish", "MishGradient"),
    ("Shrink", "ShrinkGradient")])
def test_infer(op_type, gradient_type):
    assert infer(op_type, [(2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [(2, 3)], dtype="float16") == [TensorInfo((2, 3), "float16")]
    assert infer(gradient_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match="input 0 must be float, got int32"):
        infer(op_type, [(2,)], dtype="int32")
    with pytest.raises(ShapeError, match="must"):
        infer(gradient_type, [(2, 3), (4,)])


@pytest.mark.parametrize("op_type", ["Celu", "HardSwish", "Mish", "Shrink"])
def test_integers_are_refused(op_type):
    with pytest.raises((OpFailure, NetError), match="input 0 must be float, got int64"):
        run_op(op_type, [np.arange(3)])


def test_celu_alpha_must_be_positive():
    with pytest.raises((OpFailure, NetError, ValueError), match="alpha"):
        run_op("Celu", [np.ones(2, np.float32)], {"alpha": 0.0})
