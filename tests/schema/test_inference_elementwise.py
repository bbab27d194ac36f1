"""Inference rules of the elementwise family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer

COMPARISONS = [("EQ", np.equal), ("LT", np.less), ("GT", np.greater),
               ("LE", np.less_equal), ("GE", np.greater_equal)]
LOGICAL = [("And", np.logical_and), ("Or", np.logical_or)]




def test_every_op_of_the_family_has_a_rule():
    family = [name for name, schema in all_schemas().items()
              if schema.family in ("elementwise", "arithmetic")]
    assert len({all_schemas()[name].type for name in family}) == 36
    assert all_schemas()["Neg"] is all_schemas()["Negative"]
    assert [name for name in family if all_schemas()[name].inference == "none"] == []


@pytest.mark.parametrize("op_type", ["Exp", "Log", "Sqrt", "Abs", "Sqr", "Clip", "Scale"])
def test_float_unary_ops(op_type):
    assert infer(op_type, [(2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None]) == [None]
    with pytest.raises(ShapeError, match="int32"):
        infer(op_type, [(2, 3)], dtype="int32")


@pytest.mark.parametrize("op_type", ["Negative", "Neg"])
def test_numeric_unary_ops(op_type):
    assert infer(op_type, [(4,)], dtype="int64") == [TensorInfo((4,), "int64")]


@pytest.mark.parametrize("op_type", ["AbsGradient", "ClipGradient"])
def test_unary_gradients(op_type):
    assert infer(op_type, [(2, 5), (2, 5)]) == [TensorInfo((2, 5))]


def test_pow_with_exponent_arg():
    (out,) = infer("Pow", [(2, 3)], exponent=2.0)
    assert out == TensorInfo(np.power(np.zeros((2, 3), np.float32), 2.0).shape)
    with pytest.raises(ShapeError, match="int32"):
        infer("Pow", [(2, 3)], dtype="int32", exponent=2.0)


@pytest.mark.parametrize("x, e, args", [((2, 3), (2, 3), {}), ((2, 3, 4), (4,), {"broadcast": 1}),
                                         ((2, 3, 4), (3, 1), {"broadcast": 1, "axis": 1}),
                                         ((2, 3), (1,), {"broadcast": 1})])
def test_pow_with_exponent_tensor(x, e, args):
    (out,) = infer("Pow", [x, e], **args)
    assert out == TensorInfo(x)
    assert infer("Pow", [None, e]) == [TensorInfo(e)]


def test_pow_errors():
    with pytest.raises(ShapeError, match="got neither"):
        infer("Pow", [(2, 3)])
    with pytest.raises(ShapeError, match="got both"):
        infer("Pow", [(2, 3), (3,)], exponent=2.0)
    with pytest.raises(ShapeError, match=r"X is \[2, 3\] and exponent is \[4\]"):
        infer("Pow", [(2, 3), (4,)])
    # Caffe2's Pow has no NumPy-style broadcasting: shapes that broadcast still differ.
    with pytest.raises(ShapeError, match=r"without broadcast=1 the shapes must be equal"):
        infer("Pow", [(2, 3), (3,)])
    with pytest.raises(ShapeError, match=r"exponent's dim 0 \(2\) must equal X's dim 1 \(3\)"):
        infer("Pow", [(2, 3), (2,)], broadcast=1)
    assert infer("Pow", [(2, 3), (2,)], broadcast=1, axis=0) == [TensorInfo((2, 3))]


def test_not():
    assert infer("Not", [(3, 2)], dtype="bool") == [TensorInfo((3, 2), "bool")]
    assert infer("Not", [None]) == [None]
    with pytest.raises(ShapeError, match="X is float32, must be bool"):
        infer("Not", [(3, 2)])


@pytest.mark.parametrize("op_type, reference", LOGICAL)
@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 5))])
def test_logical_ops_broadcast(op_type, reference, a, b):
    expected = reference(np.zeros(a, bool), np.zeros(b, bool))
    assert infer(op_type, [a, b], dtype="bool") == [TensorInfo(expected.shape, expected.dtype.name)]


@pytest.mark.parametrize("op_type", ["And", "Or"])
def test_logical_ops_errors(op_type):
    with pytest.raises(ShapeError, match="B is int32, must be bool"):
        infer(op_type, [TensorInfo((2,), "bool"), TensorInfo((2,), "int32")])
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer(op_type, [(2, 3), (2,)], dtype="bool")
    assert infer(op_type, [(2, 3), (2,)], dtype="bool", broadcast=1, axis=0) == [
        TensorInfo((2, 3), "bool")]


@pytest.mark.parametrize("op_type, reference", COMPARISONS)
@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), ((5, 1, 3), (4, 1)), ((), (2,))])
def test_comparisons_give_bool(op_type, reference, a, b):
    expected = reference(np.zeros(a, np.int64), np.zeros(b, np.int64))
    (out,) = infer(op_type, [a, b], dtype="int64")
    assert out == TensorInfo(np.shape(expected), np.asarray(expected).dtype.name)


@pytest.mark.parametrize("op_type", [name for name, _ in COMPARISONS])
def test_comparison_errors(op_type):
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer(op_type, [(2, 3), (4,)])
    with pytest.raises(ShapeError, match="A is float32 but B is int64"):
        infer(op_type, [TensorInfo((2,)), TensorInfo((2,), "int64")])
    with pytest.raises(ShapeError, match="must equal A's dim"):
        infer(op_type, [(2, 3), (2,)], broadcast=1)
    assert infer(op_type, [(2, 3), None]) == [None]


def test_where():
    c, x = TensorInfo((2, 3), "bool"), TensorInfo((2, 3), "int32")
    expected = np.where(np.zeros(c.shape, bool), np.zeros(x.shape, np.int32),
                        np.zeros(x.shape, np.int32))
    assert infer("Where", [c, x, x]) == [TensorInfo(expected.shape, expected.dtype.name)]
    assert infer("Where", [None, None, x]) == [x]
    assert infer("Where", [c, None, None]) == [None]


def test_where_on_rows():
    c, x = TensorInfo((4,), "bool"), TensorInfo((4, 5))
    expected = np.where(np.zeros(4, bool)[:, None], np.zeros(x.shape), np.zeros(x.shape))
    assert infer("Where", [c, x, x], broadcast_on_rows=1) == [TensorInfo(expected.shape)]
    with pytest.raises(ShapeError, match=r"1-D with one entry per row of X and Y \(\[4, 5\]\)"):
        infer("Where", [TensorInfo((5,), "bool"), x, x], broadcast_on_rows=1)
    with pytest.raises(ShapeError, match="C is \\[4\\] but X and Y are \\[4, 5\\]"):
        infer("Where", [c, x, x])


def test_where_errors():
    c = TensorInfo((2, 3), "bool")
    with pytest.raises(ShapeError, match=r"X is \[2, 3\] float32 but Y is \[2, 3\] float64"):
        infer("Where", [c, TensorInfo((2, 3)), TensorInfo((2, 3), "float64")])
    with pytest.raises(ShapeError, match="C is float32, must be bool"):
        infer("Where", [(2, 3), (2, 3), (2, 3)])
