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


# --- ONNX's reductions over axes: ReduceProd, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp ------

def _log_sum_exp(x, axis, keepdims):
    # Independent of the kernel's max shift: float64 throughout, exp then sum then log.
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x.astype(np.float64)), axis=axis, keepdims=keepdims))


# op type -> (NumPy reference (x, axis, keepdims), each with its "<type>Gradient" op,
#             the value over no elements)
AXES_OPS = {
    "ReduceProd": (lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims), 1.0),
    "ReduceSumSquare": (lambda x, axis, keepdims: np.sum(np.square(x), axis=axis, keepdims=keepdims), 0.0),
    "ReduceLogSum": (lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)), -np.inf),
    "ReduceLogSumExp": (_log_sum_exp, -np.inf),
}
AXES_ARGS = [{}, {"axes": [1]}, {"axes": [0, -1], "keepdims": 0}, {"axes": [-2], "keepdims": 1},
             {"keepdims": 0}, {"axes": [2, 0]}]


def _axes_reference(op_type):
    function = AXES_OPS[op_type][0]

    def reference(x, axes=None, keepdims=1):
        return np.asarray(function(x, None if axes is None else tuple(axes), bool(keepdims)))
    return reference


@pytest.mark.parametrize("op_type", AXES_OPS)
@pytest.mark.parametrize("args", AXES_ARGS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axes_reductions(op_type, args, dtype):
    x = RNG.uniform(0.5, 1.5, (2, 3, 4)).astype(dtype)  # positive: LogSum is defined
    (y,) = check_reference(op_type, [x], _axes_reference(op_type), args)
    assert y.dtype == dtype


@pytest.mark.parametrize("op_type", AXES_OPS)
def test_axes_reductions_over_no_elements(op_type):
    x = np.zeros((2, 0, 3), np.float32)
    empty = AXES_OPS[op_type][1]
    reference = lambda x, axes: np.full((2, 1, 3), empty, np.float32)
    check_reference(op_type, [x], reference, {"axes": [1]})
    (y,) = run_op(op_type, [np.zeros((0, 3), np.float32)], {"axes": [1], "keepdims": 0})
    assert y.shape == (0,)


def test_log_sum_exp_is_stable():
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf]], np.float32)
    (y,) = run_op("ReduceLogSumExp", [x], {"axes": [1], "keepdims": 0})
    np.testing.assert_allclose(y, [1000 + np.log(2), -1000], rtol=1e-6)
    (y,) = run_op("ReduceLogSumExp", [np.array([np.inf, 1.0], np.float32)])
    assert y.item() == np.inf


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_prod_and_sum_square_keep_integers(dtype):
    x = np.array([[1, -2, 3], [4, 0, -1]], dtype)
    (y,) = check_reference("ReduceProd", [x], lambda x, **_: np.prod(x, axis=1), {"axes": [1], "keepdims": 0})
    assert y.dtype == dtype
    (y,) = check_reference("ReduceSumSquare", [x], lambda x, **_: (x * x).sum(axis=0), {"axes": [0], "keepdims": 0})
    assert y.dtype == dtype


AXES_GRADIENTS = ["ReduceProdGradient", "ReduceSumSquareGradient", "ReduceLogSumGradient",
                  "ReduceLogSumExpGradient"]


@pytest.mark.parametrize("op_type, gradient", zip(AXES_OPS, AXES_GRADIENTS))
@pytest.mark.parametrize("args", [{}, {"axes": [1]}, {"axes": [0, -1], "keepdims": 0}], ids=str)
def test_axes_reduction_gradients(op_type, gradient, args):
    x = RNG.uniform(0.5, 1.5, (2, 3, 2)).astype(np.float64)
    y = run_op(op_type, [x], args)[0]
    dy = RNG.standard_normal(y.shape)
    check_gradient_op(op_type, [x], gradient, [dy, x, y], {0: 0}, [dy], args, atol=1e-4, rtol=1e-4)
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


def test_prod_gradient_is_exact_at_zeros():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    y = run_op("ReduceProd", [x], {"axes": [1]})[0]
    (dx,) = run_op("ReduceProdGradient", [np.ones_like(y), x, y], {"axes": [1]})
    np.testing.assert_array_equal(dx, [[6, 0, 0], [0, 0, 0]])
    (dx,) = run_op("ReduceProdGradient", [np.ones((2, 1)), np.zeros((2, 0)), np.ones((2, 1))], {"axes": [1]})
    assert dx.shape == (2, 0)


def test_axes_reduction_maker():
    op = make_op("ReduceLogSumExp", ["X"], ["Y"], {"axes": [1], "keepdims": 0})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    assert (grad.type, list(grad.input), list(grad.output)) == ("ReduceLogSumExpGradient", ["Y_grad", "X", "Y"], ["X_grad"])
    assert g_input == ["X_grad"]


@pytest.mark.parametrize("op_type", AXES_OPS)
def test_infer_axes_reductions(op_type):
    for args in AXES_ARGS:
        expected = _axes_reference(op_type)(np.ones((2, 3, 4)), **args).shape
        assert infer(op_type, [(2, 3, 4)], **args) == [TensorInfo(expected)]
    assert infer(op_type, [None]) == [None]
    gradient = f"{op_type}Gradient"
    assert infer(gradient, [(2, 4), (2, 3, 4), (2, 4)], axes=[1], keepdims=0) == [TensorInfo((2, 3, 4))]
    with pytest.raises(ShapeError, match=r"dY is \[3\] but Y is \[2, 1, 4\]"):
        infer(gradient, [(3,), (2, 3, 4), None], axes=[1])


@pytest.mark.parametrize("op_type, inputs, args, pattern", [
    ("ReduceLogSum", [np.ones((2, 3), np.int32)], {}, "data must be float, got int32"),
    ("ReduceLogSumExp", [np.ones((2, 3), np.int64)], {}, "data must be float, got int64"),
    ("ReduceProd", [np.ones((2, 3), np.float32)], {"axes": [2]}, "axes entry 2 is out of range"),
    ("ReduceSumSquare", [np.ones((2, 3), np.float32)], {"axes": [-3]}, "axes entry -3 is out of range"),
])
def test_axes_reduction_errors(op_type, inputs, args, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op(op_type, inputs, args)
    with pytest.raises(ShapeError, match=pattern):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)


def test_axes_reduction_gradient_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises((OpFailure, NetError), match=r"dY is \[5\] but reducing X \[2, 3\]"):
        run_op("ReduceProdGradient", [np.ones(5, np.float32), x, np.ones(2, np.float32)], {"axes": [1]})
    with pytest.raises((OpFailure, NetError), match=r"Y is \[4\] but reducing X \[2, 3\]"):
        run_op("ReduceLogSumGradient", [np.ones(2, np.float32), x, np.ones(4, np.float32)], {"axes": [1]})
