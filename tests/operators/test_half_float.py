"""The half_float family: FloatToHalf and HalfToFloat against NumPy's casts, their
gradients (each the other), inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer


@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_round_trip(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 100
    (half,) = check_reference("FloatToHalf", [x], lambda x: [x.astype(np.float16)])
    (back,) = check_reference("HalfToFloat", [half], lambda h: [h.astype(np.float32)])
    assert half.dtype == np.float16 and back.dtype == np.float32
    np.testing.assert_allclose(back, x, rtol=1e-3)


@pytest.mark.parametrize("op_type, gradient_type", [("FloatToHalf", "HalfToFloat"), ("HalfToFloat", "FloatToHalf")])
def test_each_is_the_others_gradient(op_type, gradient_type):
    (grad_op,), grads = GetGradientForOp(make_op(op_type, ["x"], ["y"]), ["y_grad"])
    assert grad_op.type == gradient_type and list(grad_op.input) == ["y_grad"] and grads == ["x_grad"]


def test_inference_and_errors():
    assert infer("FloatToHalf", [(2, 3)]) == [TensorInfo((2, 3), "float16")]
    assert infer("HalfToFloat", [TensorInfo((4,), "float16")]) == [TensorInfo((4,), "float32")]
    with pytest.raises(ShapeError, match="X must be a float16 tensor, got float32"):
        infer("HalfToFloat", [(2,)])
    with pytest.raises((OpFailure, NetError), match="X must be a float32 tensor, got float64"):
        run_op("FloatToHalf", [np.ones(2)])
