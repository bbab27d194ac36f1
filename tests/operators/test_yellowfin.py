"""The yellowfin family: YellowFin against a NumPy reference written from Caffe2's
update (float64, step by step over several iterations with the state fed back), its
inference and errors, and the op refusing gradients."""
import math

import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer


def yellowfin_reference(param, moment, lr_avg, mu_avg, curv_win, g_avg, g2_avg, memory, grad, it,
                        beta=0.999, curv_win_width=20, epsilon=1e-6, nesterov=0, zero_debias=True):
    step = int(it[0])
    deb = 1 / (1 - beta ** step) if zero_debias else 1.0
    ma = lambda old, new: beta * old + (1 - beta) * new
    lr, mu = float(lr_avg[0]), float(mu_avg[0])
    new_moment = mu * moment + lr * grad
    new_param = param - (1 + mu) * new_moment + mu * moment if nesterov else param - new_moment
    s = [float(v) for v in memory]
    new_g_avg, new_g2_avg = ma(g_avg, grad), ma(g2_avg, grad ** 2)
    g_deb = new_g_avg * deb
    n2 = max(epsilon, float(np.sum(grad ** 2)))
    s[1] = ma(s[1], n2)
    s[0] = ma(s[0], math.sqrt(n2))
    window = curv_win.copy()
    window[(step - 1) % curv_win_width] = math.log(n2)
    valid = window[:min(step, curv_win_width)]
    s[2], s[3] = ma(s[2], valid.min()), ma(s[3], valid.max())
    h_min, h_max = max(epsilon, math.exp(s[2] * deb)), max(epsilon, math.exp(s[3] * deb))
    variance = max(epsilon, s[1] * deb - float(np.sum(g_deb ** 2)))
    s[4] = ma(s[4], s[0] / s[1])
    new_lr, new_mu = lr_avg.copy(), mu_avg.copy()
    if step > 1:
        # the root of YellowFin's cubic for sqrt(mu), by Vieta's substitution
        p = (s[4] * deb * h_min) ** 2 / (2 * variance)
        w3 = (-math.sqrt(p * p + 4 / 27 * p ** 3) - p) / 2
        w = math.copysign(abs(w3) ** (1 / 3), w3) if w3 != 0 else -0.0
        x = w - p / (3 * w) + 1
        ratio = math.sqrt(h_max / h_min)
        mu_t = max(x * x, ((ratio - 1) / (ratio + 1)) ** 2)
        new_mu = ma(mu_avg, mu_t)
        new_lr = ma(lr_avg, (1 - math.sqrt(mu_t)) ** 2 / h_min)
    return new_param, new_moment, new_lr, new_mu, window, new_g_avg, new_g2_avg, np.array(s)


def reference_float64(*inputs, **args):
    return yellowfin_reference(*[x.astype(np.float64) for x in inputs[:9]], inputs[9], **args)


def state(rng, n, width=20, dtype=np.float32, lr=0.1, mu=0.0):
    zeros = np.zeros(n, dtype)
    return [rng.standard_normal(n).astype(dtype), zeros, np.array([lr], dtype), np.array([mu], dtype),
            np.zeros(width, dtype), zeros, zeros, np.zeros(5, dtype)]


@pytest.mark.parametrize("args", [{}, {"beta": 0.9, "curv_win_width": 3, "epsilon": 1e-4},
                                  {"nesterov": 1, "beta": 0.5}, {"zero_debias": False, "beta": 0.8}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_yellowfin_steps_match_the_reference(args, dtype):
    rng = np.random.default_rng(7)
    width = args.get("curv_win_width", 20)
    blobs = state(rng, 6, width, dtype)
    for step in range(1, 7):  # past the window of 3, and with lr/mu tuned from step 2 on
        grad = rng.standard_normal(6).astype(dtype)
        inputs = blobs + [grad, np.array([step], np.int64)]
        blobs = list(check_reference("YellowFin", inputs, reference_float64, args, atol=1e-4, rtol=1e-3))
        assert all(y.dtype == dtype for y in blobs)
    assert blobs[2][0] != np.float32(0.1) and 0 <= blobs[3][0] < 1  # lr and mu moved


def test_yellowfin_descends_a_quadratic():
    rng = np.random.default_rng(0)
    blobs = state(rng, 4, 5, np.float64, lr=0.1)
    scale = np.array([1.0, 2.0, 0.5, 1.5])
    start = float(np.sum(scale * blobs[0] ** 2))
    for step in range(1, 60):
        grad = 2 * scale * blobs[0]
        blobs = list(run_op("YellowFin", blobs + [grad, np.array([step], np.int64)],
                            {"beta": 0.9, "curv_win_width": 5}))
    assert float(np.sum(scale * blobs[0] ** 2)) < 0.1 * start


def test_kernel_leaves_its_inputs_alone():
    inputs = state(np.random.default_rng(1), 3) + [np.ones(3, np.float32), np.array([2], np.int64)]
    before = [x.copy() for x in inputs]
    outputs = run_op("YellowFin", inputs)
    for x, y in zip(before, inputs):
        np.testing.assert_array_equal(x, y)
    assert not any(np.shares_memory(y, x) for y in outputs for x in inputs)


def test_inference():
    shapes = [(2, 3), (2, 3), (1,), (1,), (20,), (2, 3), (2, 3), (5,), (2, 3), (1,)]
    assert [info.shape for info in infer("YellowFin", shapes, 8)] == [
        (2, 3), (2, 3), (1,), (1,), (20,), (2, 3), (2, 3), (5,)]


@pytest.mark.parametrize("change, message", [
    ({1: (3, 2)}, r"moment \[3, 2\] must have param's shape \[2, 3\]"),
    ({8: (6,)}, r"grad \[6\] must have param's shape"),
    ({2: (2,)}, r"lr_avg must hold one element"),
    ({4: (19,)}, r"curv_win must hold 20 elements, got \[19\]"),
    ({7: (4,)}, r"scalars_memory must hold 5 elements"),
])
def test_inference_errors(change, message):
    shapes = [(2, 3), (2, 3), (1,), (1,), (20,), (2, 3), (2, 3), (5,), (2, 3), (1,)]
    for index, shape in change.items():
        shapes[index] = shape
    with pytest.raises(ShapeError, match=message):
        infer("YellowFin", shapes, 8)


@pytest.mark.parametrize("change, message", [
    ({9: np.array([0], np.int64)}, "iter must be at least 1"),
    ({8: np.arange(3)}, "grad must be a float tensor"),
    ({4: np.zeros(4, np.float32)}, "curv_win must hold 20 elements"),
])
def test_run_errors(change, message):
    inputs = state(np.random.default_rng(2), 3) + [np.ones(3, np.float32), np.array([1], np.int64)]
    for index, value in change.items():
        inputs[index] = value
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("YellowFin", inputs)


def test_yellowfin_refuses_gradients():
    op = make_op("YellowFin", [f"x{i}" for i in range(10)], [f"x{i}" for i in range(8)])
    with pytest.raises(GradientError, match="should not call gradient for operator YellowFin"):
        GetGradientForOp(op, [f"x{i}_grad" for i in range(8)])
