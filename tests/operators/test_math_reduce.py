"""Math_reduce family: SumElements, SumElementsInt, SumSqrElements, RowwiseMax and
ColwiseMax against NumPy references, their gradient ops against numeric
differentiation, inference and error rows."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), (), (0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("average", [0, 1])
def test_sum_elements(shape, dtype, average):
    x = RNG.standard_normal(shape).astype(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = (lambda x, **_: np.sum(x) / x.size) if average else (lambda x, **_: np.sum(x))
        (y,) = check_reference("SumElements", [x], reference, {"average": average})
    assert y.shape == () and y.dtype == dtype


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), (0,)])
@pytest.mark.parametrize("average", [0, 1])
def test_sum_sqr_elements(shape, average):
    x = RNG.standard_normal(shape).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = (lambda x, **_: np.sum(x * x) / x.size) if average else (lambda x, **_: np.sum(x * x))
        (y,) = check_reference("SumSqrElements", [x], reference, {"average": average})
    assert y.dtype == np.float32


def test_sum_elements_int():
    x = RNG.integers(-100, 100, (3, 4)).astype(np.int32)
    (y,) = check_reference("SumElementsInt", [x], lambda x: np.sum(x))
    assert y.shape == () and y.dtype == np.int32


@pytest.mark.parametrize("average", [0, 1])
def test_sum_elements_gradient(average):
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    dy = np.array(1.5, np.float32)
    check_gradient_op("SumElements", [x], "SumElementsGradient", [x, dy], {0: 0}, [dy], {"average": average})
    report = check_op_gradient(make_op("SumElements", ["X"], ["Y"], {"average": average}), [x.astype(np.float64)], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type, inputs, pattern", [
    ("SumElements", [np.arange(3, dtype=np.int32)], r"X is int32 \[3\], must be a float tensor"),
    ("SumSqrElements", [np.arange(3, dtype=np.int64)], r"X is int64 \[3\], must be a float tensor"),
    ("SumElementsInt", [np.ones(3, np.float32)], r"X is float32 \[3\], must be an int32 tensor"),
    ("SumElementsGradient", [np.ones(3, np.float32), np.ones(2, np.float32)],
     r"dY must hold one element \(the sum's gradient\), got \[2\]"),
])
def test_sum_errors(op_type, inputs, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op(op_type, inputs)
    with pytest.raises(ShapeError, match=pattern):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs])


def test_sum_int_and_sum_sqr_have_no_gradient():
    for op_type in ["SumElementsInt", "SumSqrElements"]:
        with pytest.raises(GradientError):
            GetGradientForOp(make_op(op_type, ["X"], ["Y"]), ["Y_grad"])


# --- RowwiseMax, ColwiseMax ---------------------------------------------------------------------

MAX_OPS = [("RowwiseMax", 2), ("ColwiseMax", 1)]
MAX_GRADIENTS = {"RowwiseMax": "RowwiseMaxGradient", "ColwiseMax": "ColwiseMaxGradient"}


@pytest.mark.parametrize("op_type, axis", MAX_OPS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 1, 1), (3, 2, 5), (0, 3, 4)])
def test_max(op_type, axis, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    (y,) = check_reference(op_type, [x], lambda x: np.max(x, axis=axis) if x.size else
                           np.empty(x.shape[:axis] + x.shape[axis + 1:], x.dtype))
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type, axis", MAX_OPS)
def test_max_gradient(op_type, axis):
    x = RNG.permutation(24).reshape(2, 3, 4).astype(np.float32)  # no ties
    (y,) = run_op(op_type, [x])
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    check_gradient_op(op_type, [x], MAX_GRADIENTS[op_type], [x, y, dy], {0: 0}, [dy])
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"]), [x.astype(np.float64)], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type, axis", MAX_OPS)
def test_max_gradient_goes_to_every_tie(op_type, axis):
    x = np.ones((1, 2, 2), np.float32)
    (y,) = run_op(op_type, [x])
    (dx,) = run_op(MAX_GRADIENTS[op_type], [x, y, np.full(y.shape, 3.0, np.float32)])
    np.testing.assert_array_equal(dx, np.full(x.shape, 3.0))


@pytest.mark.parametrize("op_type, axis", MAX_OPS)
@pytest.mark.parametrize("shape, pattern", [
    ((2, 3), r"X must be 3-D \[batch, M, N\], got \[2, 3\]"),
    (None, None),
])
def test_max_errors(op_type, axis, shape, pattern):
    shape = shape or ((2, 3, 0) if axis == 2 else (2, 0, 3))
    pattern = pattern or rf"dim {axis} is empty, so there is no maximum to take"
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op(op_type, [np.ones(shape, np.float32)])
    with pytest.raises(ShapeError, match=pattern):
        infer(op_type, [shape])


@pytest.mark.parametrize("op_type, axis", MAX_OPS)
def test_infer_max(op_type, axis):
    expected = np.max(np.zeros((2, 3, 4)), axis=axis).shape
    assert infer(op_type, [(2, 3, 4)]) == [TensorInfo(expected)]
    assert infer(op_type, [None]) == [None]
    gradient = MAX_GRADIENTS[op_type]
    assert infer(gradient, [(2, 3, 4), expected, expected]) == [TensorInfo((2, 3, 4))]
    with pytest.raises(ShapeError, match="dY is"):
        infer(gradient, [(2, 3, 4), None, (5,)])
    with pytest.raises(ShapeError, match="int32"):
        infer(op_type, [(2, 3, 4)], dtype="int32")


def test_infer_sums():
    assert infer("SumElements", [(2, 3)]) == [TensorInfo(())]
    assert infer("SumSqrElements", [(2, 3)], dtype="float64") == [TensorInfo((), "float64")]
    assert infer("SumElementsInt", [(4,)], dtype="int32") == [TensorInfo((), "int32")]
    assert infer("SumElementsGradient", [(2, 3), (1,)]) == [TensorInfo((2, 3))]
    assert infer("SumElements", [None]) == [None]
