"""Inference rules of the arithmetic family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer

BINARY = ["Add", "Sub", "Mul", "Div"]




def legacy_reference(a, b, axis):
    """The shape NumPy gives for A + B once B is padded with 1s to start at `axis`."""
    start = len(a) - len(b) if axis == -1 else axis
    aligned = (1,) * start + tuple(b) + (1,) * (len(a) - start - len(b))
    return (np.zeros(a) + np.zeros(b).reshape(aligned)).shape


@pytest.mark.parametrize("op_type", BINARY)
@pytest.mark.parametrize("a, b", [
    ((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)),
    ((), (5, 2)), ((1,), ()), ((3, 1, 5), (1, 4, 1)), ((0, 3), (1, 3))])
def test_numpy_broadcasting_matches_numpy(op_type, a, b):
    (out,) = infer(op_type, [a, b])
    assert out == TensorInfo(np.broadcast_shapes(a, b), "float32")


@pytest.mark.parametrize("op_type", BINARY)
def test_numpy_broadcasting_mismatch(op_type):
    with pytest.raises(ValueError):
        np.broadcast_shapes((2, 3), (2, 4))
    with pytest.raises(ShapeError, match=r"A is \[2, 3\] and B is \[2, 4\]: dims 3 and 4"):
        infer(op_type, [(2, 3), (2, 4)])


@pytest.mark.parametrize("b, axis", [
    ((5,), -1), ((4, 5), -1), ((3, 4), 1), ((2,), 0), ((), -1), ((1,), 2), ((1, 4, 1), 1),
    ((3, 1), 1), ((1, 1, 1, 1), -1)])
def test_legacy_broadcasting_keeps_a_shape(b, axis):
    a = (2, 3, 4, 5)
    (out,) = infer("Mul", [a, b], broadcast=1, axis=axis)
    assert out.shape == legacy_reference(a, b, axis) == a


@pytest.mark.parametrize("order, b, expected_axis", [("NCHW", (3, 4), 1), ("NHWC", (5,), 3)])
def test_legacy_axis_str_names_the_axis(order, b, expected_axis):
    a = (2, 3, 4, 5)
    (out,) = infer("Add", [a, b], broadcast=1, axis_str="C", order=order)
    assert out.shape == legacy_reference(a, b, expected_axis)


def test_legacy_axis_str_changes_the_answer():
    a = (2, 3, 4, 5)
    with pytest.raises(ShapeError):  # aligned with A's trailing dims, [3, 4] does not fit
        infer("Add", [a, (3, 4)], broadcast=1)
    with pytest.raises(ShapeError):  # C is A's last axis under NHWC
        infer("Add", [a, (3,)], broadcast=1, axis_str="C", order="NHWC")


@pytest.mark.parametrize("shapes, args, message", [
    ([(2, 3, 4, 5), (3,)], {}, r"B's dim 0 \(3\) must equal A's dim 3 \(5\)"),
    ([(2, 3, 4, 5), (4, 5)], {"axis": 1}, r"B's dim 0 \(4\) must equal A's dim 1 \(3\)"),
    ([(2, 3, 4, 5), (4, 5)], {"axis": 3}, r"axis 3 is out of range \[0, 2\]"),
    ([(4, 5), (3, 4, 5)], {}, "cannot have more dims than A"),
    ([(2, 3), (3,)], {"axis": 1, "axis_str": "C"}, "not both"),
    ([(2, 3), (3,)], {"axis_str": "Q"}, "'Q' is not a letter of order NCHW"),
])
def test_legacy_broadcasting_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("Add", shapes, broadcast=1, **args)


def test_broadcast_args_ignored_without_broadcast():
    (out,) = infer("Sub", [(2, 3), (2, 1)], axis=0)
    assert out.shape == np.broadcast_shapes((2, 3), (2, 1))


def test_types():
    (out,) = infer("Add", [(2, 3), (3,)], dtype="int32")
    assert out.dtype == (np.zeros((2, 3), np.int32) + np.zeros(3, np.int32)).dtype.name
    with pytest.raises(ShapeError, match="A is float32 but B is int32"):
        infer("Div", [TensorInfo((2, 3)), TensorInfo((2, 3), "int32")])


def test_unknown_inputs():
    assert infer("Add", [None, (3,)]) == [None]
    assert infer("Add", [(2, 3), None]) == [None]
    assert infer("Add", [(2, 3), None], broadcast=1) == [TensorInfo((2, 3))]
    assert infer("Mul", [None, None], broadcast=1, axis=1) == [None]


@pytest.mark.parametrize("op_type", ["AddGradient", "SubGradient", "MulGradient"])
def test_binary_gradients_take_input_shapes(op_type):
    a, b = (2, 3, 4), (3, 1)
    c = np.broadcast_shapes(a, b)
    assert infer(op_type, [c, a, b], n_out=2) == [TensorInfo(a), TensorInfo(b)]
    assert infer(op_type, [None, a, None], n_out=2) == [TensorInfo(a), None]
    with pytest.raises(ShapeError, match=r"dC is \[2, 3\] but the forward output is \[2, 3, 4\]"):
        infer(op_type, [(2, 3), a, b], n_out=2)


def test_gradient_under_legacy_broadcast():
    out = infer("AddGradient", [(2, 3, 4), (2, 3, 4), (3,)], n_out=2, broadcast=1, axis=1)
    assert out == [TensorInfo((2, 3, 4)), TensorInfo((3,))]


def test_div_gradient_both_forms():
    a, b = (2, 3), (3,)
    c = np.broadcast_shapes(a, b)
    assert infer("DivGradient", [c, a, b, c], n_out=2) == [TensorInfo(a), TensorInfo(b)]
    assert infer("DivGradient", [b, c, c], n_out=2) == [TensorInfo(c), TensorInfo(b)]
    with pytest.raises(ShapeError, match=r"C is \[3\] but the forward output is \[2, 3\]"):
        infer("DivGradient", [c, a, b, (3,)], n_out=2)
    with pytest.raises(ShapeError, match="dC is"):
        infer("DivGradient", [b, c, (3, 2)], n_out=2)


@pytest.mark.parametrize("a, b, axis, sum_axes", [
    ((2, 3, 4, 5), (4, 5), -1, (0, 1)),
    ((2, 3, 4, 5), (3, 4), 1, (0, 3)),
    ((2, 3, 4, 5), (2,), 0, (1, 2, 3)),
])
def test_sum_reduce_like_takes_b_shape(a, b, axis, sum_axes):
    (out,) = infer("SumReduceLike", [TensorInfo(a, "float64"), TensorInfo(b)], axis=axis)
    assert out == TensorInfo(np.zeros(a).sum(axis=sum_axes).shape, "float64")


def test_sum_reduce_like_errors_and_unknowns():
    assert infer("SumReduceLike", [(2, 3, 4), (1,)]) == [TensorInfo((1,))]
    assert infer("SumReduceLike", [(2, 3, 4), None]) == [None]
    assert infer("SumReduceLike", [None, (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"B's dim 0 \(3\) must equal A's dim 2 \(4\)"):
        infer("SumReduceLike", [(2, 3, 4), (3,)])
    (out,) = infer("SumReduceLike", [(2, 3, 4, 5), (3,)], axis_str="C")
    assert out.shape == (3,)


@pytest.mark.parametrize("op_type, reduce", [
    ("Sum", np.add), ("Mean", np.add), ("Max", np.maximum), ("Min", np.minimum)])
def test_variadic_ops_need_one_shape(op_type, reduce):
    shapes = [(2, 3)] * 3
    (out,) = infer(op_type, shapes)
    assert out == TensorInfo(reduce.reduce([np.zeros(s, np.float32) for s in shapes]).shape)
    assert infer(op_type, [None, (2, 3), None]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None, None]) == [None]
    with pytest.raises(ShapeError, match=r"input 2 is \[3, 2\] float32 but input 0 is \[2, 3\]"):
        infer(op_type, [(2, 3), (2, 3), (3, 2)])
    with pytest.raises(ShapeError, match="input 1 is"):
        infer(op_type, [TensorInfo((2, 3)), TensorInfo((2, 3), "int32")])


def test_mean_gradient_gives_each_input_dy_shape():
    assert infer("MeanGradient", [(4, 5)], n_out=3) == [TensorInfo((4, 5))] * 3


@pytest.mark.parametrize("op_type", ["MaxGradient", "MinGradient"])
def test_select_gradients(op_type):
    y = (2, 3)
    assert infer(op_type, [y, y, y, y], n_out=2) == [TensorInfo(y)] * 2
    assert infer(op_type, [None, None, y, None], n_out=2) == [TensorInfo(y), None]
    with pytest.raises(ShapeError, match=r"input 3 is \[3\] float32"):
        infer(op_type, [y, y, y, (3,)], n_out=2)
