"""find family (Find, FindDuplicateElements): each op against loop references
written here, shape inference against the kernel, and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer


def find_reference(index, query, missing_value=-1):
    flat = list(index.ravel())
    out = [max((i for i, v in enumerate(flat) if v == q), default=missing_value) for q in query.ravel()]
    return np.array(out, index.dtype).reshape(query.shape)


@pytest.mark.parametrize("index, query", [([3, 1, 3, 2], [3, 2, 7, 1]), ([], [1, 2]), ([5], []),
                                          ([[1, 2], [2, 1]], [[1], [2]])])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("missing_value", [-1, 99])
def test_find(index, query, dtype, missing_value):
    inputs = [np.array(index, dtype), np.array(query, dtype)]
    check_reference("Find", inputs, find_reference, {"missing_value": missing_value})


def duplicates_reference(data):
    seen, out = [], []
    for i, v in enumerate(data):
        if v in seen:
            out.append(i)
        else:
            seen.append(v)
    return np.array(out, np.int64)


@pytest.mark.parametrize("data", [np.array([8, 2, 1, 1, 7, 8, 1], np.float32), np.arange(4, dtype=np.int64),
                                  np.array([b"a", b"b", b"a", b"c", b"b"], dtype="S"),
                                  np.array([b"x", b"x"], dtype=object), np.zeros(0, np.int32)])
def test_find_duplicate_elements(data):
    check_reference("FindDuplicateElements", [data], duplicates_reference)


def test_gradients():
    with pytest.raises(GradientError, match="one should not call gradient for operator FindDuplicateElements"):
        GetGradientForOp(make_op("FindDuplicateElements", ["d"], ["i"]), ["i_grad"])
    with pytest.raises(GradientError, match="gradient not implemented for Find"):
        GetGradientForOp(make_op("Find", ["a", "b"], ["c"]), ["c_grad"])


def test_inference():
    got = run_op("Find", [np.array([1, 2], np.int32), np.ones((2, 3), np.int32)])
    assert infer("Find", [TensorInfo((2,), "int32"), TensorInfo((2, 3), "int32")]) == [
        TensorInfo(got[0].shape, got[0].dtype.name)]
    assert infer("FindDuplicateElements", [TensorInfo((4,), "int64")]) == [None]


ERRORS = [
    ("Find", lambda: [np.ones(2, np.float32), np.ones(2, np.float32)], "index must be int32 or int64, got float32"),
    ("Find", lambda: [np.ones(2, np.int32), np.ones(2, np.int64)], "query must have index's type int32, got int64"),
    ("FindDuplicateElements", lambda: [np.ones((2, 2), np.int32)], r"data must be 1-D, got \[2, 2\]"),
    ("FindDuplicateElements", lambda: [np.ones(2, bool)], "data must be float, double, int32, int64 or strings, got bool"),
]


@pytest.mark.parametrize("op_type, make_inputs, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs])
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs)
