"""selection family (Compress, NonZero, UniqueWithCounts, ReverseSequence): against
loop references written here from ONNX's op docs, ReverseSequence's gradient against
central differences, inference and the errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

FAILS = (OpFailure, NetError)
rng = np.random.default_rng(0)


def reference_compress(data, condition, axis=None):
    if axis is None:
        return np.array([v for v, keep in zip(data.reshape(-1), condition) if keep], data.dtype)
    kept = [i for i, keep in enumerate(condition) if keep]
    return np.stack([np.take(data, i, axis=axis) for i in kept], axis=axis % data.ndim) if kept else \
        np.take(data, np.zeros(0, np.int64), axis=axis)


@pytest.mark.parametrize("shape, condition, axis", [
    ((3, 2), [0, 1, 1], 0), ((3, 2), [0, 1], 1), ((3, 2), [0, 1, 0, 0, 1], None), ((3, 2), [0, 1, 1], -2),
    ((3, 2), [0, 0], 0), ((2, 3, 2), [1, 0, 1], 1), ((4,), [], None),
])
def test_compress(shape, condition, axis):
    data = rng.standard_normal(shape).astype(np.float32)
    args = {} if axis is None else {"axis": axis}
    check_reference("Compress", [data, np.array(condition, bool)], reference_compress, args)


def reference_non_zero(x):
    hits = [position for position in np.ndindex(x.shape) if x[position] != 0]
    return np.array(hits, np.int64).reshape(len(hits), x.ndim).T


@pytest.mark.parametrize("x", [np.array([[1, 0], [1, 1]], np.int32), np.array([[0.5, 0], [0, -2]], np.float32),
                               np.array([True, False, True]), np.zeros((2, 0, 3)), np.array(3.0),
                               np.array(0), np.array([[[0, 1], [2, 0]]], np.int64)])
def test_non_zero(x):
    (y,) = check_reference("NonZero", [x], reference_non_zero)
    assert y.dtype == np.int64


def reference_unique(x, axis=None, sorted=1):
    """Slices (or entries) compared as tuples, kept in first-occurrence order, then sorted."""
    moved = x.reshape(-1, 1) if axis is None else np.moveaxis(x, axis, 0)
    keys = [tuple(row.reshape(-1).tolist()) for row in moved]
    firsts = {}
    for i, key in enumerate(keys):
        firsts.setdefault(key, i)
    order = list(firsts)
    if sorted:
        order.sort()
    y = np.array([moved[firsts[key]] for key in order], x.dtype).reshape((len(order),) + moved.shape[1:])
    y = y.reshape(-1) if axis is None else np.moveaxis(y, 0, axis)
    return (y, np.array([firsts[k] for k in order], np.int64), np.array([order.index(k) for k in keys], np.int64),
            np.array([keys.count(k) for k in order], np.int64))


@pytest.mark.parametrize("x, axis", [
    (np.array([2.0, 1.0, 1.0, 3.0, 4.0, 3.0], np.float32), None),
    (np.array([[1, 3], [2, 3]], np.int64), None),
    (np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4]], np.float32), 0),
    (np.array([[[1, 1], [0, 1], [2, 1], [0, 1]], [[1, 1], [0, 1], [2, 1], [0, 1]]], np.float32), 1),
    (np.array([[1, 0, 0], [1, 0, 0], [2, 3, 3]], np.float32), -1),
    (np.array([5], np.int32), None),
])
@pytest.mark.parametrize("sort", [0, 1])
@pytest.mark.parametrize("outputs", [1, 4])
def test_unique_with_counts(x, axis, sort, outputs):
    args = {"sorted": sort} if axis is None else {"sorted": sort, "axis": axis}
    check_reference("UniqueWithCounts", [x], lambda x, **a: reference_unique(x, **a)[:outputs], args,
                    num_outputs=outputs)


def reference_reverse_sequence(x, lens, batch_axis=1, time_axis=0):
    out = x.copy()
    for b, n in enumerate(lens):
        for t in range(n):
            src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
            src[batch_axis] = dst[batch_axis] = b
            src[time_axis], dst[time_axis] = n - 1 - t, t
            out[tuple(dst)] = x[tuple(src)]
    return out


@pytest.mark.parametrize("shape, lens, batch_axis, time_axis", [
    ((4, 4), [4, 3, 2, 1], 1, 0), ((4, 4), [1, 2, 3, 4], 0, 1), ((3, 2, 5), [0, 3], 1, 0), ((2, 5, 3), [5, 2], 0, 1),
])
@pytest.mark.parametrize("lens_type", [np.int32, np.int64])
def test_reverse_sequence(shape, lens, batch_axis, time_axis, lens_type):
    x = rng.standard_normal(shape)
    args = {"batch_axis": batch_axis, "time_axis": time_axis}
    check_reference("ReverseSequence", [x, np.array(lens, lens_type)], reference_reverse_sequence, args)
    dy = rng.standard_normal(shape)
    check_gradient_op("ReverseSequence", [x, np.array(lens, lens_type)], "ReverseSequence",
                      [dy, np.array(lens, lens_type)], {0: 0}, [dy], args)


def test_reverse_sequence_gradient_maker():
    op = make_op("ReverseSequence", ["x", "lens"], ["y"], {"batch_axis": 0, "time_axis": 1})
    (grad,), _ = GetGradientForOp(op, ["y_grad"])
    assert grad.type == "ReverseSequence" and list(grad.input) == ["y_grad", "lens"]
    assert {a.name: a.i for a in grad.arg} == {"batch_axis": 0, "time_axis": 1}


def test_inference():
    assert infer("ReverseSequence", [(4, 3, 2), TensorInfo((3,), "int64")]) == [TensorInfo((4, 3, 2))]
    assert infer("Compress", [(3, 2), TensorInfo((2,), "bool")], axis=1) == [None]
    assert infer("NonZero", [(3, 2)]) == [None]
    assert infer("UniqueWithCounts", [(3, 2)], 4, axis=1) == [None] * 4


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("Compress", [(3, 2), TensorInfo((4,), "bool")], {"axis": 0}, r"condition of length 4 is longer than the 3"),
    ("Compress", [(3, 2), TensorInfo((7,), "bool")], {}, "condition of length 7 is longer than the 6"),
    ("Compress", [(3, 2), TensorInfo((2,), "int64")], {"axis": 1}, r"condition must be a 1-D bool tensor, got \[2\] int64"),
    ("Compress", [(3, 2), TensorInfo((2,), "bool")], {"axis": 2}, "axis 2 is out of range"),
    ("UniqueWithCounts", [(3, 2)], {"axis": -3}, "axis -3 is out of range"),
    ("ReverseSequence", [(4, 3), TensorInfo((4,), "int64")], {}, r"sequence_lens \[4\] must be 1-D with input"),
    ("ReverseSequence", [(4, 3), TensorInfo((3,), "int64")], {"batch_axis": 0}, "must differ, both are 0"),
    ("ReverseSequence", [(4,), TensorInfo((3,), "int64")], {}, "input must have rank >= 2"),
    ("ReverseSequence", [(4, 3), TensorInfo((3,), "float32")], {}, "indices must be int32 or int64"),
])
def test_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)
    inputs = [np.zeros(s.shape, s.dtype) if isinstance(s, TensorInfo) else np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args)


def test_sequence_length_out_of_range():
    with pytest.raises(FAILS, match=r"sequence length 5 is out of range \[0, 5\)"):
        run_op("ReverseSequence", [np.zeros((4, 2), np.float32), np.array([5, 1])])


@pytest.mark.parametrize("shape, condition, axis", [((3, 2), [0, 1, 1], 0), ((3, 2), [1, 0, 0, 1, 1], None),
                                                    ((2, 3, 2), [1, 0, 1], -2), ((3, 2), [0, 0], 1)])
def test_compress_gradient(shape, condition, axis):
    data = rng.standard_normal(shape)
    condition = np.array(condition, bool)
    args = {} if axis is None else {"axis": axis}
    dy = rng.standard_normal(reference_compress(data, condition, axis).shape)
    check_gradient_op("Compress", [data, condition], "CompressGradient", [data, condition, dy], {0: 0}, [dy], args)
    (grad,), _ = GetGradientForOp(make_op("Compress", ["x", "c"], ["y"], args), ["y_grad"])
    assert list(grad.input) == ["x", "c", "y_grad"]


def test_compress_gradient_checks_dy():
    with pytest.raises(FAILS, match=r"dY \[3, 2\] must have the compressed shape \[2, 2\]"):
        run_op("CompressGradient", [np.zeros((3, 2)), np.array([1, 0, 1], bool), np.zeros((3, 2))], {"axis": 0})
