"""Math_tensor family: EnforceFinite, NegateGradient, Expand (+ExpandGradient), NumpyTile,
Conditional and ReplaceNaN against NumPy references, gradients against numeric
differentiation, inference and error rows, and ReplaceNaN's CUDA kernel against the CPU."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

RNG = np.random.default_rng(0)


# --- EnforceFinite, NegateGradient --------------------------------------------------------------

@pytest.mark.parametrize("x", [np.ones((2, 3), np.float32), np.zeros(0), np.array(1.5)])
def test_enforce_finite_passes_finite_tensors(x):
    assert run_op("EnforceFinite", [x], num_outputs=0) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_enforce_finite_fails_the_run(bad):
    x = np.array([1.0, bad, 2.0], np.float32)
    with pytest.raises(OpFailure, match=r"\(EnforceFinite\) failed: .*the input \[3\] holds a NaN or an infinity"):
        run_op("EnforceFinite", [x], num_outputs=0)


def test_enforce_finite_inference():
    assert infer("EnforceFinite", [(2, 3)], n_out=0) == []
    with pytest.raises(ShapeError, match=r"input is int32 \[2\], must be a float tensor"):
        infer("EnforceFinite", [(2,)], n_out=0, dtype="int32")


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_negate_gradient_forward_is_identity(dtype):
    x = RNG.integers(-5, 5, (2, 3)).astype(dtype)
    (y,) = check_reference("NegateGradient", [x], lambda x: x)
    assert y.dtype == dtype
    assert infer("NegateGradient", [(2, 3)]) == [TensorInfo((2, 3))]


def test_negate_gradient_negates_the_gradient():
    (grad,), _ = GetGradientForOp(make_op("NegateGradient", ["X"], ["Y"]), ["Y_grad"])
    assert (grad.type, list(grad.input), list(grad.output)) == ("Negative", ["Y_grad"], ["X_grad"])
    x = RNG.standard_normal((2, 3))
    report = check_op_gradient(make_op("NegateGradient", ["X"], ["Y"]), [x], 0)
    assert not report.ok  # the gradient is the forward op's, negated: numeric says +1, the maker -1
    np.testing.assert_allclose(report.analytic, -report.numeric, atol=1e-6)


# --- Expand ---------------------------------------------------------------------------------------

EXPAND_CASES = [
    ((1, 3, 1), [3, 1, 3]), ((1, 3, 1), [3, -1, 3]), ((3, 1, 3), [3, 1, 3]), ((1, 3), [3, 1, 3]),
    ((4, 1, 2), [4, 1, 2, 2]), ((2, 3), []), ((), [2, 2]), ((2, 1), [0, 4]), ((0, 1), [3]),
]


@pytest.mark.parametrize("x_shape, shape", EXPAND_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_expand(x_shape, shape, dtype):
    x = RNG.integers(-5, 5, x_shape).astype(dtype)
    (y,) = check_reference("Expand", [x, np.array(shape, np.int64)],
                           lambda x, s: x * np.ones(np.where(s > 0, s, 1).astype(int), dtype))
    assert y.dtype == dtype


@pytest.mark.parametrize("x_shape, shape", EXPAND_CASES, ids=str)
def test_expand_gradient(x_shape, shape):
    x = RNG.standard_normal(x_shape)
    shape = np.array(shape, np.int64)
    (y,) = run_op("Expand", [x, shape])
    dy = RNG.standard_normal(y.shape)
    check_gradient_op("Expand", [x, shape], "ExpandGradient", [dy, x], {0: 0}, [dy])
    (grad,), _ = GetGradientForOp(make_op("Expand", ["X", "S"], ["Y"]), ["Y_grad"])
    assert (grad.type, list(grad.input)) == ("ExpandGradient", ["Y_grad", "X"])


@pytest.mark.parametrize("x_shape, shape, pattern", [
    ((2, 3), [4], r"X is \[2, 3\] and shape is \[4\]: dims 3 and 4 do not broadcast"),
    ((2,), [[2]], r"shape must be 1-D, got \[1, 1\]"),
    ((1,), [1] * 40, "shape has 40 entries: at most 32 dims are supported"),
    ((1,), [2**40, 2**40], r"Y would be \[1099511627776, 1099511627776\], .* elements: more than"),
])
def test_expand_errors(x_shape, shape, pattern):
    with pytest.raises(OpFailure, match=pattern):
        run_op("Expand", [np.ones(x_shape, np.float32), np.array(shape, np.int64)])


def test_expand_inference():
    assert infer("Expand", [(2, 3), (3,)], dtype="int64") == [None]
    with pytest.raises(ShapeError, match=r"shape is float32 \[3\], must be an int32 or int64 tensor"):
        infer("Expand", [(2, 3), (3,)])
    assert infer("ExpandGradient", [(4, 2, 3), (2, 1)]) == [TensorInfo((2, 1))]
    with pytest.raises(ShapeError, match=r"X is \[2, 2\] but dY is \[4, 3\]: X must broadcast to dY"):
        infer("ExpandGradient", [(4, 3), (2, 2)])
    with pytest.raises(OpFailure, match="X must broadcast to dY"):
        run_op("ExpandGradient", [np.ones((4, 3)), np.ones((2, 2))])


# --- NumpyTile ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, repeats", [((2, 3), [2, 1]), ((3,), [4]), ((2, 1, 3), [1, 3, 2]),
                                            ((0, 2), [3, 2]), ((2, 2), [0, 3]), ((), [])], ids=str)
def test_numpy_tile(shape, repeats):
    data = RNG.standard_normal(shape)
    (y,) = check_reference("NumpyTile", [data, np.array(repeats, np.int64)], lambda d, r: np.tile(d, r))
    assert y.dtype == np.float64


@pytest.mark.parametrize("shape, repeats, pattern", [
    ((2, 3), [2], r"repeats has 1 entries but data has 2 dims \(\[2, 3\]\): one count per dim"),
    ((2,), [-1], r"repeats must be >= 0, got \[-1\]"),
    ((2,), [2**40], r"tiled_data would be \[2199023255552\]"),
])
def test_numpy_tile_errors(shape, repeats, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("NumpyTile", [np.ones(shape), np.array(repeats, np.int64)])


def test_numpy_tile_inference():
    assert infer("NumpyTile", [(2, 3), (2,)], dtype="int64") == [None]
    with pytest.raises(ShapeError, match="repeats has 3 entries but data has 2 dims"):
        infer("NumpyTile", [TensorInfo((2, 3)), TensorInfo((3,), "int64")])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("NumpyTile", ["X", "R"], ["Y"]), ["Y_grad"])


# --- Conditional ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 2, 5), (0, 3)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_conditional(shape, dtype):
    condition = RNG.random(shape[0]) > 0.5
    t, f = (RNG.integers(-9, 9, shape).astype(dtype) for _ in range(2))
    reference = lambda c, t, f: np.where(c.reshape((-1,) + (1,) * (t.ndim - 1)), t, f)
    (out,) = check_reference("Conditional", [condition, t, f], reference)
    assert out.dtype == dtype


@pytest.mark.parametrize("c, t, f, pattern", [
    (TensorInfo((3,), "bool"), TensorInfo((3, 2)), TensorInfo((3, 4)), r"DataT is \[3, 2\] float32 but DataF"),
    (TensorInfo((2,), "bool"), TensorInfo((3, 2)), TensorInfo((3, 2)), "Condition has 2 entries but DataT"),
    (TensorInfo((3, 1), "bool"), TensorInfo((3, 2)), TensorInfo((3, 2)), r"Condition must be 1-D, got \[3, 1\]"),
    (TensorInfo((3,)), TensorInfo((3, 2)), TensorInfo((3, 2)), r"Condition is float32 \[3\], must be bool"),
    (TensorInfo((1,), "bool"), TensorInfo(()), TensorInfo(()), "must be at least 1-D"),
])
def test_conditional_errors(c, t, f, pattern):
    with pytest.raises(ShapeError, match=pattern):
        infer("Conditional", [c, t, f])
    inputs = [np.zeros(info.shape, info.dtype) for info in (c, t, f)]
    with pytest.raises(OpFailure, match=pattern):
        run_op("Conditional", inputs)


def test_conditional_inference_and_no_gradient():
    c, t = TensorInfo((3,), "bool"), TensorInfo((3, 2), "int32")
    assert infer("Conditional", [c, t, None]) == [t]
    (ops, grads) = GetGradientForOp(make_op("Conditional", ["C", "T", "F"], ["O"]), ["O_grad"])
    assert ops == [] and list(grads) == [None, None, None]


# --- ReplaceNaN -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("args", [{}, {"value": 1.0}, {"value": -2.5}])
@pytest.mark.parametrize("device", DEVICES)
def test_replace_nan(dtype, args, device):
    if device == "cuda" and dtype == np.float64:
        pytest.skip("the CUDA kernel takes float32")
    x = RNG.standard_normal((3, 4)).astype(dtype)
    x[RNG.random(x.shape) > 0.6] = np.nan
    x[0, 0] = np.inf
    reference = lambda x, value=0.0: np.where(np.isnan(x), value, x)
    (y,) = check_reference("ReplaceNaN", [x], reference, args, device=device)
    assert y.dtype == dtype and not np.isnan(y).any()


@pytest.mark.parametrize("device", DEVICES)
def test_replace_nan_refuses_integers(device):
    with pytest.raises(OpFailure, match=r"input is int32 \[2\], must be a float tensor"):
        check_reference("ReplaceNaN", [np.ones(2, np.int32)], None, device=device)
    assert infer("ReplaceNaN", [(2, 3)]) == [TensorInfo((2, 3))]
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("ReplaceNaN", ["X"], ["Y"]), ["Y_grad"])


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = {"ReplaceNaN"}


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [(), (0, 3), (7,), (300, 257)], ids=str)
def test_replace_nan_cuda_matches_cpu(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    x[RNG.random(shape) > 0.5] = np.nan
    check_devices("ReplaceNaN", [x], {"value": 3.0})


def test_enforce_finite_in_a_net():
    workspace = Workspace("_enforce_finite")
    workspace.FeedBlob("X", np.array([1.0, np.nan], np.float32))
    with pytest.raises(OpFailure, match="holds a NaN or an infinity"):
        workspace.RunOperatorOnce(make_op("EnforceFinite", ["X"], []))
