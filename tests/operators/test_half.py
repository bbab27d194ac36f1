"""Half family (FloatToHalf, HalfToFloat): against NumPy's float16 conversions,
each one's gradient (the other conversion, through the registered maker) against
central differences, refusals and the inference rules. CPU only."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import central_differences
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


@pytest.mark.parametrize("shape", [(3, 4), (5,), ()])
def test_conversions_against_numpy(shape):
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 100).astype(np.float32)
    (half,) = check_reference("FloatToHalf", [x], lambda x: x.astype(np.float16))
    assert half.dtype == np.float16 and half.shape == x.shape
    (back,) = check_reference("HalfToFloat", [half], lambda x: x.astype(np.float32))
    np.testing.assert_allclose(back, x, rtol=1e-3)  # float16 keeps 11 significant bits


def test_range_and_clip():
    x = np.array([7e4, -1e6, 1.0, np.nan, np.inf], np.float32)
    plain = run_op("FloatToHalf", [x])[0]
    assert np.isinf(plain[:2]).all() and plain[2] == 1.0 and np.isnan(plain[3])
    clipped = run_op("FloatToHalf", [x], {"clip": 1})[0]
    np.testing.assert_array_equal(clipped[:3], np.array([65504, -65504, 1.0], np.float16))
    assert np.isnan(clipped[3]) and clipped[4] == 65504


# (forward, its gradient op, input dtype)
PAIRS = [("FloatToHalf", "HalfToFloat", np.float32), ("HalfToFloat", "FloatToHalf", np.float16)]


@pytest.mark.parametrize("forward, backward, dtype", PAIRS, ids=[p[0] for p in PAIRS])
def test_gradient_is_the_reverse_conversion(forward, backward, dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.0, (2, 3)).astype(dtype)
    dy = rng.uniform(-1, 1, (2, 3)).astype(np.float16 if forward == "FloatToHalf" else np.float32)
    ops, _ = GetGradientForOp(make_op(forward, ["X"], ["Y"]), ["Y_grad"])
    assert [(op.type, list(op.input), list(op.output)) for op in ops] == [(backward, ["Y_grad"], ["X_grad"])]
    (dx,) = run_op(backward, [dy])
    assert dx.dtype == x.dtype

    def loss():  # <Y, dY> in float64; a step far above float16's spacing near 1 (about 0.001)
        (y,) = run_op(forward, [x])
        return float(np.sum(y.astype(np.float64) * dy))
    numeric = central_differences(loss, x, 0.05)
    np.testing.assert_allclose(dx.astype(np.float64), numeric, rtol=2e-2, atol=2e-3)


def test_refusals_and_inference():
    with pytest.raises(ERRORS, match=r"input \[2\] must be float32, got float64"):
        run_op("FloatToHalf", [np.zeros(2)])
    with pytest.raises(ERRORS, match=r"input \[2\] must be float16, got float32"):
        run_op("HalfToFloat", [np.zeros(2, np.float32)])
    assert infer("FloatToHalf", [(2, 3)]) == [TensorInfo((2, 3), "float16")]
    assert infer("HalfToFloat", [TensorInfo((4,), "float16")]) == [TensorInfo((4,), "float32")]
    assert infer("FloatToHalf", [None]) == [None]
    with pytest.raises(ShapeError, match="must be float16, got float32"):
        infer("HalfToFloat", [(2,)])
