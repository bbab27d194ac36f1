"""normalize family (LpNorm, Normalize, NormalizeL1 and the gradient ops): each op
against NumPy references written here, the gradient ops against numeric
derivatives, the registered gradients against central differences, shape
inference against the kernels, and errors (one message from inference and the
kernel)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer


def away_from_zero(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    return (x + 0.1 * np.sign(x)).astype(np.float32)


def lp_norm_reference(x, p=2, average=0):
    x = x.astype(np.float64).ravel()
    total = np.abs(x).sum() if p == 1 else (x * x).sum()
    return np.array([total / (x.size if average else 1)])


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (0,)])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("average", [0, 1])
def test_lp_norm(shape, p, average):
    if average and 0 in shape:
        return  # an error, below
    check_reference("LpNorm", [away_from_zero(shape, 1)], lp_norm_reference, {"p": p, "average": average})


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("average", [0, 1])
def test_lp_norm_gradient(p, average):
    x = away_from_zero((2, 3), 2).astype(np.float64)
    dout = np.array([0.7])
    args = {"p": p, "average": average}
    check_gradient_op("LpNorm", [x], "LpNormGradient", [x, dout], {0: 0}, [dout], args, atol=1e-6, rtol=1e-6)
    op = make_op("LpNorm", ["X"], ["Z"], args)
    report = check_op_gradient(op, [x], 0)
    assert report.ok, report


def test_lp_norm_gradient_is_zero_at_zero():
    (dx,) = run_op("LpNormGradient", [np.array([0.0, 1e-13, -2.0], np.float32), np.array([3.0], np.float32)],
                   {"p": 1})
    np.testing.assert_array_equal(dx, [0, 0, -3])


def normalize_reference(x, axis=-1):
    x = x.astype(np.float64)
    return x / np.maximum(np.sqrt((x ** 2).sum(axis=axis, keepdims=True)), 1e-12)


def normalize_l1_reference(x, axis=-1):
    norm = np.abs(x.astype(np.float64)).sum(axis=axis, keepdims=True)
    return np.where(norm == 0, x, x / np.where(norm == 0, 1, norm))


SHAPES = [((4,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -3), ((2, 1, 3, 2), 2)]


@pytest.mark.parametrize("shape, axis", SHAPES)
def test_normalize(shape, axis):
    x = away_from_zero(shape, 3)
    check_reference("Normalize", [x], normalize_reference, {"axis": axis})
    check_reference("NormalizeL1", [x], normalize_l1_reference, {"axis": axis})


def test_zero_vectors():
    x = np.array([[0.0, 0.0], [3.0, -4.0]], np.float32)
    check_reference("Normalize", [x], normalize_reference)
    check_reference("NormalizeL1", [x], normalize_l1_reference)


@pytest.mark.parametrize("shape, axis", SHAPES)
def test_normalize_gradient(shape, axis):
    x, dy = away_from_zero(shape, 4).astype(np.float64), away_from_zero(shape, 5).astype(np.float64)
    check_gradient_op("Normalize", [x], "NormalizeGradient", [x, dy], {0: 0}, [dy], {"axis": axis},
                      atol=1e-5, rtol=1e-5)
    report = check_op_gradient(make_op("Normalize", ["X"], ["Y"], {"axis": axis}), [x], 0)
    assert report.ok, report


def test_normalize_l1_has_no_gradient():
    with pytest.raises(GradientError, match="gradient not implemented for NormalizeL1"):
        GetGradientForOp(make_op("NormalizeL1", ["X"], ["Y"]), ["Y_grad"])


INFERENCE_CASES = [
    ("LpNorm", [(2, 3)], {"p": 1}),
    ("LpNormGradient", [(2, 3), (1,)], {}),
    ("Normalize", [(2, 3)], {"axis": 0}),
    ("NormalizeGradient", [(2, 3), (2, 3)], {}),
    ("NormalizeL1", [(2, 3, 4)], {"axis": -2}),
]


@pytest.mark.parametrize("op_type, shapes, args", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args):
    got = run_op(op_type, [away_from_zero(s, 6) for s in shapes], args)
    assert infer(op_type, shapes, **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


ERRORS = [
    ("LpNorm", lambda: [np.zeros((0, 3), np.float32)], {"average": 1},
     r"average=1 divides by X's size, and X \[0, 3\] is empty"),
    ("LpNorm", lambda: [np.ones(3, np.int32)], {}, "X must be float, got int32"),
    ("LpNormGradient", lambda: [np.ones(3, np.float32), np.ones(2, np.float32)], {},
     r"dout must be \[1\] \(LpNorm's output\), got \[2\]"),
    ("Normalize", lambda: [np.ones((2, 3), np.float32)], {"axis": 2}, "axis 2 is out of range for X of rank 2"),
    ("NormalizeL1", lambda: [np.ones((), np.float32)], {}, r"X must have rank >= 1, got \[\]"),
    ("NormalizeGradient", lambda: [np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)], {},
     r"dY is \[3, 2\] but X is \[2, 3\]: they must have the same shape"),
]


@pytest.mark.parametrize("op_type, make_inputs, args, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args)
