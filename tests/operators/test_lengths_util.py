"""The lengths_util family: LengthsTile, LengthsToSegmentIds, SegmentIdsToLengths,
SegmentIdsToRanges, LengthsToWeights, LengthsToShape and
LengthsSplit against loop references (Caffe2's tests' own), inference and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

lengths_lists = st.lists(st.integers(0, 4), min_size=0, max_size=6)


def ids_of(lengths):
    return [i for i, n in enumerate(lengths) for _ in range(n)]


@settings(max_examples=10, deadline=None)
@given(lengths=lengths_lists, tail=st.lists(st.integers(1, 3), max_size=2),
       dtype=st.sampled_from([np.int32, np.int64]))
def test_lengths_tile(lengths, tail, dtype):
    data = np.random.default_rng(0).standard_normal((len(lengths), *tail)).astype(np.float32)

    def reference(d, l):
        rows = [d[i] for i in range(len(l)) for _ in range(l[i])]
        return [np.array(rows, np.float32).reshape(-1, *d.shape[1:])]

    check_reference("LengthsTile", [data, np.array(lengths, dtype)], reference)


def test_lengths_tile_gradient_is_lengths_sum_of_the_output_gradient():
    rng = np.random.default_rng(1)
    data, lengths = rng.standard_normal((3, 2)), np.array([2, 0, 3], np.int32)
    d_out = rng.standard_normal((5, 2))
    grad_ops = GetGradientForOp(make_op("LengthsTile", ["D", "L"], ["Y"]), ["Y_grad"])[0]
    assert [(op.type, list(op.input)) for op in grad_ops] == [("LengthsSum", ["Y_grad", "L"])]
    check_gradient_op("LengthsTile", [data, lengths], "LengthsSum", [d_out, lengths], {0: 0}, [d_out])


@settings(max_examples=10, deadline=None)
@given(lengths=lengths_lists)
def test_lengths_to_segment_ids_and_back(lengths):
    l32 = np.array(lengths, np.int32)
    check_reference("LengthsToSegmentIds", [l32], lambda l: [np.array(ids_of(l), np.int32)])
    ids = np.array(ids_of(lengths), np.int32)
    last = max((i for i, n in enumerate(lengths) if n), default=-1)
    check_reference("SegmentIdsToLengths", [ids], lambda i: [np.array(lengths[:last + 1], np.int32)])
    like = np.zeros((len(lengths), 2), np.float32)  # the segment count from a second input
    check_reference("SegmentIdsToLengths", [ids, like], lambda i, x: [np.array(lengths, np.int32)])


def ranges_reference(ids, count):
    """Caffe2's test's loop: a range per id from 0, an empty one starting where the next id does."""
    ranges = [[0, 0] for _ in range(count)]
    prev = ids[0] if len(ids) else 0
    for i, sid in enumerate(ids):
        while prev != sid:
            prev += 1
            ranges[prev][0] = i
        ranges[sid][1] += 1
    return [np.array(ranges, np.int32).reshape(count, 2)]


@pytest.mark.parametrize("lengths, extra", [([4, 6, 3, 2, 0, 4], 0), ([0, 2, 0, 1], 2), ([], 1), ([3], 0)])
def test_segment_ids_to_ranges(lengths, extra):
    ids = np.array(ids_of(lengths), np.int64)
    count = (int(ids[-1]) + 1 if ids.size else 0)
    check_reference("SegmentIdsToRanges", [ids], lambda i: ranges_reference(i, count))
    like = np.zeros(count + extra, np.float32)
    check_reference("SegmentIdsToRanges", [ids, like], lambda i, x: ranges_reference(i, count + extra))


@pytest.mark.parametrize("power", [0.5, 1.0, 1.5, 2.0])
def test_lengths_to_weights(power):
    lengths = np.array([3, 0, 1, 4], np.int32)

    def reference(l, power):
        return [np.array([1 / pow(n, power) for n in l for _ in range(n)], np.float32)]

    check_reference("LengthsToWeights", [lengths], reference, {"power": power})


def test_lengths_to_shape():
    check_reference("LengthsToShape", [np.array([200, 200, 200], np.int32)], lambda l: [np.array([3, 200], np.int32)])


def split_reference(lengths, n_split):
    out = []
    for x in lengths:
        mod, val = x % n_split, x // n_split + 1
        for _ in range(n_split):
            out.append(val if mod > 0 else val - 1)
            mod -= 1
    return [np.array(out, np.int32)]


@pytest.mark.parametrize("lengths, n_split", [([3, 4, 5], 5), ([9, 4, 5], 3), ([0, 1, 12], 4), ([], 2)])
def test_lengths_split(lengths, n_split):
    lengths = np.array(lengths, np.int32)
    check_reference("LengthsSplit", [lengths], lambda l, **a: split_reference(l, n_split), {"n_split": n_split})
    check_reference("LengthsSplit", [lengths, np.array([n_split], np.int32)],  # the input overrides the arg
                    lambda l, n, **a: split_reference(l, n_split), {"n_split": 7})


def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("LengthsTile", [(3, 2), i32(3)]) == [None]
    assert infer("LengthsToSegmentIds", [i32(4)]) == [None]
    assert infer("SegmentIdsToLengths", [i32(6), (4, 3)]) == [i32(4)]
    assert infer("SegmentIdsToRanges", [i32(6), (4,)]) == [i32(4, 2)]
    assert infer("SegmentIdsToRanges", [i32(6)]) == [None]
    assert infer("LengthsToShape", [i32(5)]) == [i32(2)]
    assert infer("LengthsSplit", [i32(3)], n_split=4) == [i32(12)]
    assert infer("LengthsSplit", [i32(3), i32(1)]) == [None]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("LengthsTile", [(3, 2), i32(2)], {}, r"LENGTHS \[2\] must hold one length per row of DATA \[3, 2\]"),
    ("LengthsTile", [(3,), TensorInfo((3,), "float32")], {}, "LENGTHS must be a 1-D int32 or int64 tensor"),
    ("LengthsToSegmentIds", [i32(2, 2)], {}, "lengths must be a 1-D int32 or int64 tensor"),
    ("LengthsSplit", [i32(3)], {}, r"n_split must be > 0 \(the arg, or a second input\), got 0"),
    ("LengthsSplit", [i32(3), i32(2)], {}, r"n_split must be a 1-D tensor of one element, got \[2\]"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("LengthsTile", [np.ones(2, np.float32), np.array([1, -1], np.int32)], {}, "LENGTHS must be >= 0, got -1"),
    ("LengthsToSegmentIds", [np.array([2, 1 << 40], np.int64)], {}, "over the .*-byte cap"),
    ("LengthsToSegmentIds", [np.array([1 << 62, 1 << 62], np.int64)], {}, r"lengths add up to more than 2\*\*62"),
    ("SegmentIdsToLengths", [np.array([0, 2, 1], np.int32)], {}, "segment ids must be sorted: 2 vs 1"),
    ("SegmentIdsToLengths", [np.array([-1, 0], np.int32)], {}, "segment ids must be >= 0, got -1"),
    ("SegmentIdsToRanges", [np.array([0, 3], np.int32), np.zeros(2)], {},
     "the ids name 4 segments, more than the second input's 2 rows"),
    ("LengthsToShape", [np.array([2, 3], np.int32)], {}, r"all lengths must be equal, got \[2, 3\]"),
    ("LengthsToShape", [np.zeros(0, np.int32)], {}, "lengths must not be empty"),
    ("LengthsSplit", [np.array([3], np.int32), np.array([0], np.int32)], {}, "n_split must be > 0"),
    ("LengthsSplit", [np.array([-3], np.int32)], {"n_split": 2}, "LENGTHS must be >= 0, got -3"),
])
def test_run_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)


def test_gradients_are_blocked_as_in_caffe2():
    with pytest.raises(GradientError, match="should not call gradient for operator LengthsToSegmentIds"):
        GetGradientForOp(make_op("LengthsToSegmentIds", ["l"], ["s"]), ["s_grad"])
