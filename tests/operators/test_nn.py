"""nn family: Softmax, LogSoftmax and Dropout against NumPy references, and
their gradient ops against numeric differentiation of the forward ops."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient import GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op


def rows_of(x, axis):
    axis %= x.ndim
    return x.astype(np.float64).reshape(int(np.prod(x.shape[:axis])), -1)


def ref_softmax(x, axis=1):
    rows = rows_of(x, axis)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def ref_log_softmax(x, axis=1):
    rows = rows_of(x, axis)
    shifted = rows - rows.max(axis=1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).reshape(x.shape)


@st.composite
def tensor_and_axis(draw):
    x = draw(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                        elements=st.floats(-20, 20, width=32)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@pytest.mark.parametrize("op_type, reference", [("Softmax", ref_softmax), ("LogSoftmax", ref_log_softmax)])
@settings(max_examples=25, deadline=None)
@given(case=tensor_and_axis())
def test_softmax_ops_match_reference(op_type, reference, case):
    x, axis = case
    (y,) = check_reference(op_type, [x], reference, {"axis": axis}, atol=1e-5)
    assert y.dtype == np.float32 and y.shape == x.shape


@pytest.mark.parametrize("op_type, reference", [("Softmax", ref_softmax), ("LogSoftmax", ref_log_softmax)])
def test_softmax_ops_are_stable_and_keep_float64(op_type, reference):
    x = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4]])
    (y,) = check_reference(op_type, [x], reference)
    assert y.dtype == np.float64 and np.isfinite(y).all()
    big = np.array([[88.0, 90.0, 3.0]], dtype=np.float32)
    assert np.isfinite(run_op(op_type, [big])[0]).all()


@pytest.mark.parametrize("forward, gradient", [("Softmax", "SoftmaxGradient"),
                                               ("LogSoftmax", "LogSoftmaxGradient")])
@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 3, 2), -2), ((5,), 0)])
def test_softmax_gradients_match_numeric(forward, gradient, shape, axis):
    rng = np.random.default_rng(sum(shape) + axis)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    (y,) = run_op(forward, [x], {"axis": axis})
    check_gradient_op(forward, [x], gradient, [y, dy], {0: 0}, [dy], {"axis": axis}, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("gradient", ["SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_gradient_dtype_and_empty(gradient):
    y, dy = np.full((2, 4), 0.25, np.float32), np.ones((2, 4), np.float32)
    (dx,) = run_op(gradient, [y, dy])
    assert dx.dtype == np.float32
    (dx,) = run_op(gradient, [np.zeros((0, 3), np.float32)] * 2)
    assert dx.shape == (0, 3)


def test_softmax_errors():
    with pytest.raises((OpFailure, NetError), match=r"axis 2 is out of range for X of shape \[2, 3\]"):
        run_op("Softmax", [np.zeros((2, 3), np.float32)], {"axis": 2})
    with pytest.raises((OpFailure, NetError), match="X must be float, got int32"):
        run_op("Softmax", [np.zeros((2, 3), np.int32)])
    with pytest.raises((OpFailure, NetError), match=r"Y is \[2, 3\] but dY is \[3, 2\]"):
        run_op("SoftmaxGradient", [np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)])


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.9])
def test_dropout_training_keeps_with_probability_one_minus_ratio(ratio):
    x = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)
    y, mask = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=2, seed=7)
    assert mask.dtype == np.bool_ and mask.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, np.where(mask, x / (1 - ratio), 0), rtol=1e-6)
    assert abs(mask.mean() - (1 - ratio)) < 0.02
    again, _ = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=2, seed=7)
    np.testing.assert_array_equal(y, again)  # same seed, same mask
    (only_y,) = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=1, seed=7)
    assert only_y.shape == x.shape


def test_dropout_edges_and_test_mode():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    y, mask = run_op("Dropout", [x], {"ratio": 1.0}, num_outputs=2)
    assert not mask.any() and (y == 0).all()
    y, mask = run_op("Dropout", [x], {"ratio": 0.5, "is_test": 1}, num_outputs=2)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float64 and mask.all()
    check_reference("Dropout", [x], lambda x, **_: x, {"is_test": 1})  # also in place


def test_dropout_grad_matches_reference():
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((3, 4)).astype(np.float32)
    mask = rng.random((3, 4)) < 0.6
    check_reference("DropoutGrad", [dy, mask], lambda dy, mask, ratio: dy * mask / (1 - ratio),
                    {"ratio": 0.4})
    check_reference("DropoutGrad", [dy], lambda dy, **_: dy, {"is_test": 1})
    check_reference("DropoutGrad", [dy, mask], lambda dy, mask, **_: dy, {"is_test": 1})
    (dx,) = run_op("DropoutGrad", [dy, mask], {"ratio": 1.0})
    assert (dx == 0).all() and dx.dtype == np.float32


def test_dropout_grad_is_the_gradient_of_dropout_with_its_mask():
    x = np.random.default_rng(3).standard_normal((4, 5))
    y, mask = run_op("Dropout", [x], {"ratio": 0.3}, num_outputs=2, seed=11)
    dy = np.random.default_rng(4).standard_normal(x.shape)
    (dx,) = run_op("DropoutGrad", [dy, mask], {"ratio": 0.3})
    np.testing.assert_allclose(dx, y / np.where(mask, x, 1) * dy, rtol=1e-12)


def test_dropout_grad_errors():
    dy = np.zeros((2, 3), np.float32)
    with pytest.raises((OpFailure, NetError), match=r"dY is \[2, 3\] but mask is \[3, 2\]"):
        run_op("DropoutGrad", [dy, np.zeros((3, 2), bool)])
    with pytest.raises((OpFailure, NetError), match="needs the mask input"):
        run_op("DropoutGrad", [dy])


# Gradient makers: each registered gradient against central differences --------

@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 3, 2), -2), ((5,), 0)])
def test_softmax_registered_gradient(op_type, shape, axis):
    x = np.random.default_rng(len(shape) + axis).standard_normal(shape) * 2
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], {"axis": axis}), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5])
@pytest.mark.parametrize("is_test", [0, 1])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2)])
def test_dropout_registered_gradient(ratio, is_test, shape):
    x = np.random.default_rng(6).standard_normal(shape)
    outputs = ["Y"] if is_test else ["Y", "mask"]
    op = make_op("Dropout", ["X"], outputs, {"ratio": ratio, "is_test": is_test})
    op.device_option.random_seed = 7  # the same mask on every forward run
    report = check_op_gradient(op, [x], 0)
    assert report.ok, report


def test_dropout_gradient_in_training_needs_the_mask():
    with pytest.raises(GradientError, match="mask"):
        GetGradientForOp(make_op("Dropout", ["X"], ["Y"]), ["Y_grad"])
