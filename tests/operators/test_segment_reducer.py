"""The segment_reducer family: SortedSegment*, SparseSortedSegment*, UnsortedSegmentWeightedSum,
SparseUnsortedSegment* and SortedSegmentRange* against a per-segment NumPy loop, their gradient
ops against central differences (the sparse ones scattered back to DATA's rows), the makers,
inference and errors."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, numeric_gradient, run_op
from tests.schema import infer

REDUCE = {"Sum": lambda s: s.sum(0), "Mean": lambda s: s.mean(0), "WeightedSum": lambda s: s.sum(0),
          "Max": lambda s: s.max(0), "LogSumExp": lambda s: np.log(np.exp(s).sum(0)),
          "LogMeanExp": lambda s: np.log(np.exp(s).mean(0))}


def reference(data, ids, reducer, indices=None, weights=None, segments=None):
    """Segment by segment, as Caffe2's segment_ops_test does."""
    segments = segments if segments is not None else (int(max(ids)) + 1 if len(ids) else 0)
    out = np.zeros((segments, *data.shape[1:]), data.dtype)
    for k in range(segments):
        rows = [data[indices[j] if indices is not None else j].astype(np.float64)
                * (weights[j] if weights is not None else 1.0) for j in range(len(ids)) if ids[j] == k]
        if rows:
            out[k] = REDUCE[reducer](np.stack(rows))
    return out


def ints(values, dtype=np.int32):
    return np.array(values, dtype)


SORTED = ints([0, 0, 1, 2, 2, 2])
UNSORTED = ints([3, 0, 3, 1, 0, 3], np.int64)


def data_of(rng, rows, tail=(2, 3)):
    return rng.standard_normal((rows, *tail)).astype(np.float32)


@pytest.mark.parametrize("reducer", ["Sum", "Mean", "WeightedSum"])
@pytest.mark.parametrize("prefix", ["SortedSegment", "SparseSortedSegment", "UnsortedSegment",
                                    "SparseUnsortedSegment"])
def test_segment_reducers(prefix, reducer):
    if prefix == "UnsortedSegment" and reducer != "WeightedSum":
        pytest.skip("the segment family's")
    rng = np.random.default_rng(0)
    ids = SORTED if "Unsorted" not in prefix else UNSORTED
    sparse = prefix.startswith("Sparse")
    data = data_of(rng, 4 if sparse else 6)
    indices = ints([3, 3, 0, 1, 2, 3], np.int64) if sparse else None
    weights = rng.random(6).astype(np.float32) if reducer == "WeightedSum" else None
    inputs = [data] + ([weights] if weights is not None else []) + ([indices] if sparse else []) + [ids]
    check_reference(prefix + reducer, inputs,
                    lambda *a, **k: reference(data, ids, reducer, indices, weights))


def test_unsorted_num_segments():
    rng = np.random.default_rng(1)
    data, weights = data_of(rng, 6), rng.random(6).astype(np.float32)
    out = check_reference("UnsortedSegmentWeightedSum", [data, weights, UNSORTED],
                          lambda *a, **k: reference(data, UNSORTED, "Sum", weights=weights, segments=6),
                          {"num_segments": 6})[0]
    assert out.shape == (6, 2, 3)
    check_reference("SparseUnsortedSegmentMean", [data, ints([5, 4]), ints([1, 1])],
                    lambda *a, **k: reference(data, [1, 1], "Mean", [5, 4], segments=3), {"num_segments": 3})


@pytest.mark.parametrize("reducer", ["Sum", "Mean", "Max", "LogSumExp", "LogMeanExp"])
def test_sorted_segment_range(reducer):
    data = data_of(np.random.default_rng(2), 6)
    check_reference(f"SortedSegmentRange{reducer}", [data, SORTED], lambda d, i: reference(d, i, reducer))


def test_empty_segments():
    data = np.zeros((0, 3), np.float32)
    for op_type in ("SortedSegmentSum", "SortedSegmentRangeLogSumExp"):
        assert run_op(op_type, [data, ints([])])[0].shape == (0, 3)


def test_log_sum_exp_is_stable():
    data = np.array([[1000.0], [1000.0], [-np.inf]], np.float32)
    out = run_op("SortedSegmentRangeLogSumExp", [data, ints([0, 0, 1])])[0]
    np.testing.assert_allclose(out, [[1000.0 + np.log(2.0)], [-np.inf]], rtol=1e-6)


# -- gradients ---------------------------------------------------------------------------------------

def gradient_ops(op_type, inputs, **args):
    return GetGradientForOp(make_op(op_type, inputs, ["out"], args), ["out_grad"])


@pytest.mark.parametrize("reducer", ["Sum", "Mean", "WeightedSum"])
@pytest.mark.parametrize("prefix", ["SortedSegment", "UnsortedSegment"])
def test_dense_gradients(prefix, reducer):
    if prefix == "UnsortedSegment" and reducer != "WeightedSum":
        pytest.skip("the segment family's")
    rng = np.random.default_rng(3)
    ids = SORTED if prefix == "SortedSegment" else UNSORTED
    data, weights = rng.standard_normal((6, 2)), rng.random(6)
    d_out = rng.standard_normal((int(ids.max()) + 1, 2))
    weighted = reducer == "WeightedSum"
    names = ["d"] + (["w"] if weighted else []) + ["s"]
    (grad_op,), _ = gradient_ops(prefix + reducer, names)
    gradient_type = f"{prefix}{reducer}Gradient"
    assert (grad_op.type, list(grad_op.input), list(grad_op.output)) == (
        gradient_type, (["w"] if weighted else []) + ["out_grad", "s"], ["d_grad"])
    inputs = [data] + ([weights] if weighted else []) + [ids]
    check_gradient_op(prefix + reducer, inputs, gradient_type, ([weights] if weighted else []) + [d_out, ids],
                      {0: 0}, [d_out])


def scattered(values, indices, rows):
    dense = np.zeros((rows, *values.shape[1:]))
    np.add.at(dense, indices, values)
    return dense


@pytest.mark.parametrize("reducer", ["Sum", "Mean", "WeightedSum"])
@pytest.mark.parametrize("prefix", ["SparseSortedSegment", "SparseUnsortedSegment"])
def test_sparse_gradients(prefix, reducer):
    rng = np.random.default_rng(4)
    ids = SORTED if "Unsorted" not in prefix else UNSORTED
    data, weights, indices = rng.standard_normal((4, 2)), rng.random(6), ints([3, 3, 0, 1, 2, 3])
    d_out = rng.standard_normal((int(ids.max()) + 1, 2))
    weighted = reducer == "WeightedSum"
    (grad_op,), g_input = gradient_ops(prefix + reducer, ["d"] + (["w"] if weighted else []) + ["i", "s"])
    base = prefix[len("Sparse"):]
    assert grad_op.type == f"{base}{reducer}Gradient"
    assert list(grad_op.input) == (["w"] if weighted else []) + ["out_grad", "s"]
    assert (g_input[0].indices, g_input[0].values) == ("i", "d_grad_values")
    grad_inputs = ([weights] if weighted else []) + [d_out, ids]
    values = run_op(grad_op.type, grad_inputs)[0]
    inputs = [data] + ([weights] if weighted else []) + [indices, ids]
    np.testing.assert_allclose(scattered(values, indices, 4),
                               numeric_gradient(prefix + reducer, inputs, 0, [d_out]), atol=1e-3)
    # Caffe2 also registers the gradient op under the Sparse op's name, with the same result.
    np.testing.assert_allclose(run_op(f"{prefix}{reducer}Gradient", grad_inputs)[0], values)


def test_grad_on_weights_is_refused():
    with pytest.raises(GradientError, match="grad_on_weights"):
        gradient_ops("SortedSegmentWeightedSum", ["d", "w", "s"], grad_on_weights=1)


@pytest.mark.parametrize("reducer", ["Sum", "Mean", "Max", "LogSumExp", "LogMeanExp"])
def test_range_gradients(reducer):
    rng = np.random.default_rng(5)
    data, d_out = rng.standard_normal((6, 2)), rng.standard_normal((3, 2))
    op_type = f"SortedSegmentRange{reducer}"
    (grad_op,), _ = gradient_ops(op_type, ["d", "s"])
    assert (grad_op.type, list(grad_op.input)) == (f"{op_type}Gradient", ["d", "out", "out_grad", "s"])
    out = run_op(op_type, [data, SORTED])[0]
    check_gradient_op(op_type, [data, SORTED], grad_op.type, [data, out, d_out, SORTED], {0: 0}, [d_out])


# -- inference and errors ----------------------------------------------------------------------------

def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("SortedSegmentSum", [(6, 3), i32(6)]) == [None]
    assert infer("SparseUnsortedSegmentWeightedSum", [(9, 3), (5,), i32(5), i32(5)], num_segments=4)[0] == \
        TensorInfo((4, 3))
    assert infer("SortedSegmentWeightedSumGradient", [(6,), (2, 3), i32(6)])[0] == TensorInfo((6, 3))
    assert infer("SortedSegmentRangeMaxGradient", [(6, 3), (2, 3), (2, 3), i32(6)])[0] == TensorInfo((6, 3))


@pytest.mark.parametrize("op_type, shapes, message", [
    ("SortedSegmentSum", [(6, 3), i32(5)], r"one id per slice of DATA \[6, 3\]"),
    ("SortedSegmentSum", [TensorInfo((6,), "int32"), i32(6)], "DATA must be a float32 or float64"),
    ("SparseSortedSegmentMean", [(6, 3), i32(4), i32(5)], r"one id per entry of INDICES \[4\]"),
    ("SortedSegmentWeightedSum", [(6, 3), (5,), i32(6)], r"SCALARS \[5\] must hold one weight"),
    ("SortedSegmentRangeMax", [(6, 3), i32(6, 1)], "SEGMENT_IDS must be a 1-D int32"),
    ("SparseUnsortedSegmentSum", [(6, 3), TensorInfo((4,), "float32"), i32(4)], "INDICES must be a 1-D int"),
    ("SortedSegmentRangeSumGradient", [(6, 3), (2, 3), (3, 3), i32(6)], "must have the same shape"),
    ("SortedSegmentSumGradient", [(2,), TensorInfo((6,), "float32")], "SEGMENT_IDS must be a 1-D int"),
])
def test_inference_errors(op_type, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("SortedSegmentSum", [np.ones((3, 2), np.float32), ints([0, 2, 2])], {}, "not have gaps"),
    ("SortedSegmentRangeMean", [np.ones((3, 2), np.float32), ints([1, 1, 2])], {}, "start at 0"),
    ("SortedSegmentMean", [np.ones((3, 2), np.float32), ints([0, 1, 0])], {}, "must be sorted"),
    ("SparseSortedSegmentSum", [np.ones((3, 2), np.float32), ints([0, 3]), ints([0, 0])], {},
     r"INDICES\[1\] = 3 is out of range"),
    ("SparseUnsortedSegmentSum", [np.ones((3, 2), np.float32), ints([0, 1]), ints([0, -1])], {},
     r"segment id -1 is out of range"),
    ("SparseUnsortedSegmentMean", [np.ones((3, 2), np.float32), ints([0, 1]), ints([0, 4])], {"num_segments": 2},
     r"segment id 4 is out of range \[0, 2\)"),
    ("SparseUnsortedSegmentSum", [np.ones((3, 2), np.float32), ints([0]), ints([2 ** 60], np.int64)], {},
     "over the .*-byte cap"),
    ("SortedSegmentSumGradient", [np.ones((2, 2), np.float32), ints([0, 0, 1, 2])], {},
     r"the last segment id \(2\) must be"),
])
def test_run_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)


# Every op of the family, by name: each is a schema with a CPU kernel that runs a tiny case.
ALL_OPS = [
    "SortedSegmentSum", "SortedSegmentMean", "SortedSegmentWeightedSum", "SparseSortedSegmentSum",
    "SparseSortedSegmentMean", "SparseSortedSegmentWeightedSum", "SparseUnsortedSegmentSum",
    "SparseUnsortedSegmentMean", "SparseUnsortedSegmentWeightedSum", "UnsortedSegmentWeightedSum",
    "SortedSegmentRangeSum", "SortedSegmentRangeMean", "SortedSegmentRangeMax", "SortedSegmentRangeLogSumExp",
    "SortedSegmentRangeLogMeanExp", "SortedSegmentSumGradient", "SortedSegmentMeanGradient",
    "SortedSegmentWeightedSumGradient", "SparseSortedSegmentSumGradient", "SparseSortedSegmentMeanGradient",
    "SparseSortedSegmentWeightedSumGradient", "SparseUnsortedSegmentSumGradient",
    "SparseUnsortedSegmentMeanGradient", "SparseUnsortedSegmentWeightedSumGradient",
    "UnsortedSegmentWeightedSumGradient", "SortedSegmentRangeSumGradient", "SortedSegmentRangeMeanGradient",
    "SortedSegmentRangeMaxGradient", "SortedSegmentRangeLogSumExpGradient", "SortedSegmentRangeLogMeanExpGradient",
]


@pytest.mark.parametrize("op_type", ALL_OPS)
def test_every_op_runs_a_tiny_case(op_type):
    from pycaffe2.schema import get_schema
    names = [spec.name for spec in get_schema(op_type).inputs]
    values = {"DATA": np.ones((2, 1), np.float32), "SCALARS": np.full(2, 2.0, np.float32),
              "INDICES": ints([1, 0]), "SEGMENT_IDS": ints([0, 0]), "OUTPUT": np.ones((1, 1), np.float32),
              "dOUTPUT": np.ones((1, 1), np.float32)}
    out = run_op(op_type, [values[name] for name in names])[0]
    assert out.shape == ((2, 1) if op_type.endswith("Gradient") else (1, 1))


# -- ReduceFrontWeightedSum --------------------------------------------------------------------------

@pytest.mark.parametrize("num_reduce_dim", [0, 1, 2])
def test_reduce_front_weighted_sum(num_reduce_dim):
    rng = np.random.default_rng(6)
    data = data_of(rng, 3)
    scalars = rng.random(data.shape[:num_reduce_dim]).astype(np.float32)
    expected = np.tensordot(scalars, data, axes=num_reduce_dim) if num_reduce_dim else data * scalars
    check_reference("ReduceFrontWeightedSum", [data, scalars], lambda *a, **k: expected,
                    {"num_reduce_dim": num_reduce_dim})


def test_reduce_front_weighted_sum_of_nothing():
    out = run_op("ReduceFrontWeightedSum", [np.zeros((0, 2), np.float32), np.zeros(0, np.float32)])[0]
    np.testing.assert_array_equal(out, np.zeros(2, np.float32))


def test_reduce_front_weighted_sum_gradient():
    rng = np.random.default_rng(7)
    data, scalars, d_out = rng.standard_normal((3, 2, 2)), rng.random((3, 2)), rng.standard_normal(2)
    shape_op, grad_op = gradient_ops("ReduceFrontWeightedSum", ["d", "w"], num_reduce_dim=2)[0]
    assert (shape_op.type, list(shape_op.input), list(shape_op.output)) == ("Shape", ["d"], ["_out_dims"])
    assert (grad_op.type, list(grad_op.input)) == ("ReduceFrontWeightedSumGradient", ["w", "out_grad", "_out_dims"])
    args = {"num_reduce_dim": 2}
    check_gradient_op("ReduceFrontWeightedSum", [data, scalars], grad_op.type,
                      [scalars, d_out, np.array(data.shape, np.int64)], {0: 0}, [d_out], args)
    with pytest.raises(GradientError, match="grad_on_weights"):
        gradient_ops("ReduceFrontWeightedSum", ["d", "w"], grad_on_weights=1)


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("ReduceFrontWeightedSum", [(3, 2), (2,)], {}, r"SCALARS \[2\] must be DATA's first 1 dims \[3\]"),
    ("ReduceFrontWeightedSum", [(3, 2), (3,)], {"num_reduce_dim": 3}, r"num_reduce_dim \(3\) must be in 0..2"),
    ("ReduceFrontWeightedSum", [(3, 2), (3, 2)], {}, "SCALARS must be a float tensor of rank num_reduce_dim"),
    ("ReduceFrontWeightedSumGradient", [TensorInfo((3,), "int32"), (2,), TensorInfo((2,), "int64")], {},
     "SCALARS must be a float tensor"),
])
def test_reduce_front_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


def test_reduce_front_gradient_checks_the_shape():
    with pytest.raises((OpFailure, NetError), match=r"SHAPE \[4, 2\] must be SCALARS' dims \[3\]"):
        run_op("ReduceFrontWeightedSumGradient", [np.ones(3, np.float32), np.ones(2, np.float32),
                                                  np.array([4, 2], np.int64)])
    assert infer("ReduceFrontWeightedSum", [(3, 2, 4), (3, 2)], num_reduce_dim=2)[0] == TensorInfo((4,))
