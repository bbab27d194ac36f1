"""The segment family: Unique and UnsortedSegmentSum/Mean against NumPy
references, the reductions' gradients against central differences, inference
and errors."""
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


def segment_reference(data, ids, num_segments=-1, mean=False):
    rows = num_segments if num_segments >= 0 else int(ids.max(initial=-1)) + 1
    out = np.zeros((rows, *data.shape[1:]), data.dtype)
    for k in range(rows):
        picked = data[ids == k]
        if len(picked):
            out[k] = picked.mean(axis=0) if mean else picked.sum(axis=0)
    return out


@pytest.mark.parametrize("op_type", ["UnsortedSegmentSum", "UnsortedSegmentMean"])
@pytest.mark.parametrize("num_segments", [-1, 6])
@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 6), tail=st.lists(st.integers(1, 3), max_size=2), seed=st.integers(0, 2**16),
       id_type=st.sampled_from([np.int32, np.int64]))
def test_unsorted_segment_reductions(op_type, num_segments, rows, tail, seed, id_type):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((rows, *tail)).astype(np.float32)
    ids = rng.integers(0, 5, rows).astype(id_type)
    mean = op_type.endswith("Mean")
    check_reference(op_type, [data, ids], lambda d, i, **a: [segment_reference(d, i, mean=mean, **a)],
                    {"num_segments": num_segments})


@pytest.mark.parametrize("op_type, gradient_type", [("UnsortedSegmentSum", "UnsortedSegmentSumGradient"),
                                                    ("UnsortedSegmentMean", "UnsortedSegmentMeanGradient")])
def test_unsorted_segment_gradients(op_type, gradient_type):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 3))
    ids = np.array([2, 0, 2, 2, 1], np.int32)
    d_out = rng.standard_normal((3, 3))
    (grad_op,), _ = GetGradientForOp(make_op(op_type, ["d", "i"], ["o"]), ["o_grad"])
    assert grad_op.type == gradient_type and list(grad_op.input) == ["o_grad", "i"]
    check_gradient_op(op_type, [data, ids], grad_op.type, [d_out, ids], {0: 0}, [d_out])


@settings(max_examples=20, deadline=None)
@given(values=st.lists(st.integers(-5, 5), min_size=0, max_size=8), dtype=st.sampled_from([np.int32, np.int64]))
def test_unique(values, dtype):
    indices = np.array(values, dtype)
    unique, remapping = run_op("Unique", [indices], num_outputs=2)
    np.testing.assert_array_equal(unique, sorted(set(values)))
    np.testing.assert_array_equal(unique[remapping], indices)  # Gather(unique, remapping) gives indices
    assert unique.dtype == dtype and remapping.dtype == np.int32


def ids(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("UnsortedSegmentSum", [(4, 3), ids(4)], num_segments=7)[0].shape == (7, 3)
    assert infer("UnsortedSegmentMean", [(4, 3), ids(4)])[0] is None  # rows depend on the ids' values
    assert infer("UnsortedSegmentSumGradient", [(7, 3), ids(4)])[0].shape == (4, 3)
    assert infer("Unique", [ids(5)], 2) == [None, ids(5)]


@pytest.mark.parametrize("op_type, shapes, message", [
    ("UnsortedSegmentSum", [(4, 3), ids(3)], r"SEGMENT_IDS \[3\] must hold one id per slice of DATA \[4, 3\]"),
    ("UnsortedSegmentSum", [(4, 3), ids(4, 1)], "SEGMENT_IDS must be a 1-D int32 or int64 tensor"),
    ("Unique", [ids(2, 2)], "indices must be a 1-D int32 or int64 tensor"),
])
def test_inference_errors(op_type, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match=r"segment id 3 is out of range \[0, 2\)"):
        run_op("UnsortedSegmentSum", [np.ones((2, 1), np.float32), np.array([0, 3], np.int32)],
               {"num_segments": 2})
    with pytest.raises((OpFailure, NetError), match="DATA must be a float tensor"):
        run_op("UnsortedSegmentMean", [np.ones(2, np.int32), np.array([0, 1], np.int32)])
    with pytest.raises(GradientError, match="should not call gradient for operator Unique"):
        GetGradientForOp(make_op("Unique", ["i"], ["u"]), ["u_grad"])


@pytest.mark.parametrize("op_type", ["UnsortedSegmentSum", "UnsortedSegmentMean"])
def test_an_id_asking_for_a_huge_output_is_refused_before_allocating(op_type):
    ids = np.array([0, 2**40], np.int64)  # max id + 1 rows of 1 KiB each
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op(op_type, [np.ones((2, 256), np.float32), ids])
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op(op_type, [np.ones((2, 256), np.float32), np.array([0, 1], np.int64)], {"num_segments": 2**40})
