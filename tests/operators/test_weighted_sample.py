"""weighted_sample family (WeightedSample, WeightedMultiSampling): one-hot weights
against their only possible index, the frequencies of many draws against the
weights, the values picked with the indices, shape inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import make_op, run_op
from tests.schema import infer

FAILS = (OpFailure, NetError)
RNG = np.random.default_rng(5)


def test_weighted_sample_one_hot_rows_pick_their_index_and_value():
    hot = np.array([2, 0, 3, 1])
    weights = np.zeros((4, 5), np.float32)
    weights[np.arange(4), hot] = 1.0
    values = RNG.random((4, 5)).astype(np.float32)
    indices, picked = run_op("WeightedSample", [weights, values], num_outputs=2)
    np.testing.assert_array_equal(indices, hot.reshape(4, 1).astype(np.int32))
    np.testing.assert_array_equal(picked, values[np.arange(4), hot].reshape(4, 1))
    (only,) = run_op("WeightedSample", [weights])
    assert only.dtype == np.int32 and only.shape == (4, 1)
    np.testing.assert_array_equal(only[:, 0], hot)


def test_weighted_sample_frequencies_follow_the_weights():
    weights = np.tile(np.array([[1.0, 0.0, 3.0, 4.0]], np.float32), (4000, 1))
    (indices,) = run_op("WeightedSample", [weights])
    counts = np.bincount(indices[:, 0], minlength=4) / 4000
    np.testing.assert_allclose(counts, [0.125, 0.0, 0.375, 0.5], atol=0.03)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_weighted_sample_empty(shape):
    indices, values = run_op("WeightedSample", [np.zeros(shape, np.float32)] * 2, num_outputs=2)
    assert (indices.shape, indices.dtype, values.shape, values.dtype) == ((0,), np.int32, (0,), np.float32)
    assert infer("WeightedSample", [shape, shape], n_out=2) == [TensorInfo((0,), "int32"), TensorInfo((0,))]


def test_weighted_sample_seed_repeats_the_draws():
    weights = RNG.random((20, 6)).astype(np.float32)
    assert np.array_equal(run_op("WeightedSample", [weights], seed=3)[0],
                          run_op("WeightedSample", [weights], seed=3)[0])


def test_weighted_multi_sampling_from_a_cdf():
    cdf = np.array([0.0, 0.0, 1.5], np.float32)
    (indices,) = run_op("WeightedMultiSampling", [cdf], {"num_samples": 7})
    np.testing.assert_array_equal(indices, np.full(7, 2, np.int32))
    cdf = np.array([0.2, 0.5, 0.5, 1.0], np.float32)
    (indices,) = run_op("WeightedMultiSampling", [cdf], {"num_samples": 8000})
    np.testing.assert_allclose(np.bincount(indices, minlength=4) / 8000, [0.2, 0.3, 0.0, 0.5], atol=0.03)
    (shaped,) = run_op("WeightedMultiSampling", [cdf, np.zeros((2, 3))])
    assert shaped.shape == (2, 3) and shaped.dtype == np.int32 and shaped.min() >= 0 and shaped.max() < 4
    (empty,) = run_op("WeightedMultiSampling", [np.zeros(0, np.float32)], {"num_samples": 5})
    assert empty.shape == (0,)
    (none,) = run_op("WeightedMultiSampling", [cdf])
    assert none.shape == (0,)


def test_weighted_sampling_inference():
    assert infer("WeightedSample", [(3, 4)]) == [TensorInfo((3, 1), "int32")]
    assert infer("WeightedSample", [(3, 4), (3, 4)], n_out=2) == [TensorInfo((3, 1), "int32"), TensorInfo((3, 1))]
    assert infer("WeightedMultiSampling", [(4,)], num_samples=6) == [TensorInfo((6,), "int32")]
    assert infer("WeightedMultiSampling", [(4,), (2, 5)]) == [TensorInfo((2, 5), "int32")]
    assert infer("WeightedMultiSampling", [(0,)], num_samples=6) == [TensorInfo((0,), "int32")]


@pytest.mark.parametrize("op_type", ["WeightedSample", "WeightedMultiSampling"])
def test_weighted_sampling_has_no_gradient(op_type):
    with pytest.raises(GradientError):
        GetGradientForOp(make_op(op_type, ["W"], ["I"]), ["I_grad"])


@pytest.mark.parametrize("op_type, inputs, args, n_out, message", [
    ("WeightedSample", [np.ones(3, np.float32)], {}, 1, r"2-D float tensor \[batch, weights_dim\]"),
    ("WeightedSample", [np.ones((2, 3))], {}, 1, "2-D float tensor"),
    ("WeightedSample", [np.ones((2, 3), np.float32), np.ones((2, 2), np.float32)], {}, 2,
     "must be float like sampling_weights"),
    ("WeightedSample", [np.ones((2, 3), np.float32)], {}, 2, "as many outputs as inputs"),
    ("WeightedMultiSampling", [np.ones((2, 2), np.float32)], {}, 1, "1-D float tensor"),
    ("WeightedMultiSampling", [np.ones(2, np.float32), np.ones(3)], {"num_samples": 3}, 1,
     "do not also give num_samples"),
])
def test_weighted_sampling_shape_errors(op_type, inputs, args, n_out, message):
    infos = [TensorInfo(v.shape, v.dtype.name) for v in inputs]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos, n_out=n_out, **args)
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args, num_outputs=n_out)


@pytest.mark.parametrize("op_type, inputs, message", [
    ("WeightedSample", [np.array([[1.0, -1.0]], np.float32)], "finite and non-negative"),
    ("WeightedMultiSampling", [np.array([0.5, 0.2], np.float32)], "non-decreasing"),
])
def test_weighted_sampling_value_errors(op_type, inputs, message):
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, {"num_samples": 2} if op_type == "WeightedMultiSampling" else {})


def test_weighted_multi_sampling_refuses_a_huge_sample_count():
    with pytest.raises(FAILS, match="cap|large|limit|exceed"):
        run_op("WeightedMultiSampling", [np.ones(2, np.float32)], {"num_samples": 2**40})
