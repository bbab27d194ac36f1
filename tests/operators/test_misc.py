"""The misc family: AliasWithName, HasElements, SinusoidPositionEncoding,
PiecewiseLinearTransform, Quantile, DataCouple and Assert against NumPy references, inference and
errors (none of them has a gradient in Caffe2)."""
import math

import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("value", [np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0, 2), np.int64)])
def test_alias_with_name(value):
    check_reference("AliasWithName", [value], lambda x, **a: [x], {"name": "alias", "is_backward": True})


@pytest.mark.parametrize("shapes, expected", [([(2,)], True), ([(0,)], False), ([(0, 3), (0,)], False),
                                              ([(0, 3), (1,)], True), ([()], True)])
def test_has_elements(shapes, expected):
    inputs = [np.zeros(s, np.float32) for s in shapes]
    check_reference("HasElements", inputs, lambda *x: [np.array(expected)])
    check_reference("IsEmpty", inputs[:1], lambda x: [np.array(np.size(x) == 0)])


def sinusoid_reference(positions, embedding_size=100, alpha=10000.0, amplitude=1.0):
    out = np.zeros((*positions.shape, embedding_size))
    for i in range(positions.shape[0]):
        for j in range(positions.shape[1]):
            for k in range(embedding_size):
                x = positions[i, 0] / math.pow(alpha, k / embedding_size)
                out[i, j, k] = amplitude * (math.sin(x) if k % 2 == 0 else math.cos(x))
    return [out.astype(np.float32)]


@pytest.mark.parametrize("args", [{}, {"embedding_size": 7, "alpha": 5000.0, "amplitude": 2.5},
                                  {"embedding_size": 1}])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_sinusoid_position_encoding(args, dtype):
    positions = np.tile(RNG.integers(0, 10, (4, 1)), (1, 3)).astype(dtype)
    check_reference("SinusoidPositionEncoding", [positions], sinusoid_reference, args)


def piecewise_reference(x, bounds, slopes, intercepts):
    """One group, by the definition: clamp, then the piece whose (b_k, b_k+1] holds x."""
    y = np.empty_like(x)
    for i, v in enumerate(x):
        v = min(max(v, bounds[0]), bounds[-1])
        k = 0
        while k < len(slopes) - 1 and v > bounds[k + 1]:
            k += 1
        y[i] = slopes[k] * v + intercepts[k]
    return y


def piecewise_params(groups, pieces):
    bounds = np.sort(RNG.uniform(0.1, 0.9, (groups, pieces + 1)), axis=1).astype(np.float32)
    return bounds, RNG.uniform(-1, 1, (groups, pieces)).astype(np.float32), \
        RNG.uniform(-1, 1, (groups, pieces)).astype(np.float32)


@pytest.mark.parametrize("pieces", [1, 3])
@pytest.mark.parametrize("from_args", [True, False])
def test_piecewise_linear_transform(pieces, from_args):
    b, s, c = piecewise_params(3, pieces)
    x = RNG.uniform(0, 1, (5, 3)).astype(np.float32)

    def reference(x, *params, **args):
        return [np.stack([piecewise_reference(x[:, j], b[j], s[j], c[j]) for j in range(3)], 1)]
    if from_args:
        args = {"bounds": b.ravel().tolist(), "slopes": s.ravel().tolist(), "intercepts": c.ravel().tolist()}
        check_reference("PiecewiseLinearTransform", [x], reference, args)
    else:
        check_reference("PiecewiseLinearTransform", [x, b, s, c], reference)


@pytest.mark.parametrize("shape", [(6,), (6, 1), (6, 2)])
def test_piecewise_linear_transform_binary(shape):
    b, s, c = (v[0] for v in piecewise_params(1, 4))
    x = RNG.uniform(0, 1, shape).astype(np.float32)

    def reference(x, *params, **args):
        if len(shape) == 2 and shape[1] == 2:
            y = piecewise_reference(x[:, 1], b, s, c)
            return [np.stack([1 - y, y], 1)]
        return [piecewise_reference(x.ravel(), b, s, c).reshape(shape)]
    check_reference("PiecewiseLinearTransform", [x, b, s, c], reference, {"binary": True})


def quantile_reference(tensors, quantile, use_abs):
    values = np.sort(np.concatenate([t.ravel() for t in tensors]))
    values = np.sort(np.abs(values)) if use_abs else values
    return values, int(np.ceil(values.size * quantile))


@pytest.mark.parametrize("quantile, use_abs, tol", [(0.2, True, 1e-4), (1e-6, False, 1e-3), (0.5, False, 1e-5),
                                                    (1.0, True, 1e-3), (0.0, False, 1e-3), (0.7, True, 1e-4)])
def test_quantile(quantile, use_abs, tol):
    tensors = [RNG.standard_normal((4, 3)), RNG.standard_normal(7)]
    (q,) = run_op("Quantile", tensors, {"quantile": quantile, "abs": use_abs, "tol": tol})
    values, target = quantile_reference(tensors, quantile, use_abs)
    assert q.shape == (1,) and q.dtype == np.float64
    assert np.sum(values <= q[0]) >= target  # the property Caffe2's test checks
    assert np.sum(values <= q[0] - 2.5 * tol * abs(q[0])) <= target
    assert values[0] <= q[0] <= values[-1]


def test_quantile_float32_inference():
    tensors = [RNG.standard_normal(5).astype(np.float32)]
    check_reference("Quantile", tensors, lambda x, **a: [np.array([np.sort(np.abs(x))[-1]], np.float32)],
                    {"quantile": 1.0})


@pytest.mark.parametrize("op_type", ["PiecewiseLinearTransform", "Quantile", "HasElements", "IsEmpty"])
def test_should_not_do_gradient(op_type):
    with pytest.raises(GradientError, match=f"should not call gradient for operator {op_type}"):
        GetGradientForOp(make_op(op_type, ["x"], ["y"]), ["y_grad"])


def test_inference():
    assert infer("SinusoidPositionEncoding", [TensorInfo((5, 2), "int32")], embedding_size=8) == [
        TensorInfo((5, 2, 8), "float32")]
    assert infer("HasElements", [(3,), (0,)]) == [TensorInfo((), "bool")]
    assert infer("IsEmpty", [(0,)]) == [TensorInfo((), "bool")]
    assert infer("Quantile", [(3,), (2, 2)], quantile=0.5) == [TensorInfo((1,), "float32")]
    assert infer("PiecewiseLinearTransform", [(4, 2)], bounds=[0.1, 0.9, 0.1, 0.9], slopes=[1.5, 1.5], intercepts=[0.5, 0.5]) == [
        TensorInfo((4, 2), "float32")]
    assert infer("AliasWithName", [(4, 2)], name="x") == [TensorInfo((4, 2), "float32")]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("SinusoidPositionEncoding", [TensorInfo((5,), "int32")], {}, "positions must be a 2-D int32 or int64 tensor"),
    ("Quantile", [(3,)], {}, r"quantile must be in \[0, 1\], got -1"),
    ("Quantile", [(3,), TensorInfo((2,), "float64")], {"quantile": 0.5}, "must be float or double tensors of one"),
    ("PiecewiseLinearTransform", [(4, 3)], {"bounds": [0.1, 0.9, 0.1, 0.9], "slopes": [1.5, 1.5], "intercepts": [0.5, 0.5]},
     "predictions have 3 columns for 2 groups"),
    ("PiecewiseLinearTransform", [(4, 2)], {"bounds": [0.1, 0.9], "slopes": [1.5]},
     "bounds, slopes and intercepts must be all set or all not set"),
    ("PiecewiseLinearTransform", [(4, 2)], {"bounds": [0.1, 0.9], "slopes": [1.5, 2.5], "intercepts": [0.5]},
     r"slopes \(2\) and intercepts \(1\) must have the same size"),
    ("PiecewiseLinearTransform", [(4, 3)], {"bounds": [0.1, 0.9], "slopes": [1.5], "intercepts": [0.5], "binary": True},
     r"with binary, predictions must be \[N\], \[N, 1\] or \[N, 2\]"),
    ("PiecewiseLinearTransform", [(4, 2), (2,), (1,)], {}, "without the parameters as args, the op takes 4 inputs"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match="bounds must be sorted within each group"):
        run_op("PiecewiseLinearTransform", [np.zeros((2, 1), np.float32)],
               {"bounds": [1.0, 0.0], "slopes": [1.0], "intercepts": [0.0]})
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("SinusoidPositionEncoding", [np.zeros((2, 2), np.int32)], {"embedding_size": 10**12})
    with pytest.raises((OpFailure, NetError), match="the inputs hold no element"):
        run_op("Quantile", [np.zeros(0, np.float32)], {"quantile": 0.5})


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_key_split(dtype):
    keys = RNG.integers(0, 4, 15).astype(dtype)
    expected = [np.array([i for i, k in enumerate(keys) if k == key], np.int32) for key in range(4)]
    check_reference("KeySplit", [keys], lambda k, **a: expected, {"categorical_limit": 4}, num_outputs=4)


def histogram_reference(x, lower_bound, upper_bound, num_buckets):
    hist = np.zeros(num_buckets + 2, np.int64)
    segment = (upper_bound - lower_bound) / num_buckets
    for v in x.ravel():
        if v < lower_bound:
            hist[0] += 1
        elif v >= upper_bound or np.isnan(v):
            hist[-1] += 1
        else:
            hist[int((v - lower_bound) / segment) + 1] += 1
    return hist


def test_accumulate_histogram():
    args = {"lower_bound": 0.1, "upper_bound": 0.9, "num_buckets": 4}
    x = RNG.random((5, 3)).astype(np.float32)
    x[0, 0] = np.nan
    check_reference("AccumulateHistogram", [x], lambda x_, **a: [histogram_reference(x_, **a)] * 2, args,
                    num_outputs=2)
    # AccHist accumulates over the runs of one op
    from pycaffe2.executor import Workspace
    workspace = Workspace("hist")
    net = caffe2_pb2.NetDef(name="n", op=[make_op("AccumulateHistogram", ["x"], ["cur", "acc"], args)])
    workspace.FeedBlob("x", x)
    workspace.CreateNet(net)
    second = RNG.random(7).astype(np.float32) * 2 - 0.5
    workspace.RunNet("n")
    workspace.FeedBlob("x", second)
    workspace.RunNet("n")
    np.testing.assert_array_equal(workspace.FetchBlob("cur"), histogram_reference(second, **args))
    np.testing.assert_array_equal(workspace.FetchBlob("acc"),
                                  histogram_reference(x, **args) + histogram_reference(second, **args))


def test_key_split_and_histogram_errors():
    with pytest.raises(ShapeError, match="categorical_limit 3 needs 3 outputs, got 2"):
        infer("KeySplit", [TensorInfo((4,), "int64")], 2, categorical_limit=3)
    with pytest.raises(ShapeError, match="X must be a float32 tensor, got int32"):
        infer("AccumulateHistogram", [TensorInfo((4,), "int32")], 2)
    assert infer("AccumulateHistogram", [(4,)], 2, num_buckets=3) == [TensorInfo((5,), "int64")] * 2
    with pytest.raises((OpFailure, NetError), match=r"key 5 is out of range \[0, 2\)"):
        run_op("KeySplit", [np.array([0, 5], np.int64)], {"categorical_limit": 2}, num_outputs=2)


# -- DataCouple / Assert -----------------------------------------------------------------------

def test_data_couple_passes_its_blobs_through_in_place():
    a, b, c = RNG.random((2, 3)), np.arange(4), np.array([b"x"], dtype=object)
    got = run_op("DataCouple", [a, b, c], input_names=["a", "b", "c"], output_names=["a", "b"])
    assert len(got) == 2
    np.testing.assert_array_equal(got[0], a)
    np.testing.assert_array_equal(got[1], b)
    assert infer("DataCouple", [(2, 3), (4,), (1,)], n_out=2) == [TensorInfo((2, 3)), TensorInfo((4,))]


def test_data_couple_needs_output_i_to_be_input_i():
    with pytest.raises((OpFailure, NetError), match=r"output 1 \('c'\) must be input 1 \('b'\)"):
        run_op("DataCouple", [np.ones(2), np.ones(2)], input_names=["a", "b"], output_names=["a", "c"])
    with pytest.raises(ShapeError, match="has 2 outputs but only 1 inputs"):
        infer("DataCouple", [(2,)], n_out=2)


@pytest.mark.parametrize("x", [np.ones((2, 3), bool), np.array([1, -2], np.int32), np.array(7, np.int64),
                               np.zeros((0, 2), np.int32)])
def test_assert_passes_when_all_true(x):
    assert run_op("Assert", [x]) == []
    assert infer("Assert", [TensorInfo(x.shape, x.dtype.name)], n_out=0) == []


@pytest.mark.parametrize("x", [np.array([True, False]), np.array([[1, 0]], np.int64)])
def test_assert_fails_with_its_message(x):
    with pytest.raises(OpFailure, match="Assert failed for input X: rows must be set"):
        run_op("Assert", [x], {"error_msg": "rows must be set"})


def test_assert_refuses_floats_and_has_no_gradient():
    with pytest.raises(ShapeError, match=r"X must be bool, int32 or int64, got \[2\] float32"):
        infer("Assert", [(2,)], n_out=0)
    with pytest.raises((OpFailure, NetError), match="X must be bool, int32 or int64"):
        run_op("Assert", [np.ones(2, np.float32)])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("DataCouple", ["X"], ["X"]), ["X_grad"])
