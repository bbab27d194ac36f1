"""one_hot family (OneHot, SegmentOneHot, BatchOneHot, BatchBucketOneHot): each op
against loop references written here, shape inference against the kernels, and
errors (shapes from inference and the kernel, values from the kernel)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer


def one_hot_reference(indices, size):
    out = np.zeros((len(indices), int(size)), np.float32)
    for i, k in enumerate(indices):
        out[i, k] = 1
    return out


@pytest.mark.parametrize("indices, size", [([0, 3, 1, 3], 4), ([2], 5), ([], 3), ([0, 0], 1)])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_one_hot(indices, size, dtype):
    check_reference("OneHot", [np.array(indices, dtype), np.array(size, dtype)], one_hot_reference)


def segment_one_hot_reference(lengths, indices, size):
    out, start = np.zeros((len(lengths), int(np.ravel(size)[0])), np.float32), 0
    for i, n in enumerate(lengths):
        out[i, indices[start:start + n]] = 1
        start += n
    return out


@pytest.mark.parametrize("lengths, indices, size", [([2, 0, 3], [1, 1, 0, 3, 2], 4), ([], [], 2),
                                                   ([1], [0, 1], 3)])
def test_segment_one_hot(lengths, indices, size):
    inputs = [np.array(lengths, np.int32), np.array(indices, np.int64), np.array([size], np.int64)]
    check_reference("SegmentOneHot", inputs, segment_one_hot_reference)


def batch_one_hot_reference(data, lengths, values):
    rows = data.reshape(data.shape[0], -1)
    out, p = np.zeros((data.shape[0], values.size), data.dtype), 0
    for j, n in enumerate(lengths):
        for t in range(n):
            out[:, p] = rows[:, j] == values[p]
            p += 1
    return out


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32])
def test_batch_one_hot(dtype):
    data = np.array([[2, 3], [4, 1], [2, 5]], dtype)
    lengths, values = np.array([2, 3], np.int32), np.array([2, 4, 1, 3, 5], dtype)
    got = check_reference("BatchOneHot", [data, lengths, values], batch_one_hot_reference)
    np.testing.assert_array_equal(got[0], [[1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 1]])
    check_reference("BatchOneHot", [data, np.array([0, 1], np.int32), values[:1]], batch_one_hot_reference)


def bucket_reference(data, lengths, boundaries):
    out = np.zeros((data.shape[0], lengths.sum() + lengths.size), np.float32)
    start = 0
    for j, n in enumerate(lengths):
        edges = boundaries[start:start + n]
        right = np.digitize(data[:, j], edges, right=True)
        left = np.digitize(data[:, j], edges, right=False)
        out[np.arange(data.shape[0]), start + j + (right + left) // 2] = 1
        start += n
    return out


def test_batch_bucket_one_hot():
    data = np.array([[2, 3], [4, 1], [2, 5]], np.float32)
    lengths, boundaries = np.array([2, 3], np.int32), np.array([0.1, 2.5, 1, 3.1, 4.5], np.float32)
    got = check_reference("BatchBucketOneHot", [data, lengths, boundaries], bucket_reference)
    np.testing.assert_array_equal(got[0], [[0, 1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]])


def test_batch_bucket_one_hot_repeated_boundaries():
    data = np.array([[0.0, -1.0], [0.5, 0.0], [-3.0, 7.0]], np.float32)
    lengths, boundaries = np.array([4, 1], np.int32), np.array([-2, 0, 0, 1, 0], np.float32)
    check_reference("BatchBucketOneHot", [data, lengths, boundaries], bucket_reference)


def test_inference():
    assert infer("OneHot", [TensorInfo((3,), "int64"), TensorInfo((), "int64")]) == [None]
    data, lengths = TensorInfo((3, 2), "int32"), TensorInfo((2,), "int32")
    assert infer("BatchOneHot", [data, lengths, TensorInfo((5,), "int32")]) == [TensorInfo((3, 5), "int32")]
    assert infer("BatchBucketOneHot", [TensorInfo((3, 2)), lengths, TensorInfo((5,))]) == [
        TensorInfo((3, 7), "float32")]


ERRORS = [
    ("OneHot", lambda: [np.zeros((2, 2), np.int64), np.array(3, np.int64)],
     r"indices must be a 1-D int32 or int64 tensor, got \[2, 2\] int64"),
    ("OneHot", lambda: [np.zeros(2, np.int64), np.array([3, 4], np.int64)],
     r"index_size_tensor must hold one int32 or int64, got \[2\] int64"),
    ("BatchOneHot", lambda: [np.zeros((3, 2), np.int32), np.array([1, 1, 1], np.int32), np.zeros(3, np.int32)],
     r"lengths must be a 1-D int32 tensor of data's 2 columns, got \[3\] int32"),
    ("BatchBucketOneHot", lambda: [np.zeros((3, 2), np.int32), np.array([1, 1], np.int32), np.zeros(2, np.float32)],
     "data must be float, got int32"),
    ("SegmentOneHot", lambda: [np.array([1.0]), np.zeros(1, np.int64), np.array([2], np.int64)],
     r"lengths must be a 1-D int32 or int64 tensor, got \[1\] float64"),
]


@pytest.mark.parametrize("op_type, make_inputs, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs])
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs)


VALUE_ERRORS = [
    ("OneHot", [np.array([0, 4], np.int64), np.array(4, np.int64)], r"index 4 is out of range \[0, 4\)"),
    ("OneHot", [np.array([0], np.int64), np.array(2**40, np.int64)], "index_size 1099511627776 must be >= 0 and give"),
    ("OneHot", [np.array([0], np.int64), np.array(-1, np.int64)], "index_size -1 must be >= 0"),
    ("SegmentOneHot", [np.array([3], np.int32), np.zeros(2, np.int64), np.array([2], np.int64)],
     "lengths sum to 3 but there are 2 indices"),
    ("SegmentOneHot", [np.array([1], np.int32), np.zeros(1, np.int64), np.array([0], np.int64)],
     "index_size 0 must be >= 1"),
    ("BatchOneHot", [np.zeros((3, 2), np.int32), np.array([1, 1], np.int32), np.zeros(3, np.int32)],
     "lengths add up to 2, but values has 3"),
    ("BatchOneHot", [np.zeros((3, 2), np.int32), np.array([-1, 4], np.int32), np.zeros(3, np.int32)],
     "lengths must be >= 0, got -1"),
    ("BatchBucketOneHot", [np.zeros((3, 2), np.float32), np.array([0, 2], np.int32), np.zeros(2, np.float32)],
     "every column needs a boundary: lengths must be > 0, got 0"),
]


@pytest.mark.parametrize("op_type, inputs, message", VALUE_ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(VALUE_ERRORS)])
def test_value_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


def onnx_one_hot_reference(indices, depth, values=None, axis=-1, **_):
    """Loops over the indices: negatives count from the end, others out of range stay off."""
    depth = int(np.ravel(depth)[0])
    off, on = (0, 1) if values is None else values
    flat = np.full((indices.size, depth), off, np.float32 if values is None else values.dtype)
    for n, index in enumerate(indices.reshape(-1).astype(np.int64)):
        index = index + depth if index < 0 else index
        if 0 <= index < depth:
            flat[n, index] = on
    return np.moveaxis(flat.reshape(indices.shape + (depth,)), -1, axis)


@pytest.mark.parametrize("indices, depth, values, axis", [
    (np.array([0, 7, 8], np.int64), np.float32(12), np.array([2, 5], np.int32), -1),
    (np.array([[1, 9], [2, 4]], np.float32), np.float32(10), np.array([1, 3], np.float32), 1),
    (np.array([0, -7, -8], np.int64), np.array([10], np.int64), np.array([1, 3], np.float64), 1),
    (np.array([5, -6, -1], np.int32), np.float32(5), None, 0),
    (np.array([[1, 9], [2, 4]], np.float32), np.float32(10), np.array([0, 1], np.int64), -2),
    (np.array(3, np.int64), np.int32(4), None, 0),
])
def test_one_hot_onnx_rules(indices, depth, values, axis):
    inputs = [indices, np.asarray(depth)] + ([] if values is None else [values])
    check_reference("OneHot", inputs, onnx_one_hot_reference, {"axis": axis, "index_rules": "onnx"})


def test_one_hot_axis_and_values_under_caffe2_rules():
    indices, size, values = np.array([0, 2], np.int64), np.array(3, np.int64), np.array([-1, 9], np.int32)
    check_reference("OneHot", [indices, size, values], onnx_one_hot_reference, {"axis": 0})


@pytest.mark.parametrize("inputs, args, message", [
    ([np.array([0]), np.array(3), np.array([1, 2, 3])], {}, r"values must hold \[off, on\], got \[3\]"),
    ([np.array([0]), np.array(3)], {"axis": 2}, "axis 2 is out of range for indices of rank 1"),
    ([np.array(["a"]), np.array(3)], {"index_rules": "onnx"}, "indices must be numeric"),
    ([np.array([0]), np.array([3, 3])], {"index_rules": "onnx"}, r"index_size_tensor must hold one number, got \[2\]"),
])
def test_one_hot_onnx_errors(inputs, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("OneHot", [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("OneHot", inputs, args)


def test_one_hot_onnx_size_checks():
    with pytest.raises((OpFailure, NetError), match="index_size 0 must be >= 1"):
        run_op("OneHot", [np.array([0]), np.float32(0.5)], {"index_rules": "onnx"})
    with pytest.raises((OpFailure, NetError), match="index_size must be a finite number, got nan"):
        run_op("OneHot", [np.array([0]), np.float32("nan")], {"index_rules": "onnx"})
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("OneHot", [np.zeros(4, np.int64), np.array(2**40)], {"index_rules": "onnx"})
