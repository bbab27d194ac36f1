"""The sparse_dense family: SparseToDenseMask, BatchSparseToDense, BatchDenseToSparse,
GatherRanges, GatherRangesToDense and SparseLabelSplit against loop references,
their gradient ops against central differences, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(7)


def mask_reference(indices, values, default, given_lengths=None, *, mask, return_presence_mask=0):
    lengths = [len(indices)] if given_lengths is None else given_lengths
    out = np.empty((len(lengths), len(mask), *default.shape), values.dtype)
    out[...] = default
    presence = np.zeros((len(lengths), len(mask)), bool)
    offset = 0
    for r, n in enumerate(lengths):
        for i in range(offset, offset + n):  # in order: a later id overwrites
            if indices[i] in mask:
                out[r, list(mask).index(indices[i])] = values[i]
                presence[r, list(mask).index(indices[i])] = True
        offset += n
    if given_lengths is None:  # no example dim
        out, presence = out[0], presence[0]
    return [out, presence] if return_presence_mask else [out]


@pytest.mark.parametrize("use_lengths", [False, True])
@pytest.mark.parametrize("tail", [(), (2,), (2, 3)])
@pytest.mark.parametrize("id_type", [np.int32, np.int64])
def test_sparse_to_dense_mask(use_lengths, tail, id_type):
    lengths = np.array([2, 0, 4, 1], np.int32)
    indices = np.array([3, 42, 3, 1, 7, 0, 42], id_type)  # 3 twice in example 2; 7 is not in the mask
    values = RNG.standard_normal((7, *tail)).astype(np.float32)
    default = RNG.standard_normal(tail).astype(np.float32)
    args = {"mask": [42, 0, 3, 1], "return_presence_mask": 1}
    inputs = [indices, values, default] + ([lengths] if use_lengths else [])
    check_reference("SparseToDenseMask", inputs, mask_reference, args, num_outputs=2)
    check_reference("SparseToDenseMask", inputs, mask_reference, {"mask": args["mask"]})


def test_sparse_to_dense_mask_big_ids_and_skips():
    big = 10_000_000_000
    indices = np.array([big + 2, -1, big, big + 9], np.int64)  # -1 is skipped (one of max 5)
    values = np.arange(4, dtype=np.float32)
    check_reference("SparseToDenseMask", [indices, values, np.float32(-1.0) * np.ones((), np.float32)],
                    mask_reference, {"mask": [big, big + 1, big + 2]})
    with pytest.raises((OpFailure, NetError), match="Too many sparse indices skipped"):
        run_op("SparseToDenseMask", [indices, values, np.zeros((), np.float32)], {"mask": [1], "max_skipped_indices": 1})


@pytest.mark.parametrize("use_lengths", [False, True])
def test_sparse_to_dense_mask_gradient(use_lengths):
    lengths = np.array([3, 2], np.int32)
    indices = np.array([5, 9, 5, 9, 2], np.int64)  # 5 twice in example 0: only the later gets a gradient
    values = RNG.standard_normal((5, 2))
    default = np.zeros(2)
    mask = [9, 5, 7]
    forward = [indices, values, default] + ([lengths] if use_lengths else [])
    names = ["i", "v", "d"] + (["l"] if use_lengths else [])
    (grad_op,), grads = GetGradientForOp(make_op("SparseToDenseMask", names, ["o"], {"mask": mask}), ["o_grad"])
    assert grad_op.type == "SparseToDenseMaskGradient" and grads == [None, "v_grad", None] + [None] * use_lengths
    d_out = RNG.standard_normal((2, 3, 2) if use_lengths else (3, 2))
    got = check_gradient_op("SparseToDenseMask", forward, "SparseToDenseMaskGradient",
                            [indices, d_out] + ([lengths] if use_lengths else []), {0: 1}, [d_out],
                            {"mask": mask})
    assert not got[0][0].any()  # the overwritten value


def batch_to_dense_reference(lengths, indices, values, shaper=None, *, dense_last_dim=-1, default_value=0.0):
    last = dense_last_dim if shaper is None else shaper.shape[1]
    out = np.full((len(lengths), last), default_value, values.dtype)
    k = 0
    for i, n in enumerate(lengths):
        for _ in range(n):
            out[i, indices[k]] = values[k]
            k += 1
    return [out]


@pytest.mark.parametrize("index_type", [np.int32, np.int64])
def test_batch_sparse_to_dense_and_back(index_type):
    lengths = np.array([2, 0, 3, 1], index_type)
    indices = np.array([0, 4, 1, 2, 1, 3], index_type)  # 1 twice in example 2: the later wins
    values = RNG.standard_normal(6).astype(np.float32)
    args = {"dense_last_dim": 5, "default_value": 2.5}
    dense = check_reference("BatchSparseToDense", [lengths, indices, values], batch_to_dense_reference, args)[0]
    check_reference("BatchSparseToDense", [lengths, indices, values, np.zeros((4, 5), np.float32)],
                    batch_to_dense_reference, {"default_value": 2.5})
    check_reference("BatchDenseToSparse", [lengths, indices, dense],
                    lambda l, i, d: [d[np.repeat(np.arange(len(l)), l), i]])


def test_batch_sparse_to_dense_gradients():
    lengths = np.array([2, 3], np.int64)
    indices = np.array([0, 2, 2, 1, 3], np.int64)
    values, dense = RNG.standard_normal(5), RNG.standard_normal((2, 4))
    (grad_op,), _ = GetGradientForOp(make_op("BatchSparseToDense", ["l", "i", "v"], ["o"], {"dense_last_dim": 4}),
                                     ["o_grad"])
    assert grad_op.type == "BatchDenseToSparse" and list(grad_op.input) == ["l", "i", "o_grad"]
    check_gradient_op("BatchSparseToDense", [lengths, indices, values], "BatchDenseToSparse",
                      [lengths, indices, dense], {0: 2}, [dense], {"dense_last_dim": 4})
    (grad_op,), _ = GetGradientForOp(make_op("BatchDenseToSparse", ["l", "i", "d"], ["v"]), ["v_grad"])
    assert grad_op.type == "BatchSparseToDense" and list(grad_op.input) == ["l", "i", "v_grad", "d"]
    check_gradient_op("BatchDenseToSparse", [lengths, indices, dense], "BatchSparseToDense",
                      [lengths, indices, values, dense], {0: 2}, [values])


def gather_ranges_reference(data, ranges, **_):
    out, lengths = [], []
    for example in ranges:
        lengths.append(sum(int(n) for _, n in example))
        for start, n in example:
            out.extend(data[start:start + n])
    return [np.array(out, data.dtype), np.array(lengths, np.int32)]


@pytest.mark.parametrize("range_type", [np.int32, np.int64])
def test_gather_ranges(range_type):
    data = np.arange(10, dtype=np.float32) * 1.5
    ranges = np.array([[[0, 2], [5, 0]], [[3, 4], [9, 1]], [[0, 0], [0, 0]]], range_type)
    check_reference("GatherRanges", [data, ranges], gather_ranges_reference, num_outputs=2)
    check_reference("GatherRanges", [data.astype(np.int64), ranges], gather_ranges_reference, {"maxOutputSize": 5},
                    num_outputs=2)


def to_dense_reference(data, ranges, key=None, *, lengths, **_):
    outputs = []
    for j, width in enumerate(lengths):
        out = np.zeros((len(ranges), width), data.dtype)
        for b, (start, n) in enumerate(ranges[:, j]):
            if n == width:
                items = list(zip(key[start:start + n], data[start:start + n])) if key is not None else None
                out[b] = [d for _, d in sorted(items, key=lambda t: t[0])] if items else data[start:start + n]
        outputs.append(out)
    return outputs


def test_gather_ranges_to_dense():
    data = RNG.standard_normal(12).astype(np.float32)
    key = RNG.permutation(12).astype(np.int64)
    ranges = np.array([[[0, 2], [2, 3]], [[5, 2], [0, 0]], [[7, 2], [9, 3]]], np.int32)
    args = {"lengths": [2, 3]}
    check_reference("GatherRangesToDense", [data, ranges], to_dense_reference, args, num_outputs=2)
    check_reference("GatherRangesToDense", [data, ranges, key], to_dense_reference, args, num_outputs=2)
    # a range of another length gives zeros, within the allowed ratio
    odd = ranges.copy()
    odd[1, 0, 1] = 1
    check_reference("GatherRangesToDense", [data, odd], to_dense_reference,
                    {**args, "max_mismatched_ratio": 0.5, "min_observation": 2}, num_outputs=2)
    with pytest.raises((OpFailure, NetError), match=r"Ratio of range length mismatch for feature at index 0 is "
                                                    r"0.333333 \(1/3\) which exceeds 0.3"):
        run_op("GatherRangesToDense", [data, odd], {**args, "max_mismatched_ratio": 0.3, "min_observation": 2},
               num_outputs=2)
    with pytest.raises((OpFailure, NetError), match="Ratio of empty ranges for feature at index 1"):
        run_op("GatherRangesToDense", [data, ranges], {**args, "max_empty_ratio": 0.1, "min_observation": 1},
               num_outputs=2)


def label_split_reference(length, index, value, num_labels=-1, **_):
    count = num_labels
    values, examples, offsets = [[] for _ in range(count)], [[] for _ in range(count)], []
    pos = 0
    for example, n in enumerate(length):
        for _ in range(n):
            offsets.append(len(values[index[pos]]))
            values[index[pos]].append(value[pos])
            examples[index[pos]].append(example)
            pos += 1
    return ([np.array(v, value.dtype) for v in values] + [np.array(e, np.int32) for e in examples]
            + [np.array(offsets, np.int32)])


def test_sparse_label_split_and_gradient():
    length = np.array([2, 0, 3, 1], np.int32)
    index = np.array([1, 0, 2, 1, 1, 0], np.int64)
    value = RNG.standard_normal(6).astype(np.float32)
    args = {"num_labels": 3, "keep_gradient_offset_map": 1}
    outputs = check_reference("SparseLabelSplit", [length, index, value], label_split_reference, args, num_outputs=7)
    check_reference("SparseLabelSplit", [length, index, value],
                    lambda *a, **k: label_split_reference(*a, num_labels=3)[:6], num_outputs=6)
    names = [f"o{k}" for k in range(7)]
    (grad_op,), grads = GetGradientForOp(make_op("SparseLabelSplit", ["l", "i", "v"], names, args),
                                         [f"{n}_grad" for n in names[:3]] + [None] * 4)
    assert grad_op.type == "SparseLabelSplitGradient" and grads == [None, None, "v_grad"]
    assert list(grad_op.input) == ["l", "i", "o0_grad", "o1_grad", "o2_grad", "o6"]
    d_values = [RNG.standard_normal(v.shape) for v in outputs[:3]]
    for extra in ([outputs[6]], []):  # with the offset map, and counting positions again
        check_gradient_op("SparseLabelSplit", [length, index, value.astype(np.float64)], "SparseLabelSplitGradient",
                          [length, index, *d_values, *extra], {0: 2}, d_values + [None] * 4,
                          {"num_labels": 3}, num_outputs=7)


def i32(*shape, dtype="int32"):
    return TensorInfo(shape, dtype)


def test_inference():
    out = infer("SparseToDenseMask", [i32(5), (5, 2), (2,), i32(3)], 2, mask=[1, 2, 3, 4], return_presence_mask=1)
    assert out == [TensorInfo((3, 4, 2), "float32"), TensorInfo((3, 4), "bool")]
    assert infer("SparseToDenseMask", [i32(5), (5,), ()], mask=[7]) == [TensorInfo((1,), "float32")]
    assert infer("SparseToDenseMaskGradient", [i32(5), (3, 4, 2), i32(3)], mask=[1, 2, 3, 4]) == [
        TensorInfo((5, 2), "float32")]
    assert infer("BatchSparseToDense", [i32(3), i32(6), (6,)], dense_last_dim=4) == [TensorInfo((3, 4), "float32")]
    assert infer("BatchSparseToDense", [i32(3), i32(6), (6,), (3, 9)]) == [TensorInfo((3, 9), "float32")]
    assert infer("BatchDenseToSparse", [i32(3), i32(6), (3, 9)]) == [TensorInfo((6,), "float32")]
    assert infer("GatherRanges", [(10,), i32(4, 2, 2)], 2) == [None, i32(4)]
    assert infer("GatherRangesToDense", [(10,), i32(4, 2, 2)], 2, lengths=[3, 1]) == [
        TensorInfo((4, 3), "float32"), TensorInfo((4, 1), "float32")]
    assert infer("SparseLabelSplit", [i32(2), i32(5, dtype="int64"), (5,)], 5, num_labels=2) == [None] * 4 + [i32(5)]
    assert infer("SparseLabelSplitGradient", [i32(2), i32(5, dtype="int64"), (3,), (2,)], num_labels=2) == [
        TensorInfo((5,), "float32")]


@pytest.mark.parametrize("op_type, shapes, n_out, args, message", [
    ("SparseToDenseMask", [i32(5), (5,), ()], 1, {"mask": []}, "mask must not be empty"),
    ("SparseToDenseMask", [i32(5), (5,), ()], 1, {"mask": [1, 2, 1]}, "mask holds id 1 twice"),
    ("SparseToDenseMask", [i32(5), (5,), ()], 1, {"mask": [-1]}, "mask ids must be >= 0, got -1"),
    ("SparseToDenseMask", [i32(5), (4, 2), (2,)], 1, {"mask": [1]}, r"values \[4, 2\] must have one row per index"),
    ("SparseToDenseMask", [i32(5), (5, 2), (3,)], 1, {"mask": [1]}, r"default_value \[3\] must have the shape"),
    ("SparseToDenseMask", [i32(5), (5,), ()], 2, {"mask": [1]}, "needs return_presence_mask=1"),
    ("BatchSparseToDense", [i32(3), i32(6), (6,)], 1, {}, "dense_last_dim must be >= 1"),
    ("BatchSparseToDense", [i32(3), i32(6), (6,), (3, 9)], 1, {"dense_last_dim": 4}, "disagrees with"),
    ("BatchSparseToDense", [i32(3), i32(6), (5,)], 1, {"dense_last_dim": 4}, "must have indices' shape"),
    ("BatchDenseToSparse", [i32(3), i32(6), (2, 9)], 1, {}, r"one row per length \(3\), got \[2, 9\]"),
    ("GatherRanges", [(10, 1), i32(4, 2, 2)], 2, {}, r"DATA must be 1-D, got \[10, 1\]"),
    ("GatherRanges", [(10,), i32(4, 2, 3)], 2, {}, r"RANGES must be an int32/int64 \[batch, ranges >= 1, 2\]"),
    ("GatherRangesToDense", [(10,), i32(4, 2, 2)], 2, {"lengths": [3]}, "1 lengths for 2 outputs"),
    ("GatherRangesToDense", [(10,), i32(4, 3, 2)], 2, {"lengths": [3, 1]}, "holds 3 ranges per example for 2"),
    ("GatherRangesToDense", [(10,), i32(4, 2, 2)], 2, {"lengths": [3, 0]}, "one length > 0 per output"),
    ("SparseLabelSplit", [i32(2), i32(5, dtype="int64"), (5,)], 5, {"num_labels": 3}, "5 outputs do not fit"),
    ("SparseLabelSplit", [i32(2), i32(5), (5,)], 4, {}, "label_index must be a 1-D int64 tensor"),
    ("SparseLabelSplitGradient", [i32(2), i32(5, dtype="int64"), (3,)], 1, {"num_labels": 2}, "3 inputs do not fit"),
])
def test_inference_errors(op_type, shapes, n_out, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out, **args)


@pytest.mark.parametrize("op_type, inputs, args, n_out, message", [
    ("SparseToDenseMask", [np.array([1, 2]), np.ones(2, np.float32), np.ones((), np.float64)], {"mask": [1]}, 1,
     r"default_value \(float64\) must have values' type \(float32\)"),
    ("SparseToDenseMask", [np.array([1, 2]), np.ones(2), np.ones(()), np.array([3], np.int32)], {"mask": [1]}, 1,
     "lengths add up to 3, but indices has 2"),
    ("BatchSparseToDense", [np.array([2]), np.array([0, 4]), np.ones(2)], {"dense_last_dim": 4}, 1,
     r"index 4 is out of range \[0, 4\)"),
    ("BatchSparseToDense", [np.array([2]), np.array([0, 1]), np.ones(2)], {"dense_last_dim": 1 << 60}, 1,
     "over the .*-byte cap"),
    ("BatchDenseToSparse", [np.array([1, 1]), np.array([0, -1]), np.ones((2, 3))], {}, 1, "index -1 is out of range"),
    ("GatherRanges", [np.ones(5), np.array([[[3, 3]]])], {}, 2, r"range \(start 3, length 3\) does not fit in DATA"),
    ("GatherRanges", [np.ones(5), np.array([[[1, -1]]])], {}, 2, r"range \(start 1, length -1\) does not fit"),
    ("GatherRanges", [np.ones(5), np.array([[[2, (1 << 63) - 1]]])], {}, 2, "does not fit in DATA of size 5"),
    ("GatherRangesToDense", [np.ones(5), np.array([[[4, 2]]])], {"lengths": [2]}, 1, "does not fit in DATA of size 5"),
    ("GatherRangesToDense", [np.ones(5), np.array([[[0, 2]]]), np.ones(5, np.int32)], {"lengths": [2]}, 1,
     "KEY must be int64 of DATA's shape"),
    ("SparseLabelSplit", [np.array([2], np.int32), np.array([0, 2]), np.ones(2)], {}, 4,
     r"label_index 2 is out of range \[0, 2\)"),
    ("SparseLabelSplit", [np.array([1], np.int32), np.array([0, 1]), np.ones(2)], {}, 4,
     "lengths add up to 1, but label_index has 2"),
    ("SparseLabelSplit", [np.array([2], np.int32), np.array([0, 1]), np.ones(2)], {"keep_gradient_offset_map": 1}, 4,
     "needs the offset map output"),
    ("SparseLabelSplitGradient", [np.array([2], np.int32), np.array([0, 0]), np.ones(1)], {"num_labels": 1}, 1,
     "label 0: offset 1 is past its 1 value gradients"),
])
def test_run_errors(op_type, inputs, args, n_out, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=n_out)
