"""boolean_mask family (BooleanMask and its gradient op, BooleanMaskLengths,
BooleanUnmask): each op against NumPy references written here, the gradient op
against numeric derivatives and the registered gradient against central
differences, shape inference against the kernels, and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

MASK = np.array([True, False, True, True, False])


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("data", [randn(5, 1), randn((5, 2, 3), 2), np.arange(5, dtype=np.int64),
                                  np.array([b"a", b"b", b"c", b"d", b"e"], dtype=object)])
@pytest.mark.parametrize("mask", [MASK, np.zeros(5, bool), np.ones(5, bool)])
def test_boolean_mask(data, mask):
    check_reference("BooleanMask", [data, mask], lambda d, m: (d[m], np.flatnonzero(m)), num_outputs=2)
    check_reference("BooleanMask", [data, mask], lambda d, m: d[m])


@pytest.mark.parametrize("shape", [(5,), (5, 2)])
def test_boolean_mask_gradient(shape):
    x = randn(shape, 3).astype(np.float64)
    dy = randn((3, *shape[1:]), 4).astype(np.float64)
    check_gradient_op("BooleanMask", [x, MASK], "BooleanMaskGradient", [MASK, dy], {0: 0}, [dy], atol=1e-6)
    op = make_op("BooleanMask", ["data", "mask"], ["masked"])
    report = check_op_gradient(op, [x, MASK], 0)
    assert report.ok, report
    assert GetGradientForOp(op, ["masked_grad"])[1] == ["data_grad", None]


def lengths_reference(lengths, mask):
    out, start = [], 0
    for n in lengths:
        out.append(int(mask[start:start + n].sum()))
        start += n
    return np.array(out, lengths.dtype)


@pytest.mark.parametrize("lengths", [np.array([1, 3, 1], np.int32), np.array([0, 5, 0], np.int64),
                                     np.array([5], np.int32), np.array([2, 0, 3], np.int32)])
def test_boolean_mask_lengths(lengths):
    check_reference("BooleanMaskLengths", [lengths, MASK], lengths_reference)


def test_boolean_mask_lengths_empty():
    check_reference("BooleanMaskLengths", [np.zeros(0, np.int32), np.zeros(0, bool)], lengths_reference)


def test_boolean_unmask():
    masks = [np.array([1, 0, 1, 0, 0], bool), np.array([0, 1, 0, 0, 0], bool), np.array([0, 0, 0, 1, 1], bool)]
    values = [np.array([1.0, 3.0], np.float32), np.array([2.0], np.float32), np.array([4.0, 5.0], np.float32)]
    inputs = [v for pair in zip(masks, values) for v in pair]
    check_reference("BooleanUnmask", inputs, lambda *a: np.array([1, 2, 3, 4, 5], np.float32))


def test_boolean_unmask_first_true_mask_wins():
    inputs = [np.array([1, 0], bool), np.array([7], np.int64), np.array([1, 1], bool), np.array([8], np.int64)]
    check_reference("BooleanUnmask", inputs, lambda *a: np.array([7, 8], np.int64))


INFERENCE_CASES = [
    ("BooleanMaskGradient", lambda: [MASK, randn((3, 2), 5)]),
    ("BooleanMaskLengths", lambda: [np.array([1, 3, 1], np.int32), MASK]),
    ("BooleanUnmask", lambda: [np.ones(2, bool), randn(2, 6)]),
]


@pytest.mark.parametrize("op_type, make_inputs", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, make_inputs):
    inputs = make_inputs()
    got = run_op(op_type, inputs)
    assert infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs]) == [
        TensorInfo(v.shape, v.dtype.name) for v in got]


def test_inference_of_value_dependent_lengths():
    assert infer("BooleanMask", [(5, 2), TensorInfo((5,), "bool")], 2) == [None, None]


ERRORS = [
    ("BooleanMask", lambda: [randn(5, 0), np.ones(5, np.int32)], 1,
     r"mask must be a 1-D bool tensor, got \[5\] int32"),
    ("BooleanMask", lambda: [randn((4, 2), 0), MASK], 1,
     r"mask \[5\] must have one entry per row of data \[4, 2\]"),
    ("BooleanMaskLengths", lambda: [np.array([1.0], np.float32), MASK], 1,
     r"lengths must be a 1-D int32 or int64 tensor, got \[1\] float32"),
    ("BooleanUnmask", lambda: [MASK, randn(3, 0), np.ones(4, bool), randn(2, 1)], 1,
     r"mask_1 \[4\] must have the size of mask_0 \(5\)"),
    ("BooleanUnmask", lambda: [MASK, randn((3, 1), 0)], 1, r"values_0 must be 1-D, got \[3, 1\]"),
]


@pytest.mark.parametrize("op_type, make_inputs, n_out, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, n_out, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], n_out)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, {}, n_out)


VALUE_ERRORS = [
    ("BooleanMaskGradient", [MASK, randn(2, 0)], r"dY has 2 rows but mask \[5\] has 3 true entries"),
    ("BooleanMaskLengths", [np.array([2, 2], np.int32), MASK], "lengths sum to 4 but mask has 5 entries"),
    ("BooleanMaskLengths", [np.array([-1, 6], np.int32), MASK], r"length -1 is out of range \[0, 5\]"),
    ("BooleanMaskLengths", [np.array([2**40, 5], np.int64), MASK], r"length 1099511627776 is out of range"),
    ("BooleanUnmask", [MASK, randn(3, 0)], "all masks are false at position 1"),
    ("BooleanUnmask", [np.ones(2, bool), randn(3, 0)], "mask_0 wins 2 positions but values_0 has 3 values"),
]


@pytest.mark.parametrize("op_type, inputs, message", VALUE_ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(VALUE_ERRORS)])
def test_value_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)
