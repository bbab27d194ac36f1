"""The id_list family: IndexHash, NGramFromCategorical, DenseVectorToIdList and
MergeIdLists against loop references, inference and errors (none has a
gradient in Caffe2)."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


def index_hash_reference(indices, seed, modulo):
    """Python-int arithmetic, wrapped to the type's width by hand."""
    bits = indices.dtype.itemsize * 8

    def wrap(v):
        v &= (1 << bits) - 1
        return v - (1 << bits) if v >> (bits - 1) else v
    out = []
    for index in indices.ravel():
        h = wrap(seed * 0xDEADBEEF)
        for b in np.array([index], indices.dtype).view(np.int8):
            h = wrap(h * 65537 + int(b))
        r = abs(h) % modulo * (1 if h >= 0 else -1)  # C's truncated %
        out.append((modulo + r) % modulo)
    return [np.array(out, indices.dtype).reshape(indices.shape)]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("seed, modulo", [(0, 100000), (7, 123457), (3, 2**31 - 1)])
def test_index_hash(dtype, seed, modulo):
    indices = RNG.integers(-1000, 10**6, (3, 4)).astype(dtype)
    check_reference("IndexHash", [indices], lambda x, **a: index_hash_reference(x, seed, modulo),
                    {"seed": seed, "modulo": modulo})


def ngram_reference(floats, col_ids, categorical_limits, vals):
    table = floats.reshape(floats.shape[0], -1)
    out = np.zeros(floats.shape[0], np.int64)
    for i in range(table.shape[0]):
        base, start = 1, 0
        for column, limit in zip(col_ids, categorical_limits):
            x = float(table[i, column])
            v = int(np.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)
            segment = vals[start:start + limit]
            if v in segment:
                out[i] += (limit - 1 - segment[::-1].index(v)) * base
            base, start = base * limit, start + limit
    return [out]


def test_ngram_from_categorical():
    col_ids, limits = [3, 0], [3, 4]
    vals = [10, 20, 30, 5, -6, 7, 8]
    floats = RNG.uniform(-3, 3, (6, 5)).astype(np.float32)
    floats[:, 3] = RNG.choice([10, 20, 30, 99], 6) + RNG.uniform(-0.4, 0.4, 6)
    floats[:, 0] = RNG.choice([5, -6, 7, 8, 0], 6) + RNG.uniform(-0.4, 0.4, 6)
    floats[0, 0], floats[1, 0] = -5.5, 6.5  # halves round away from zero: -6, 7
    args = {"col_ids": col_ids, "categorical_limits": limits, "vals": vals}
    check_reference("NGramFromCategorical", [floats], lambda f, **a: ngram_reference(f, **a), args)


def dense_reference(values):
    lengths, ids = [], []
    for row in values:
        picked = [j for j, x in enumerate(row) if int(x + 0.5) != 0]
        lengths.append(len(picked))
        ids += picked
    return [np.array(lengths, np.int32), np.array(ids, np.int32)]


@pytest.mark.parametrize("shape", [(3, 8), (1, 1), (0, 4), (2, 0)])
def test_dense_vector_to_id_list(shape):
    values = RNG.choice([0.0, 1.0, 0.4, 0.5, -0.9, -1.6, 2.0], shape).astype(np.float32)
    check_reference("DenseVectorToIdList", [values], dense_reference)


def merge_reference(*inputs):
    batch = len(inputs[0])
    offsets = [0] * (len(inputs) // 2)
    lengths, ids = [], []
    for e in range(batch):
        merged = set()
        for k in range(0, len(inputs), 2):
            n = int(inputs[k][e])
            merged.update(inputs[k + 1][offsets[k // 2]:offsets[k // 2] + n].tolist())
            offsets[k // 2] += n
        lengths.append(len(merged))
        ids += sorted(merged)
    return [np.array(lengths, np.int32), np.array(ids, inputs[1].dtype)]


@pytest.mark.parametrize("features", [1, 3])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_merge_id_lists(features, dtype):
    inputs = []
    for _ in range(features):
        lengths = RNG.integers(0, 4, 5).astype(np.int32)
        inputs += [lengths, RNG.integers(1, 8, int(lengths.sum())).astype(dtype)]
    check_reference("MergeIdLists", inputs, merge_reference)


def test_gradients():
    with pytest.raises(GradientError, match="should not call gradient for operator IndexHash"):
        GetGradientForOp(make_op("IndexHash", ["x"], ["y"], {"modulo": 5}), ["y_grad"])
    ops, _ = GetGradientForOp(make_op("DenseVectorToIdList", ["x"], ["l", "v"]), ["l_grad", "v_grad"])
    assert ops == []


def test_inference():
    assert infer("IndexHash", [TensorInfo((2, 3), "int64")], modulo=7) == [TensorInfo((2, 3), "int64")]
    assert infer("IndexHash", [TensorInfo((4,), "int32")]) == [TensorInfo((4,), "int32")]  # modulo checked at run
    assert infer("NGramFromCategorical", [(5, 2, 3)], col_ids=[5], categorical_limits=[1], vals=[2]) == [
        TensorInfo((5,), "int64")]
    assert infer("DenseVectorToIdList", [(4, 3)], 2) == [TensorInfo((4,), "int32"), None]
    ints = TensorInfo((4,), "int32")
    assert infer("MergeIdLists", [ints, TensorInfo((9,), "int64")] * 2, 2) == [ints, None]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("IndexHash", [(3,)], {"modulo": 3}, "Indices must be an int32 or int64 tensor, got float32"),
    ("NGramFromCategorical", [(5, 2)], {"col_ids": [2], "categorical_limits": [1], "vals": [1]},
     "floats has 2 columns, col_ids names column 2"),
    ("NGramFromCategorical", [(5, 2)], {"col_ids": [0], "categorical_limits": [2], "vals": [1]},
     "vals has 1 values, categorical_limits add up to 2"),
    ("NGramFromCategorical", [(5, 2)], {"col_ids": [0, 1], "categorical_limits": [2], "vals": [1, 2]},
     "col_ids has 2 columns, categorical_limits 1"),
    ("DenseVectorToIdList", [(5,)], {}, r"values must be a 2-D float32 tensor, got \[5\]"),
    ("MergeIdLists", [TensorInfo((4,), "int32"), TensorInfo((3,), "int32"), TensorInfo((5,), "int32"),
                      TensorInfo((3,), "int32")], {}, "lengths_1 has 5 examples, lengths_0 has 4"),
    ("MergeIdLists", [TensorInfo((4,), "int32"), TensorInfo((3,), "int32"), TensorInfo((4,), "int32"),
                      TensorInfo((3,), "int64")], {}, "values_1 is int64, values_0 is int32"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, 2 if op_type in ("DenseVectorToIdList", "MergeIdLists") else 1, **args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("IndexHash", [np.zeros(2, np.int32)], {}, "modulo must be > 0, got 0"),
    ("IndexHash", [np.zeros(2, np.int32)], {"modulo": 2**40}, "modulo 1099511627776 is larger than the largest int32"),
    ("MergeIdLists", [np.array([2, 2], np.int32), np.arange(3, dtype=np.int32)], {},
     "lengths_0 add up to 4, values_0 has 3 ids"),
    ("MergeIdLists", [np.array([-1, 2], np.int32), np.arange(3, dtype=np.int32)], {},
     "lengths_0 holds a negative length -1"),
])
def test_run_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=len(get_outputs(op_type)))


def get_outputs(op_type):
    return ["a", "b"] if op_type == "MergeIdLists" else ["a"]
