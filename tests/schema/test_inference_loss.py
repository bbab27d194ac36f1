"""Inference rules of the loss family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer

SCALAR = TensorInfo((), "float32")




def ints(*shape):
    return TensorInfo(shape, "int32")


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "loss"}
    assert len(family) == 13
    assert all(s.inference != "none" for s in family.values())
    assert all_schemas()["Accuracy"].gradient == "should_not"


@pytest.mark.parametrize("shape, axis", [((4, 10), 1), ((2, 3, 5), 1), ((2, 3, 5), 2),
                                         ((2, 3, 5), -1)])
def test_softmax_with_loss_matches_numpy(shape, axis):
    x = np.random.rand(*shape)
    canonical = axis % len(shape)
    n = int(np.prod(shape[:canonical]))
    rows = np.exp(x.reshape(n, -1))
    probs = (rows / rows.sum(axis=1, keepdims=True)).reshape(shape)
    labels = np.zeros(shape[:canonical], dtype=np.int32)
    loss = -np.log(probs.reshape(n, -1)[np.arange(n), labels.ravel()]).mean()
    out = infer("SoftmaxWithLoss", [shape, ints(*labels.shape)], n_out=2, axis=axis)
    assert out == [TensorInfo(probs.shape, "float32"), TensorInfo(loss.shape, "float32")]
    assert infer("SoftmaxWithLoss", [shape, ints(*shape[:canonical], 1), (n,)], n_out=2,
                 axis=axis)[0].shape == shape


def test_softmax_with_loss_probability_labels():
    out = infer("SoftmaxWithLoss", [(4, 10), (4, 10)], n_out=2, label_prob=1)
    assert out == [TensorInfo((4, 10)), SCALAR]
    with pytest.raises(ShapeError, match=r"logits \[4, 10\] give N=4, D=10 at axis 1, but labels "
                                         r"are \[4, 9\]: label_prob=1"):
        infer("SoftmaxWithLoss", [(4, 10), (4, 9)], n_out=2, label_prob=1)


def test_softmax_with_loss_errors():
    with pytest.raises(ShapeError, match=r"but labels are \[5\]: labels need N=4"):
        infer("SoftmaxWithLoss", [(4, 10), ints(5)], n_out=2)
    with pytest.raises(ShapeError, match=r"at axis 2, but labels are \[6\]"):
        infer("SoftmaxWithLoss", [(2, 3, 5), ints(6)], n_out=2, axis=2)
    with pytest.raises(ShapeError, match="labels must be int32 class indices, got float32"):
        infer("SoftmaxWithLoss", [(4, 10), (4,)], n_out=2)
    with pytest.raises(ShapeError, match=r"but weights are \[3\]: they need N=4"):
        infer("SoftmaxWithLoss", [(4, 10), ints(4), (3,)], n_out=2)
    with pytest.raises(ShapeError, match="axis 2 is out of range for logits of rank 2"):
        infer("SoftmaxWithLoss", [(4, 10), ints(4)], n_out=2, axis=2)
    assert infer("SoftmaxWithLoss", [None, ints(4)], n_out=2) == [None, SCALAR]


def test_softmax_with_loss_gradient():
    assert infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (4, 10), ()]) == [
        TensorInfo((4, 10))]
    assert infer("SoftmaxWithLossGradient", [None, ints(4), (4,), (4, 10), ()]) == [
        TensorInfo((4, 10))]
    with pytest.raises(ShapeError, match=r"logits is \[4, 10\] but softmax is \[4, 9\]"):
        infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (4, 9), ()])
    with pytest.raises(ShapeError, match=r"weights are \[5\]"):
        infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (5,), (4, 10), ()])


@pytest.mark.parametrize("x_shape, label_shape", [((4, 10), (4,)), ((4, 10), (4, 1)),
                                                  ((4, 2, 5), (4,)), ((10,), (1,))])
def test_label_cross_entropy_matches_numpy(x_shape, label_shape):
    x = np.random.rand(*x_shape).reshape(x_shape[0] if len(x_shape) > 1 else 1, -1)
    label = np.zeros(label_shape, dtype=np.int32).ravel()
    expected = (-np.log(x[np.arange(x.shape[0]), label])).shape
    assert infer("LabelCrossEntropy", [x_shape, ints(*label_shape)]) == [
        TensorInfo(expected, "float32")]
    assert infer("LabelCrossEntropyGradient", [x_shape, ints(*label_shape), expected]) == [
        TensorInfo(x_shape)]


def test_label_cross_entropy_errors():
    with pytest.raises(ShapeError, match=r"X \[4, 10\] is a batch of N=4, D=10, but label is "
                                         r"\[4, 2\]: label must be \[4\] or \[4, 1\]"):
        infer("LabelCrossEntropy", [(4, 10), ints(4, 2)])
    with pytest.raises(ShapeError, match=r"label is \[3\]"):
        infer("LabelCrossEntropy", [(4, 10), ints(3)])
    with pytest.raises(ShapeError, match="label must be int32"):
        infer("LabelCrossEntropy", [(4, 10), TensorInfo((4,), "int64")])
    with pytest.raises(ShapeError, match="X must have at least one dim"):
        infer("LabelCrossEntropy", [(), ints(1)])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but the batch has N=4"):
        infer("LabelCrossEntropyGradient", [(4, 10), ints(4), (3,)])
    assert infer("LabelCrossEntropy", [None, ints(4)]) == [TensorInfo((4,))]
    assert infer("LabelCrossEntropy", [None, None]) == [None]


@pytest.mark.parametrize("shape", [(4, 10), (4, 2, 5)])
def test_cross_entropy_matches_numpy(shape):
    x = np.random.rand(*shape).reshape(shape[0], -1)
    expected = (-(x * np.log(x)).sum(axis=1)).shape
    label = (shape[0], int(np.prod(shape[1:])))
    assert infer("CrossEntropy", [shape, label]) == [TensorInfo(expected)]
    assert infer("CrossEntropyGradient", [shape, label, expected]) == [TensorInfo(shape)]


def test_cross_entropy_errors():
    with pytest.raises(ShapeError, match=r"label is \[4, 9\]: label must be \[4, 10\]"):
        infer("CrossEntropy", [(4, 10), (4, 9)])
    with pytest.raises(ShapeError, match=r"label is \[4\]: label must be \[4, 10\]"):
        infer("CrossEntropy", [(4, 10), (4,)])
    assert infer("CrossEntropy", [(4, 1), (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"dY is \[4, 1\] but the batch has N=4"):
        infer("CrossEntropyGradient", [(4, 10), (4, 10), (4, 1)])


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), ()])
def test_averaged_loss_is_a_scalar(shape):
    assert infer("AveragedLoss", [shape]) == [TensorInfo(np.mean(np.ones(shape)).shape)]
    assert infer("AveragedLossGradient", [shape, ()]) == [TensorInfo(shape)]
    with pytest.raises(ShapeError, match=r"dY is \[2\] but must hold one element"):
        infer("AveragedLossGradient", [shape, (2,)])


@pytest.mark.parametrize("shape", [(4, 3), (4,), (2, 3, 4)])
def test_squared_l2_distance_matches_numpy(shape):
    x, y = np.random.rand(*shape), np.random.rand(*shape)
    expected = (0.5 * ((x - y) ** 2).reshape(shape[0], -1).sum(axis=1)).shape
    assert infer("SquaredL2Distance", [shape, shape]) == [TensorInfo(expected)]
    assert infer("SquaredL2Distance", [None, shape]) == [TensorInfo(expected)]
    assert infer("SquaredL2DistanceGradient", [shape, None, expected], n_out=2) == [
        TensorInfo(shape), TensorInfo(shape)]


def test_squared_l2_distance_errors():
    assert infer("SquaredL2Distance", [(), ()]) == [TensorInfo((1,))]
    with pytest.raises(ShapeError, match=r"X is \[4, 3\] but Y is \[4, 2\]"):
        infer("SquaredL2Distance", [(4, 3), (4, 2)])
    with pytest.raises(ShapeError, match=r"dZ is \[3\] but the batch has N=4"):
        infer("SquaredL2DistanceGradient", [(4, 3), (4, 3), (3,)])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (7,), ()])
def test_sigmoid_cross_entropy_matches_numpy(shape):
    x = np.random.rand(*shape)
    expected = np.mean(np.atleast_1d(x), axis=-1).shape if shape else ()
    assert infer("SigmoidCrossEntropyWithLogits", [shape, shape]) == [TensorInfo(expected)]
    assert infer("SigmoidCrossEntropyWithLogitsGradient", [expected, shape, shape]) == [
        TensorInfo(shape)]


def test_sigmoid_cross_entropy_errors():
    with pytest.raises(ShapeError, match=r"logits is \[4, 3\] but targets is \[4, 2\]"):
        infer("SigmoidCrossEntropyWithLogits", [(4, 3), (4, 2)])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but logits are \[4, 3\]"):
        infer("SigmoidCrossEntropyWithLogitsGradient", [(3,), (4, 3), (4, 3)])
    assert infer("SigmoidCrossEntropyWithLogits", [None, None]) == [None]


def test_accuracy():
    scores, labels = np.random.rand(4, 10), np.zeros(4, dtype=np.int32)
    expected = np.mean(scores.argmax(axis=1) == labels).shape
    assert infer("Accuracy", [(4, 10), ints(4)], top_k=3) == [TensorInfo(expected, "float32")]
    assert infer("Accuracy", [None, None]) == [SCALAR]
    with pytest.raises(ShapeError, match=r"predictions must be 2-D \[N, D\], got \[4\]"):
        infer("Accuracy", [(4,), ints(4)])
    with pytest.raises(ShapeError, match=r"predictions are \[4, 10\] but labels are \[3\]"):
        infer("Accuracy", [(4, 10), ints(3)])
    with pytest.raises(ShapeError, match="top_k 11 exceeds the 10 classes"):
        infer("Accuracy", [(4, 10), ints(4)], top_k=11)
    with pytest.raises(ShapeError, match="labels must be 1-D"):
        infer("Accuracy", [(4, 10), ints(4, 1)])


def test_losses_keep_a_float64_input_type():
    f64 = TensorInfo((4, 10), "float64")
    assert infer("SoftmaxWithLoss", [f64, ints(4)], n_out=2)[1] == TensorInfo((), "float64")
    assert infer("LabelCrossEntropy", [f64, ints(4)]) == [TensorInfo((4,), "float64")]
    assert infer("CrossEntropy", [f64, f64]) == [TensorInfo((4,), "float64")]
    assert infer("AveragedLoss", [f64]) == [TensorInfo((), "float64")]
    assert infer("SigmoidCrossEntropyWithLogits", [f64, f64]) == [TensorInfo((4,), "float64")]
    assert infer("Accuracy", [f64, ints(4)]) == [SCALAR]
