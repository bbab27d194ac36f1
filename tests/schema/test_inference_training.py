"""Inference rules of the training family, checked against NumPy where it applies."""
import numpy as np
import pytest

from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer

COUNTER = TensorInfo((1,), "int64")
LR = TensorInfo((1,), "float32")




def test_every_op_with_tensor_outputs_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "training"}
    assert len(family) == 9
    assert [name for name, s in family.items() if s.inference == "none"] == ["CreateMutex"]


def test_iter_counters():
    assert infer("Iter", []) == [COUNTER]
    assert infer("Iter", [COUNTER]) == [COUNTER]
    assert infer("AtomicIter", [None, COUNTER]) == [COUNTER]
    with pytest.raises(ShapeError, match=r"iter must be a one-element int64 tensor, "
                                         r"got \[1\] int32"):
        infer("Iter", [TensorInfo((1,), "int32")])
    with pytest.raises(ShapeError, match=r"got \[2\] int64"):
        infer("AtomicIter", [None, TensorInfo((2,), "int64")])


def test_learning_rate_is_a_scalar():
    lr = -0.1 * np.power(0.9, np.int64(7) // 2).astype(np.float32)
    assert infer("LearningRate", [COUNTER], base_lr=-0.1, policy="step") == [
        TensorInfo(lr.shape, lr.dtype.name)]
    assert infer("LearningRate", [None], base_lr=-0.1, policy="fixed") == [
        TensorInfo((), "float32")]
    with pytest.raises(ShapeError, match=r"iter must be a one-element int64 tensor"):
        infer("LearningRate", [(1,)], base_lr=-0.1, policy="fixed")


@pytest.mark.parametrize("n_pairs", [1, 2, 3])
def test_weighted_sum_matches_numpy(n_pairs):
    xs = [np.random.rand(2, 3).astype(np.float32) for _ in range(n_pairs)]
    ws = [np.random.rand(1).astype(np.float32) for _ in range(n_pairs)]
    expected = sum(w * x for w, x in zip(ws, xs))
    shapes = [s for x, w in zip(xs, ws) for s in (x.shape, w.shape)]
    assert infer("WeightedSum", shapes) == [TensorInfo(expected.shape, expected.dtype.name)]
    assert infer("WeightedSum", [None, (1,)] + shapes[2:]) == [
        None if n_pairs == 1 else TensorInfo((2, 3))]


def test_weighted_sum_errors():
    with pytest.raises(ShapeError, match=r"X_0 \[2, 3\], X_1 \[3, 2\]: these must have the same"):
        infer("WeightedSum", [(2, 3), (1,), (3, 2), (1,)])
    with pytest.raises(ShapeError, match=r"weight_1 must hold one element, got \[2\]"):
        infer("WeightedSum", [(2, 3), (1,), (2, 3), (2,)])


def test_weighted_sum_gradient():
    shapes = [(2, 3), (2, 3), (1,), (2, 3), ()]
    assert infer("WeightedSumGradient", shapes, n_out=2) == [TensorInfo((2, 3))] * 2
    out = infer("WeightedSumGradient", shapes, n_out=4, grad_on_w=1)
    assert out == [TensorInfo((2, 3))] * 2 + [TensorInfo((1,)), TensorInfo(())]
    with pytest.raises(ShapeError, match=r"dY \[2, 3\], X_0 \[2, 4\]"):
        infer("WeightedSumGradient", [(2, 3), (2, 4), (1,)])


def test_momentum_sgd_update():
    grad, moment, param = (np.zeros((3, 4), np.float32) for _ in range(3))
    step = 0.1 * grad + 0.9 * moment
    out = infer("MomentumSGDUpdate", [grad.shape, moment.shape, (1,), param.shape], n_out=3)
    assert out == [TensorInfo(step.shape), TensorInfo(step.shape), TensorInfo((param - step).shape)]
    assert infer("MomentumSGDUpdate", [None, None, None, (12,)], n_out=3) == [
        None, None, TensorInfo((12,))]
    with pytest.raises(ShapeError, match=r"lr must hold one element, got \[2\]"):
        infer("MomentumSGDUpdate", [(3, 4), (3, 4), (2,), (3, 4)], n_out=3)
    with pytest.raises(ShapeError, match=r"grad \[3, 4\], moment \[3, 5\], param \[3, 4\]: "
                                         r"these must hold the same number of elements"):
        infer("MomentumSGDUpdate", [(3, 4), (3, 5), (1,), (3, 4)], n_out=3)


def test_adagrad():
    out = infer("Adagrad", [(3, 4), (3, 4), (3, 4), (1,)], n_out=2)
    assert out == [TensorInfo((3, 4)), TensorInfo((3, 4))]
    assert infer("Adagrad", [(3, 4), (12,), (3, 4), ()], n_out=2)[1] == TensorInfo((12,))
    with pytest.raises(ShapeError, match=r"param \[3, 4\], moment \[3, 4\], grad \[4, 4\]"):
        infer("Adagrad", [(3, 4), (3, 4), (4, 4), (1,)], n_out=2)


def test_adam():
    shapes = [(3, 4), (3, 4), (3, 4), (3, 4), LR, COUNTER]
    assert infer("Adam", shapes, n_out=4) == [TensorInfo((3, 4))] * 4
    assert infer("Adam", shapes, n_out=3) == [TensorInfo((3, 4))] * 3
    with pytest.raises(ShapeError, match="iter must be a one-element int64 tensor"):
        infer("Adam", shapes[:5] + [LR], n_out=3)
    with pytest.raises(ShapeError, match=r"moment_2 \[3\]"):
        infer("Adam", [(3, 4), (3, 4), (3,), (3, 4), LR, COUNTER], n_out=3)
