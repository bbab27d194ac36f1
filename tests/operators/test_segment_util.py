"""The segment_util family: LengthsTopK, FlexibleTopK, LengthsPad, ReversePackedSegs,
RemoveDataBlocks, PrependDim and MergeDim against NumPy loops, the
gradient ops against central differences, the makers, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer


def ints(values, dtype=np.int32):
    return np.array(values, dtype)


def gradient_ops(op_type, inputs, outputs=("out",), **args):
    op = make_op(op_type, inputs, list(outputs), args)
    return GetGradientForOp(op, [f"{o}_grad" for o in outputs[:1]])


# -- LengthsTopK -------------------------------------------------------------------------------------

def lengths_top_k_reference(data, lengths, k):
    values, indices = np.zeros((len(lengths), k), np.float32), np.full((len(lengths), k), -1, np.int32)
    start = 0
    for i, length in enumerate(lengths):
        segment = data[start:start + length]
        order = sorted(range(length), key=lambda j: (-segment[j], j))[:k]
        values[i, :len(order)], indices[i, :len(order)] = segment[order], order
        start += length
    return values, indices


@pytest.mark.parametrize("k", [1, 2, 4])
def test_lengths_top_k(k):
    data = np.array([3, 1, 3, 2, 5, 0, -1, 7], np.float32)  # a tie in the first segment
    lengths = ints([4, 0, 1, 3])
    check_reference("LengthsTopK", [data, lengths], lambda d, ln, k: lengths_top_k_reference(d, ln, k), {"k": k})


def test_lengths_top_k_gradient():
    rng = np.random.default_rng(0)
    data, lengths = rng.permutation(8).astype(np.float64), ints([4, 0, 1, 3])
    d_values = rng.standard_normal((4, 2))
    (grad_op,), _ = gradient_ops("LengthsTopK", ["x", "l"], ("v", "i"), k=2)
    assert (grad_op.type, list(grad_op.input)) == ("LengthsTopKGradient", ["l", "i", "v_grad"])
    indices = run_op("LengthsTopK", [data, lengths], {"k": 2}, num_outputs=2)[1]
    check_gradient_op("LengthsTopK", [data, lengths], "LengthsTopKGradient", [lengths, indices, d_values], {0: 0},
                      [d_values, None], {"k": 2}, num_outputs=2)


# -- FlexibleTopK ------------------------------------------------------------------------------------

def flexible_reference(x, k):
    rows = x.reshape(-1, x.shape[-1])
    picks = [sorted(range(rows.shape[1]), key=lambda j: (-row[j], j))[:n] for row, n in zip(rows, k.reshape(-1))]
    values = np.array([row[j] for row, pick in zip(rows, picks) for j in pick], x.dtype)
    return values, np.array([j for pick in picks for j in pick], np.int64)


def test_flexible_top_k():
    x = np.array([[[1, 3, 3, 0], [2, 2, 2, 2]], [[0, -1, 5, 4], [9, 8, 7, 6]]], np.float32)
    k = ints([[2], [3], [1], [4]], np.int64)
    check_reference("FlexibleTopK", [x, k], flexible_reference)


def test_flexible_top_k_gradient():
    rng = np.random.default_rng(1)
    x, k = rng.permutation(12).reshape(3, 4).astype(np.float64), ints([1, 4, 2], np.int64)
    d_values = rng.standard_normal(7)
    (grad_op,), _ = gradient_ops("FlexibleTopK", ["x", "k"], ("v", "i"))
    assert (grad_op.type, list(grad_op.input)) == ("FlexibleTopKGradient", ["x", "k", "v_grad", "i"])
    indices = run_op("FlexibleTopK", [x, k], num_outputs=2)[1]
    check_gradient_op("FlexibleTopK", [x, k], "FlexibleTopKGradient", [x, k, d_values, indices], {0: 0},
                      [d_values, None], num_outputs=2)


# -- LengthsPad, ReversePackedSegs, RemoveDataBlocks -------------------------------------------------

def pad_reference(data, lengths, padding_value, target_length):
    out = np.full((len(lengths) * target_length, *data.shape[1:]), padding_value, data.dtype)
    start = 0
    for i, length in enumerate(lengths):
        out[i * target_length:i * target_length + length] = data[start:start + length]
        start += length
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_lengths_pad(dtype):
    data, lengths = np.arange(12).reshape(6, 2).astype(dtype), ints([0, 2, 3, 1])
    check_reference("LengthsPad", [data, lengths], pad_reference, {"padding_value": -2.0, "target_length": 3})
    assert GetGradientForOp(make_op("LengthsPad", ["d", "l"], ["o"]), ["o_grad"])[1] == [None, None]


def reverse_reference(data, lengths):
    out = data.copy()
    for b, length in enumerate(lengths):
        out[:length, b] = data[:length, b][::-1]
    return out


def test_reverse_packed_segs():
    data, lengths = np.arange(24, dtype=np.float32).reshape(4, 3, 2), ints([4, 0, 2], np.int64)
    check_reference("ReversePackedSegs", [data, lengths], reverse_reference)
    (grad_op,), _ = gradient_ops("ReversePackedSegs", ["d", "l"])
    assert (grad_op.type, list(grad_op.input)) == ("ReversePackedSegs", ["out_grad", "l"])
    d_out = np.random.default_rng(2).standard_normal((4, 3, 2))
    check_gradient_op("ReversePackedSegs", [data.astype(np.float64), lengths], "ReversePackedSegs", [d_out, lengths],
                      {0: 0}, [d_out])


@pytest.mark.parametrize("indices", [ints([3, 0, 3]), ints([], np.int64), np.zeros(0, np.float32)], ids=str)
def test_remove_data_blocks(indices):
    data = np.arange(10, dtype=np.float32).reshape(5, 2)
    check_reference("RemoveDataBlocks", [data, indices],
                    lambda d, i: np.delete(d, np.unique(i.astype(np.int64)), axis=0))


# -- PrependDim, MergeDim -----------------------------------------------------------------------------

def test_prepend_and_merge_dim():
    data = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    out = check_reference("PrependDim", [data], lambda d, dim_size: d.reshape(3, 2, 2, 2), {"dim_size": 3})[0]
    check_reference("MergeDim", [out], lambda d: d.reshape(6, 2, 2))
    (grad_op,), _ = gradient_ops("PrependDim", ["x"], dim_size=3)
    assert (grad_op.type, list(grad_op.input), list(grad_op.arg)) == ("MergeDim", ["out_grad"], [])


# -- inference and errors ----------------------------------------------------------------------------

def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("LengthsTopK", [(8,), i32(4)], 2, k=3) == [TensorInfo((4, 3)), i32(4, 3)]
    assert infer("LengthsPad", [(6, 2), i32(4)], target_length=3)[0] == TensorInfo((12, 2))
    assert infer("FlexibleTopK", [(2, 3, 4), TensorInfo((6, 1), "int64")], 2) == [None, None]
    assert infer("FlexibleTopKGradient", [(2, 4), TensorInfo((2,), "int64"), (3,),
                                          TensorInfo((3,), "int64")])[0] == TensorInfo((2, 4))
    assert infer("RemoveDataBlocks", [(5, 2), i32(0)])[0] == TensorInfo((5, 2))
    assert infer("RemoveDataBlocks", [(5, 2), i32(2)]) == [None]
    assert infer("PrependDim", [(6, 2)], dim_size=2)[0] == TensorInfo((2, 3, 2))
    assert infer("MergeDim", [(2, 3, 2)])[0] == TensorInfo((6, 2))
    assert infer("ReversePackedSegs", [(4, 3, 2), i32(3)])[0] == TensorInfo((4, 3, 2))
    assert infer("LengthsTopKGradient", [i32(4), i32(4, 2), (4, 2)], k=2) == [None]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("LengthsTopK", [(8,), i32(4)], {"k": 0}, "k must be >= 1"),
    ("LengthsTopK", [(8, 1), i32(4)], {"k": 1}, "DATA must be a 1-D float"),
    ("LengthsTopKGradient", [i32(4), i32(4, 3), (4, 2)], {"k": 2}, r"TopKIndices \[4, 3\] must be"),
    ("FlexibleTopK", [(2, 4), TensorInfo((3,), "int64")], {}, "one count per row of X"),
    ("FlexibleTopKGradient", [(2, 4), TensorInfo((2,), "int64"), (3,), TensorInfo((2,), "int64")], {},
     "must have the same shape"),
    ("LengthsPad", [(6, 2), i32(4)], {}, "target_length must be >= 1"),
    ("ReversePackedSegs", [(4, 3), i32(3)], {}, "DATA must be a 3-D"),
    ("ReversePackedSegs", [(4, 3, 2), i32(2)], {}, "one length per segment"),
    ("RemoveDataBlocks", [(5, 2), TensorInfo((2,), "float32")], {}, "INDICES must be a 1-D int32"),
    ("PrependDim", [(5, 2)], {"dim_size": 2}, "must be a multiple of dim_size"),
    ("PrependDim", [(4, 2)], {}, "dim_size must be >= 1"),
    ("MergeDim", [(4,)], {}, "rank >= 2"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, 2 if op_type in ("LengthsTopK", "FlexibleTopK") else 1, **args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("LengthsTopK", [np.ones(3, np.float32), ints([2, 2])], {"k": 1}, r"the sum of LENGTHS \(4\) must equal"),
    ("LengthsTopK", [np.ones(3, np.float32), ints([4, -1])], {"k": 1}, "non-negative"),
    ("LengthsTopK", [np.ones(0, np.float32), ints([2 ** 40, -(2 ** 40)], np.int64)], {"k": 1}, "non-negative"),
    ("LengthsTopK", [np.ones(0, np.float32), ints([0, 0])], {"k": 2 ** 40}, "over the .*-byte cap"),
    ("LengthsTopKGradient", [ints([2]), ints([[5]]), np.ones((1, 1), np.float32)], {"k": 1},
     "out of range for its segment of length 2"),
    ("FlexibleTopK", [np.ones((2, 3), np.float32), ints([1, 4], np.int64)], {}, r"K\[1\] = 4 must be in 1..3"),
    ("FlexibleTopK", [np.ones((2, 3), np.float32), ints([0, 1], np.int64)], {}, r"K\[0\] = 0"),
    ("FlexibleTopKGradient", [np.ones((1, 3), np.float32), ints([1], np.int64), np.ones(1, np.float32),
                              ints([3], np.int64)], {}, "out of range for X's last dim"),
    ("LengthsPad", [np.ones((3, 2), np.float32), ints([3])], {"target_length": 2}, "larger than target_length"),
    ("LengthsPad", [np.ones((0, 2), np.float32), ints([0])], {"target_length": 2 ** 40}, "over the .*-byte cap"),
    ("ReversePackedSegs", [np.ones((2, 1, 1), np.float32), ints([3])], {}, r"LENGTHS\[0\] = 3 must be in 0..2"),
    ("RemoveDataBlocks", [np.ones((3, 2), np.float32), ints([3])], {}, "out of range"),
])
def test_run_errors(op_type, inputs, args, message):
    num_outputs = 2 if op_type in ("LengthsTopK", "FlexibleTopK") else None
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=num_outputs)
