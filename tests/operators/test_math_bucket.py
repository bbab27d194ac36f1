"""Math_bucket family: Bucketize, BatchBucketize, BatchBoxCox, Percentile and
BisectPercentile against NumPy references (loops over elements, independent of the
kernels' vectorised forms), inference and error rows."""
import bisect

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


# --- Bucketize ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (3, 4), (0, 2)], ids=str)
@pytest.mark.parametrize("boundaries", [[0.1, 2.5], [-1.0], [], [-2.0, 0.0, 0.0, 3.0]], ids=str)
def test_bucketize(shape, boundaries):
    x = RNG.uniform(-5, 5, shape).astype(np.float32)
    x.reshape(-1)[:2] = np.float32(boundaries[0]) if boundaries else 0  # values on a boundary
    (y,) = check_reference("Bucketize", [x], lambda x, boundaries: np.digitize(x, np.float32(boundaries), right=True),
                           {"boundaries": boundaries})
    assert y.dtype == np.int32


def test_bucketize_examples_and_nan():
    (y,) = run_op("Bucketize", [np.array([2, 4, 1, np.nan], np.float32)], {"boundaries": [0.1, 2.5]})
    np.testing.assert_array_equal(y, [1, 2, 1, 0])


@pytest.mark.parametrize("x, args, pattern", [
    (np.ones(3, np.float32), {"boundaries": [2.5, 1.5]}, r"boundaries must be in ascending order, got \[2.5, 1.5\]"),
    (np.array(1.0, np.float32), {}, "data must be at least 1-D, got a 0-d tensor"),
    (np.ones(3), {}, r"data is float64 \[3\], must be a float32 tensor"),
])
def test_bucketize_errors(x, args, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Bucketize", [x], args)
    with pytest.raises(ShapeError, match=pattern):
        infer("Bucketize", [TensorInfo(x.shape, x.dtype.name)], **args)


# --- BatchBucketize -------------------------------------------------------------------------------

def batch_bucketize_reference(x, indices, boundaries, lengths):
    out = np.zeros((x.shape[0], len(indices)), np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(x.shape[0]):
        for j, column in enumerate(indices):
            bounds = boundaries[starts[j]:starts[j + 1]]
            out[i, j] = next((k for k, b in enumerate(bounds) if x[i, column] <= b), len(bounds))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_batch_bucketize(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4, 4, (5, 6)).astype(np.float32)
    indices = rng.choice(6, 4, replace=False).astype(np.int32)
    lengths = rng.integers(0, 4, 4).astype(np.int32)
    boundaries = np.sort(rng.uniform(-4, 4, lengths.sum())).astype(np.float32)
    (y,) = check_reference("BatchBucketize", [x, indices, boundaries, lengths], batch_bucketize_reference)
    assert y.dtype == np.int32


@pytest.mark.parametrize("indices, lengths, bounds, pattern", [
    ([0, 5], [1, 1], 2, r"indices \[5\] are out of range for float_features' 5 columns"),
    ([0, 1], [1, 2], 2, "lengths sum to 3 but boundaries has 2 entries"),
    ([0, 1], [3, -1], 2, r"lengths must be >= 0, got \[3, -1\]"),
    ([0, 1], [1], 1, "indices has 2 entries but lengths has 1: one length per index"),
])
def test_batch_bucketize_errors(indices, lengths, bounds, pattern):
    inputs = [np.ones((2, 5), np.float32), np.array(indices, np.int32), np.zeros(bounds, np.float32),
              np.array(lengths, np.int32)]
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("BatchBucketize", inputs)


def test_batch_bucketize_inference():
    int32 = [TensorInfo((3,), "int32")]
    assert infer("BatchBucketize", [TensorInfo((4, 6)), int32[0], TensorInfo((7,)), int32[0]]) == [
        TensorInfo((4, 3), "int32")]
    with pytest.raises(ShapeError, match=r"float_features must be 2-D, got \[4\]"):
        infer("BatchBucketize", [TensorInfo((4,)), int32[0], TensorInfo((7,)), int32[0]])


# --- BatchBoxCox ----------------------------------------------------------------------------------

def box_cox_reference(data, lambda1, lambda2, **_):
    out = np.copy(data).reshape(data.shape[0], -1) if data.size else np.copy(data)
    for j in range(out.shape[1] if data.size else 0):
        z = np.maximum(out[:, j] + lambda2[j], 1e-6)
        out[:, j] = np.log(z) if lambda1[j] == 0 else (np.power(z, lambda1[j]) - 1) / lambda1[j]
    return out.reshape(data.shape)


@pytest.mark.parametrize("data, lambda1, lambda2", [
    ([[1, 2, 3, 4, 5]], [0, -.5, 0, .5, 0], [0.1, 0.2, 0.3, 0.4, 0.5]),
    ([[1, 2, 3], [4, 5, 6]], [0, 0, 0], [0, 0, 0]),
    ([[1e-5, 1e-6, 1e-7], [1e-7, -1e-6, 1e-5]], [0, 0, 0], [0, 0, 1e-6]),
    ([[-3.0, 0.5], [2.0, 7.0]], [1.5, -2.0], [-1.0, 0.3]),
], ids=["mixed", "zeros", "near-zero-base", "clamped"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_box_cox(data, lambda1, lambda2, dtype):
    inputs = [np.array(v, dtype) for v in (data, lambda1, lambda2)]
    (y,) = check_reference("BatchBoxCox", inputs, box_cox_reference, {"min_block_size": 6}, rtol=1e-5)
    assert y.dtype == dtype


def test_batch_box_cox_on_more_dims_and_empty():
    data = RNG.uniform(0.5, 3, (2, 2, 3)).astype(np.float32)
    lambdas = [RNG.uniform(-1, 1, 6).astype(np.float32), RNG.uniform(0, 1, 6).astype(np.float32)]
    check_reference("BatchBoxCox", [data] + lambdas, box_cox_reference)
    (y,) = run_op("BatchBoxCox", [np.zeros((0, 3), np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32)])
    assert y.shape == (0, 3)


@pytest.mark.parametrize("data, lambda1, pattern", [
    (np.ones((2, 3), np.float32), np.ones(2, np.float32), r"lambda1 has 2 entries but data \[2, 3\] has 3 columns"),
    (np.ones((2, 3), np.float32), np.ones(3), "lambda1 is float64 but data is float32: they must match"),
    (np.ones((2, 3), np.int32), np.ones(3, np.int32), r"data is int32 \[2, 3\], must be a float tensor"),
    (np.array(1.0, np.float32), np.ones(1, np.float32), "data must be at least 1-D"),
])
def test_batch_box_cox_errors(data, lambda1, pattern):
    inputs = [data, lambda1, np.zeros(lambda1.shape, lambda1.dtype)]
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("BatchBoxCox", inputs)
    with pytest.raises(ShapeError, match=pattern):
        infer("BatchBoxCox", [TensorInfo(v.shape, v.dtype.name) for v in inputs])


# --- Percentile -----------------------------------------------------------------------------------

def percentile_reference(values, pairs, lengths):
    out = np.zeros(values.shape, np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            samples = list(pairs[starts[j]:starts[j + 1], 0])
            pcts = pairs[starts[j]:starts[j + 1], 1]
            x, k = values[i, j], bisect.bisect_left(samples, values[i, j])
            if k == len(samples):
                out[i, j] = 1.0
            elif x == samples[k]:
                out[i, j] = pcts[k]
            elif k == 0:
                out[i, j] = 0.0
            else:
                w = (x - samples[k - 1]) / (samples[k] - samples[k - 1])
                out[i, j] = pcts[k - 1] + w * (pcts[k] - pcts[k - 1])
    return out


def test_percentile_example_and_interpolation():
    values = np.array([[3, 5, 3], [5, 1, 6], [4, 0, 2]], np.float32)
    pairs = np.array([[3, 0.2], [5, 0.5], [1, 0.3], [3, 0.6]], np.float32)
    lengths = np.array([2, 1, 1], np.int32)
    (y,) = check_reference("Percentile", [values, pairs, lengths], percentile_reference)
    np.testing.assert_allclose(y[:2], [[0.2, 1.0, 0.6], [0.5, 0.3, 1.0]])
    assert y[2, 0] == pytest.approx(0.35) and y.dtype == np.float32


def test_percentile_random():
    values = RNG.uniform(0, 10, (6, 3)).astype(np.float32)
    lengths = np.array([4, 1, 5], np.int32)
    samples = np.concatenate([np.sort(RNG.uniform(0, 10, n)) for n in lengths])
    pcts = np.concatenate([np.sort(RNG.uniform(0, 1, n)) for n in lengths])
    pairs = np.stack([samples, pcts], axis=1).astype(np.float32)
    check_reference("Percentile", [values, pairs, lengths], percentile_reference)


@pytest.mark.parametrize("values, pairs, lengths, pattern", [
    ((2, 3), (4, 2), [2, 2], r"lengths has 2 entries but original_values \[2, 3\] has 3 columns"),
    ((2, 3), (4, 3), [2, 1, 1], r"value_to_pct must be \[V, 2\], got \[4, 3\]"),
    ((2, 3), (4, 2), [2, 1, 2], "lengths sum to 5 but value_to_pct has 4 entries"),
    ((6,), (4, 2), [4], r"original_values must be 2-D, got \[6\]"),
])
def test_percentile_errors(values, pairs, lengths, pattern):
    inputs = [np.ones(values, np.float32), np.ones(pairs, np.float32), np.array(lengths, np.int32)]
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Percentile", inputs)


def test_percentile_inference():
    inputs = [TensorInfo((2, 3)), TensorInfo((5, 2)), TensorInfo((3,), "int32")]
    assert infer("Percentile", inputs) == [TensorInfo((2, 3))]


# --- BisectPercentile -----------------------------------------------------------------------------

BISECT_ARGS = {"percentile_raw": [1.0, 2.0, 4.0, 0.0, 5.0], "percentile_mapping": [0.1, 0.4, 0.9, 0.2, 0.8],
               "percentile_lower": [0.05, 0.35, 0.85, 0.15, 0.75],
               "percentile_upper": [0.15, 0.45, 0.95, 0.25, 0.85], "lengths": [3, 2]}


def bisect_reference(raw_data, percentile_raw, percentile_mapping, percentile_lower, percentile_upper, lengths):
    out = np.zeros(raw_data.shape, np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(raw_data.shape[0]):
        for j in range(raw_data.shape[1]):
            s = slice(starts[j], starts[j + 1])
            raw, mapping = percentile_raw[s], percentile_mapping[s]
            lower, upper, x = percentile_lower[s], percentile_upper[s], raw_data[i, j]
            k = bisect.bisect_left(raw, x)
            if x < raw[0]:
                out[i, j] = 0.0
            elif x > raw[-1]:
                out[i, j] = 1.0
            elif raw[k] == x:
                out[i, j] = mapping[k]
            else:
                w = (x - raw[k - 1]) / (raw[k] - raw[k - 1] + 1e-10)
                out[i, j] = (1 - w) * upper[k - 1] + w * lower[k]
    return out


def test_bisect_percentile():
    raw_data = np.array([[0.5, -1], [1, 0], [1.5, 2.5], [4, 5], [3, 6]], np.float32)
    (y,) = check_reference("BisectPercentile", [raw_data], bisect_reference, BISECT_ARGS)
    np.testing.assert_allclose(y[:, 0], [0, 0.1, 0.25, 0.9, 0.65], atol=1e-6)


@pytest.mark.parametrize("change, pattern", [
    ({"percentile_mapping": [0.1]}, "percentile_mapping has 1 entries but percentile_raw has 5"),
    ({"lengths": [3, 3]}, "lengths sum to 6 but percentile_raw has 5 entries"),
    ({"lengths": [5, 0]}, r"lengths must be >= 1, got \[5, 0\]"),
])
def test_bisect_percentile_arg_errors(change, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("BisectPercentile", [np.ones((2, 2), np.float32)], {**BISECT_ARGS, **change})


def test_bisect_percentile_input_errors_and_inference():
    with pytest.raises((OpFailure, NetError), match=r"raw_data \[2, 3\] has 3 features but lengths has 2"):
        run_op("BisectPercentile", [np.ones((2, 3), np.float32)], BISECT_ARGS)
    with pytest.raises((OpFailure, NetError), match=r"raw_data must be 2-D, got \[4\]"):
        run_op("BisectPercentile", [np.ones(4, np.float32)], BISECT_ARGS)


@pytest.mark.parametrize("op_type, inputs", [("Bucketize", ["X"]), ("BatchBucketize", ["F", "I", "B", "L"]),
                                             ("Percentile", ["V", "P", "L"]), ("BisectPercentile", ["X"])])
def test_no_gradient(op_type, inputs):
    ops, grads = GetGradientForOp(make_op(op_type, inputs, ["Y"]), ["Y_grad"])
    assert ops == [] and set(grads) == {None}
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("BatchBoxCox", ["D", "L1", "L2"], ["Y"]), ["Y_grad"])
