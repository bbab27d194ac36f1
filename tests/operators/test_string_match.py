"""string_match family (StringStartsWith, StringEndsWith) against Python's
str.startswith / str.endswith, on bytes and str elements, any shape; inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

WORDS = np.array([[b"abc", b"ab", b""], [b"ba", "\u00e9a".encode(), b"aab"]], dtype=object)


@pytest.mark.parametrize("op_type, arg, method", [("StringStartsWith", "prefix", "startswith"),
                                                   ("StringEndsWith", "suffix", "endswith")])
@pytest.mark.parametrize("affix", ["a", "ab", "", "\u00e9"])
def test_string_tests(op_type, arg, method, affix):
    def reference(strings, **_):
        return [np.vectorize(lambda s: getattr(s, method)(affix.encode()), otypes=[bool])(strings)]
    check_reference(op_type, [WORDS], reference, {arg: affix})
    (flat,) = run_op(op_type, [np.array(["ab", "ba"], dtype=object)], {arg: affix})
    np.testing.assert_array_equal(flat, [getattr(s, method)(affix) for s in ["ab", "ba"]])


@pytest.mark.parametrize("op_type", ["StringStartsWith", "StringEndsWith"])
def test_string_tests_on_empty_tensors_and_without_gradient(op_type):
    (y,) = run_op(op_type, [np.zeros((0, 2), dtype=object)])
    assert y.shape == (0, 2) and y.dtype == bool
    assert infer(op_type, [TensorInfo((3, 2), "object")]) == [TensorInfo((3, 2), "bool")]
    with pytest.raises(GradientError):
        GetGradientForOp(make_op(op_type, ["S"], ["B"]), ["B_grad"])


@pytest.mark.parametrize("op_type", ["StringStartsWith", "StringEndsWith"])
def test_string_tests_refuse_numbers(op_type):
    with pytest.raises(ShapeError, match=r"strings must be a string tensor, got \[2\] float32"):
        infer(op_type, [(2,)])
    with pytest.raises((OpFailure, NetError), match="strings must be a string tensor"):
        run_op(op_type, [np.zeros(2, np.float32)])
