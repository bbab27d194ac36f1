"""The adaptive family: RmsProp, Ftrl and Adadelta against NumPy references
written from Caffe2's update formulas (float64 references, float32 and float64
kernels), their inference and errors, and the ops refusing gradients."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def rms_prop_reference(grad, ms, mom, lr, decay=0.9, momentum=0.0, epsilon=1e-5):
    new_ms = decay * ms + (1 - decay) * grad ** 2
    new_mom = momentum * mom + lr[0] * grad / np.sqrt(new_ms + epsilon)
    return new_mom, new_ms, new_mom


def ftrl_reference(var, n_z, grad, *alpha_input, alpha=0.005, beta=1.0, lambda1=0.001, lambda2=0.001):
    alpha = alpha_input[0][0] if alpha_input else alpha
    new_w, new_nz = np.empty_like(var), np.empty_like(n_z)
    for i in np.ndindex(var.shape):  # one coordinate at a time, as the paper writes it
        n, z, g, w = n_z[i][0], n_z[i][1], grad[i], var[i]
        n_new = n + g * g
        z_new = z + g - (np.sqrt(n_new) - np.sqrt(n)) / alpha * w
        new_nz[i] = (n_new, z_new)
        new_w[i] = 0.0 if abs(z_new) <= lambda1 else \
            -(z_new - np.sign(z_new) * lambda1) / ((beta + np.sqrt(n_new)) / alpha + lambda2)
    return new_w, new_nz


def adadelta_reference(param, moment, delta, grad, lr, epsilon=1e-5, decay=0.95):
    new_moment = decay * moment + (1 - decay) * grad ** 2
    step = np.sqrt(delta + epsilon) / np.sqrt(new_moment + epsilon) * grad
    return param + lr[0] * step, new_moment, decay * delta + (1 - decay) * step ** 2


def inputs_for(op_type, rng, shape, dtype, alpha_input=False):
    tensor = lambda *extra: rng.standard_normal((*shape, *extra)).astype(dtype)
    positive = lambda *extra: np.abs(tensor(*extra)) + dtype(0.1)
    lr = np.array([rng.uniform(0.01, 0.5)], dtype)
    if op_type == "RmsProp":
        return [tensor(), positive(), tensor(), lr]
    if op_type == "Ftrl":
        return [tensor(), np.stack([np.abs(tensor()), tensor()], axis=-1), tensor()] + ([lr] if alpha_input else [])
    return [tensor(), positive(), positive(), tensor(), -lr]


UPDATES = [
    ("RmsProp", {}, rms_prop_reference, False),
    ("RmsProp", {"decay": 0.5, "momentum": 0.9, "epsilon": 1e-3}, rms_prop_reference, False),
    ("Ftrl", {}, ftrl_reference, False),
    ("Ftrl", {"alpha": 0.1, "beta": 0.5, "lambda1": 0.3, "lambda2": 0.1}, ftrl_reference, False),
    ("Ftrl", {"lambda1": 0.05}, ftrl_reference, True),
    ("Adadelta", {}, adadelta_reference, False),
    ("Adadelta", {"epsilon": 1e-3, "decay": 0.5}, adadelta_reference, False),
]


@pytest.mark.parametrize("op_type, args, reference, alpha_input", UPDATES)
@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_update_one_step(op_type, args, reference, alpha_input, shape, seed, dtype):
    inputs = inputs_for(op_type, np.random.default_rng(seed), shape, dtype, alpha_input)
    expected = reference(*[x.astype(np.float64) for x in inputs], **args)
    outputs = check_reference(op_type, inputs, lambda *_, **__: expected, args, atol=1e-5, rtol=1e-4)
    assert all(y.dtype == dtype for y in outputs)


@pytest.mark.parametrize("op_type", ["RmsProp", "Ftrl", "Adadelta"])
def test_kernels_leave_their_inputs_alone(op_type):
    inputs = inputs_for(op_type, np.random.default_rng(0), (3, 2), np.float32)
    before = [x.copy() for x in inputs]
    outputs = run_op(op_type, inputs)
    for x, y in zip(before, inputs):
        np.testing.assert_array_equal(x, y)
    assert not any(np.shares_memory(y, x) for y in outputs for x in inputs)


def test_ftrl_zeroes_weights_inside_the_l1_ball():
    var, n_z = np.zeros(2, np.float32), np.zeros((2, 2), np.float32)
    grad = np.array([1e-4, 5.0], np.float32)
    new_var, _ = run_op("Ftrl", [var, n_z, grad], {"lambda1": 0.5, "alpha": 1.0})
    assert new_var[0] == 0 and new_var[1] != 0


def test_updates_follow_blob_shapes_of_equal_size():
    grad, ms, mom = np.ones((3, 4), np.float32), np.ones(12, np.float32), np.zeros((4, 3), np.float32)
    step, new_ms, new_mom = run_op("RmsProp", [grad, ms, mom, np.ones(1, np.float32)])
    assert (step.shape, new_ms.shape, new_mom.shape) == ((3, 4), (12,), (4, 3))


@pytest.mark.parametrize("op_type, shapes, n_out, expected", [
    ("RmsProp", [(3, 4), (12,), (4, 3), (1,)], 3, [(3, 4), (12,), (4, 3)]),
    ("Ftrl", [(3, 4), (3, 4, 2), (12,)], 2, [(3, 4), (3, 4, 2)]),
    ("Ftrl", [(3,), (6,), (3,), ()], 2, [(3,), (6,)]),
    ("Adadelta", [(5,), (5,), (5,), (5,), (1,)], 3, [(5,), (5,), (5,)]),
])
def test_inference(op_type, shapes, n_out, expected):
    assert [info.shape for info in infer(op_type, shapes, n_out)] == expected


@pytest.mark.parametrize("op_type, shapes, message", [
    ("RmsProp", [(3,), (4,), (3,), (1,)], "these must hold the same number of elements"),
    ("RmsProp", [(3,), (3,), (3,), (2,)], r"lr must hold one element, got \[2\]"),
    ("Ftrl", [(3,), (3,), (3,)], r"n_z \[3\] must hold two elements \(n, z\) per element of var \[3\]"),
    ("Ftrl", [(3,), (6,), (3,), (2,)], r"alpha must hold one element"),
    ("Adadelta", [(3,), (3,), (2,), (3,), (1,)], "these must hold the same number of elements"),
])
def test_inference_errors(op_type, shapes, message):
    n_out = {"RmsProp": 3, "Ftrl": 2, "Adadelta": 3}[op_type]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out)


@pytest.mark.parametrize("op_type, inputs, message", [
    ("RmsProp", [np.arange(3), np.ones(3), np.ones(3), np.ones(1)], "grad must be a float tensor"),
    ("Ftrl", [np.ones(3), np.ones(4), np.ones(3)], r"n_z \[4\] must hold two elements"),
    ("Adadelta", [np.ones(3)] * 4 + [np.ones(2)], r"lr must hold one element"),
])
def test_run_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


@pytest.mark.parametrize("op_type, n_in, n_out", [("RmsProp", 4, 3), ("Ftrl", 3, 2), ("Adadelta", 5, 3)])
def test_updates_refuse_gradients(op_type, n_in, n_out):
    op = make_op(op_type, [f"x{i}" for i in range(n_in)], [f"y{i}" for i in range(n_out)])
    with pytest.raises(GradientError, match=f"should not call gradient for operator {op_type}"):
        GetGradientForOp(op, [f"y{i}_grad" for i in range(n_out)])


# -- GFtrl and Wngrad -----------------------------------------------------------------------

def gftrl_reference(var, n_z, grad, *alpha_input, alpha=0.005, beta=1.0, lambda1=0.001, lambda2=0.001):
    """Column by column, as the group-lasso FTRL paper writes it."""
    alpha = alpha_input[0][0] if alpha_input else alpha
    rows = grad.shape[0]
    w, g = var.reshape(rows, -1), grad.reshape(rows, -1)
    nz = n_z.reshape(rows, -1, 2)
    new_w, new_nz = np.zeros_like(w), np.empty_like(nz)
    for j in range(w.shape[1]):
        n, z = nz[:, j, 0], nz[:, j, 1]
        n_new = n + g[:, j] ** 2
        z_new = z + g[:, j] - (np.sqrt(n_new) - np.sqrt(n)) / alpha * w[:, j]
        new_nz[:, j, 0], new_nz[:, j, 1] = n_new, z_new
        norm = np.linalg.norm(z_new)
        if norm > lambda1 * np.sqrt(rows):
            new_w[:, j] = z_new * (lambda1 * np.sqrt(rows) / norm - 1) / ((beta + np.sqrt(n_new)) / alpha + lambda2)
    return new_w.reshape(var.shape), new_nz.reshape(n_z.shape)


def wngrad_reference(param, seq_b, grad, lr, epsilon=1e-5):
    b = seq_b[0]
    effective = lr[0] / (b + epsilon)
    new_b = b + (grad ** 2).sum() / (b + epsilon)
    return param + effective * grad, np.array([new_b]), np.array([effective]), effective * grad


@pytest.mark.parametrize("args, alpha_input", [({}, False), ({"lambda1": 0.4, "alpha": 0.1, "beta": 0.5}, False),
                                               ({"lambda1": 0.05}, True)])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2), (5,)])
def test_gftrl(args, alpha_input, shape):
    rng = np.random.default_rng(1)
    var, grad = rng.standard_normal(shape), rng.standard_normal(shape)
    n_z = np.stack([np.abs(rng.standard_normal(shape)), rng.standard_normal(shape)], axis=-1)
    inputs = [x.astype(np.float32) for x in (var, n_z, grad)] + ([np.array([0.2], np.float32)] if alpha_input else [])
    expected = gftrl_reference(*[x.astype(np.float64) for x in inputs], **args)
    check_reference("GFtrl", inputs, lambda *_, **__: expected, args, atol=1e-5, rtol=1e-4)


def test_gftrl_zeroes_whole_columns():
    var, n_z = np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float32)
    grad = np.array([[1e-3, 3.0], [1e-3, 3.0]], np.float32)
    new_var, _ = run_op("GFtrl", [var, n_z, grad], {"lambda1": 0.5, "alpha": 1.0})
    assert (new_var[:, 0] == 0).all() and (new_var[:, 1] != 0).all()


@pytest.mark.parametrize("num_outputs", [2, 3, 4])
@pytest.mark.parametrize("shape", [(3, 4), (7,)])
def test_wngrad(num_outputs, shape):
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(shape).astype(np.float32), np.array([0.7], np.float32),
              rng.standard_normal(shape).astype(np.float32), np.array([-0.3], np.float32)]
    expected = wngrad_reference(*[x.astype(np.float64) for x in inputs], epsilon=1e-3)
    check_reference("Wngrad", inputs, lambda *_, **__: expected[:num_outputs], {"epsilon": 1e-3},
                    num_outputs=num_outputs, atol=1e-5)


@pytest.mark.parametrize("op_type, shapes, n_out, expected", [
    ("GFtrl", [(3, 4), (3, 4, 2), (12,)], 2, [(3, 4), (3, 4, 2)]),
    ("Wngrad", [(3, 4), (1,), (12,), (1,)], 4, [(3, 4), (1,), (1,), (12,)]),
    ("Wngrad", [(3, 4), (), (3, 4), (1,)], 2, [(3, 4), ()]),
])
def test_inference_of_gftrl_and_wngrad(op_type, shapes, n_out, expected):
    assert [info.shape for info in infer(op_type, shapes, n_out)] == expected


@pytest.mark.parametrize("op_type, shapes, n_out, message", [
    ("GFtrl", [(), (2,), ()], 2, "grad must be at least 1-D"),
    ("GFtrl", [(3,), (3,), (3,)], 2, r"n_z \[3\] must hold two elements"),
    ("Wngrad", [(3,), (2,), (3,), (1,)], 2, r"seq_b must hold one element, got \[2\]"),
    ("Wngrad", [(3,), (1,), (4,), (1,)], 2, "these must hold the same number of elements"),
])
def test_gftrl_and_wngrad_inference_errors(op_type, shapes, n_out, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out)


@pytest.mark.parametrize("op_type, inputs, message", [
    ("GFtrl", [np.ones(()), np.ones(2), np.ones(())], "grad must be at least 1-D"),
    ("Wngrad", [np.ones(3), np.ones(2), np.ones(3), np.ones(1)], "seq_b must hold one element"),
    ("Wngrad", [np.ones(3), np.ones(1), np.ones(3), np.ones(2)], "lr must hold one element"),
])
def test_gftrl_and_wngrad_run_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


@pytest.mark.parametrize("op_type, n_in, n_out", [("GFtrl", 3, 2), ("Wngrad", 4, 2)])
def test_gftrl_and_wngrad_refuse_gradients(op_type, n_in, n_out):
    test_updates_refuse_gradients(op_type, n_in, n_out)


# -- DecayAdagrad and Storm -----------------------------------------------------------------

def decay_adagrad_reference(param, m1, m2, grad, lr, iteration, beta1=0.9, beta2=0.999, epsilon=1e-5,
                            weight_decay=0.0, bias_correction_first=1):
    t = int(iteration[0]) + 1
    m1 = beta1 * m1 + (1 - beta1) * grad
    m2 = m2 + grad ** 2
    c = 1 - beta1 ** t if bias_correction_first else 1.0
    return param + lr[0] * (m1 / c / (np.sqrt(m2) + epsilon) + weight_decay * param), m1, m2


def storm_reference(param, moment, grad_sq_sum, grad, lr, momentum=10.0, beta=0.1):
    total = grad_sq_sum[0] + (grad ** 2).sum()
    rate = lr[0] / (beta + total) ** (1 / 3)
    alpha = momentum * rate ** 2
    moment = grad + (1 - alpha) * (moment - grad)
    return param + rate * moment, moment, np.array([total])


@pytest.mark.parametrize("args", [{}, {"beta1": 0.5, "weight_decay": 0.1, "epsilon": 1e-3},
                                  {"bias_correction_first": 0, "beta2": 0.3}])
@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_decay_adagrad(args, shape):
    rng = np.random.default_rng(3)
    tensor = lambda: rng.standard_normal(shape).astype(np.float32)
    inputs = [tensor(), tensor(), np.abs(tensor()), tensor(), np.array([-0.05], np.float32),
              np.array([2], np.int64)]
    expected = decay_adagrad_reference(*[x.astype(np.float64) for x in inputs], **args)
    check_reference("DecayAdagrad", inputs, lambda *_, **__: expected, args, atol=1e-5)


@pytest.mark.parametrize("args", [{}, {"momentum": 2.0, "beta": 1.5}])
@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_storm(args, shape):
    rng = np.random.default_rng(4)
    tensor = lambda: rng.standard_normal(shape).astype(np.float32)
    inputs = [tensor(), tensor(), np.array([2.5], np.float32), tensor(), np.array([-0.2], np.float32)]
    expected = storm_reference(*[x.astype(np.float64) for x in inputs], **args)
    check_reference("Storm", inputs, lambda *_, **__: expected, args, atol=1e-5)


@pytest.mark.parametrize("op_type, shapes, n_out, message", [
    ("DecayAdagrad", [(3,), (3,), (3,), (3,), (1,), (2,)], 3, "iter must be a one-element int64"),
    ("DecayAdagrad", [(3,), (4,), (3,), (3,), (1,), (1,)], 3, "these must hold the same number of elements"),
    ("Storm", [(3,), (3,), (2,), (3,), (1,)], 3, r"grad_sq_sum must hold one element"),
    ("Storm", [(3,), (3,), (1,), (3,), (3,)], 3, r"lr must hold one element"),
])
def test_decay_adagrad_and_storm_inference_errors(op_type, shapes, n_out, message):
    dtypes = [("int64" if (op_type, i) == ("DecayAdagrad", 5) else "float32") for i in range(len(shapes))]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(s, d) for s, d in zip(shapes, dtypes)], n_out)


def test_decay_adagrad_and_storm_inference():
    x, one, it = TensorInfo((3, 4)), TensorInfo((1,)), TensorInfo((1,), "int64")
    assert infer("DecayAdagrad", [x, TensorInfo((12,)), x, x, one, it], 3) == [x, TensorInfo((12,)), x]
    assert infer("Storm", [x, x, one, x, one], 3) == [x, x, one]


@pytest.mark.parametrize("op_type, n_in, n_out", [("DecayAdagrad", 6, 3), ("Storm", 5, 3)])
def test_decay_adagrad_and_storm_refuse_gradients(op_type, n_in, n_out):
    test_updates_refuse_gradients(op_type, n_in, n_out)
