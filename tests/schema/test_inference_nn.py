"""Inference rules of the nn family, checked against NumPy where it applies."""
import numpy as np
import pytest

from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer


def numpy_softmax(x, axis):
    """Softmax of x over its 2-D view split before `axis`, reshaped back."""
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "nn"}
    assert sorted(family) == ["Dropout", "DropoutGrad", "LogSoftmax", "LogSoftmaxGradient",
                              "Softmax", "SoftmaxGradient"]
    assert all(s.inference != "none" for s in family.values())


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, axis", [((2, 5), 1), ((2, 3, 4), 1), ((2, 3, 4), 2),
                                         ((2, 3, 4), -1), ((6,), 0), ((2, 3), -2)])
def test_softmax_keeps_shape(op_type, shape, axis):
    expected = numpy_softmax(np.random.rand(*shape), axis % len(shape)).shape
    assert infer(op_type, [shape], axis=axis) == [TensorInfo(expected, "float32")]
    assert infer(op_type, [shape], dtype="float64", axis=axis)[0].dtype == "float64"


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax_errors(op_type):
    with pytest.raises(ShapeError, match=r"axis 3 is out of range for X of rank 3"):
        infer(op_type, [(2, 3, 4)], axis=3)
    with pytest.raises(ShapeError, match="axis -3 is out of range"):
        infer(op_type, [(2, 3)], axis=-3)
    with pytest.raises(ShapeError, match="X must be float, got int32"):
        infer(op_type, [(2, 3)], dtype="int32")
    assert infer(op_type, [None]) == [None]


@pytest.mark.parametrize("op_type", ["SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_gradient(op_type):
    assert infer(op_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None, (4, 5)]) == [TensorInfo((4, 5))]
    assert infer(op_type, [None, None]) == [None]
    with pytest.raises(ShapeError, match=r"Y is \[2, 3\] but dY is \[3, 2\]"):
        infer(op_type, [(2, 3), (3, 2)])


def test_dropout_training_writes_a_bool_mask():
    x = np.random.rand(2, 3, 4)
    mask = np.random.rand(*x.shape) >= 0.5
    y, m = infer("Dropout", [x.shape], n_out=2)
    assert y == TensorInfo((x * mask).shape, "float32")
    assert m == TensorInfo(mask.shape, mask.dtype.name)


def test_dropout_test_mode_and_unknowns():
    assert infer("Dropout", [(2, 3)], n_out=2, is_test=1) == [TensorInfo((2, 3)), None]
    assert infer("Dropout", [(2, 3)], is_test=1) == [TensorInfo((2, 3))]
    assert infer("Dropout", [None], n_out=2) == [None, None]


def test_dropout_grad():
    mask = TensorInfo((2, 3), "bool")
    assert infer("DropoutGrad", [(2, 3), mask]) == [TensorInfo((2, 3))]
    assert infer("DropoutGrad", [(2, 3)], is_test=1) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match=r"dY is \[2, 3\] but mask is \[3, 2\]"):
        infer("DropoutGrad", [(2, 3), TensorInfo((3, 2), "bool")])
    with pytest.raises(ShapeError, match="mask must be bool, got float32"):
        infer("DropoutGrad", [(2, 3), (2, 3)])
