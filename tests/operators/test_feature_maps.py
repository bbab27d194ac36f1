"""The feature_maps family: the Merge*FeatureTensors ops against loop
references written from Caffe2's description, their gradients against central
differences, the gradient makers, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


def single_reference(groups, feature_ids, kind):
    """Loop reference of the single-feature merges (kind: scalar, list, map)."""
    examples = len(groups[0][-1])
    offsets = [0] * len(groups)
    lengths, keys, value_lengths, parts = [], [], [], [[] for _ in range(2 if kind == "map" else 1)]
    for e in range(examples):
        lengths.append(0)
        for i, g in enumerate(groups):
            if not g[-1][e]:
                continue
            lengths[-1] += 1
            keys.append(feature_ids[i])
            if kind == "scalar":
                parts[0].append(g[0][e])
                continue
            n = int(g[0][e])
            value_lengths.append(n)
            for p, src in zip(parts, g[1:-1]):
                p.extend(src[offsets[i]:offsets[i] + n])
            offsets[i] += n
    dtype = groups[0][1 if kind != "scalar" else 0].dtype
    out = [np.array(lengths, np.int32), np.array(keys, np.int64)]
    if kind != "scalar":
        out.append(np.array(value_lengths, np.int32))
    out += [np.array(p, groups[0][k + 1].dtype if kind != "scalar" else dtype) for k, p in enumerate(parts)]
    return out


def multi_reference(groups, kind):
    """Loop reference of the multi-feature merges."""
    examples = len(groups[0][0])
    key_at, value_at = [0] * len(groups), [0] * len(groups)
    lengths, keys, inner, parts = [], [], [], [[] for _ in range({"scalar": 1, "list": 1, "map": 2}[kind])]
    for e in range(examples):
        lengths.append(0)
        for i, g in enumerate(groups):
            for _ in range(int(g[0][e])):
                lengths[-1] += 1
                keys.append(g[1][key_at[i]])
                if kind == "scalar":
                    parts[0].append(g[2][key_at[i]])
                else:
                    n = int(g[2][key_at[i]])
                    inner.append(n)
                    for p, src in zip(parts, g[3:]):
                        p.extend(src[value_at[i]:value_at[i] + n])
                    value_at[i] += n
                key_at[i] += 1
    out = [np.array(lengths, np.int32), np.array(keys, np.int64)]
    if kind != "scalar":
        out.append(np.array(inner, np.int32))
    first = 2 if kind == "scalar" else 3
    out += [np.array(p, groups[0][first + k].dtype) for k, p in enumerate(parts)]
    return out


def single_inputs(kind, examples=4, features=3, dtype=np.float32):
    groups = []
    for _ in range(features):
        presence = RNG.random(examples) < 0.6
        if kind == "scalar":
            groups.append([RNG.standard_normal(examples).astype(dtype), presence])
            continue
        lengths = RNG.integers(0, 3, examples).astype(np.int32)
        total = int(lengths[presence].sum())
        values = [RNG.standard_normal(total).astype(dtype)]
        if kind == "map":
            values.insert(0, RNG.integers(0, 100, total).astype(np.int64))
        groups.append([lengths, *values, presence])
    return groups


def multi_inputs(kind, examples=4, features=2, dtype=np.float32):
    groups = []
    for _ in range(features):
        lengths = RNG.integers(0, 3, examples).astype(np.int32)
        n = int(lengths.sum())
        keys = RNG.integers(0, 50, n).astype(np.int64)
        if kind == "scalar":
            groups.append([lengths, keys, RNG.standard_normal(n).astype(dtype)])
            continue
        inner = RNG.integers(0, 3, n).astype(np.int32)
        m = int(inner.sum())
        values = [RNG.standard_normal(m).astype(dtype)]
        if kind == "map":
            values.insert(0, RNG.integers(0, 100, m).astype(np.int32))
        groups.append([lengths, keys, inner, *values])
    return groups


SINGLE = {"scalar": "MergeSingleScalarFeatureTensors", "list": "MergeSingleListFeatureTensors",
          "map": "MergeSingleMapFeatureTensors"}
MULTI = {"scalar": "MergeMultiScalarFeatureTensors", "list": "MergeMultiListFeatureTensors",
         "map": "MergeMultiMapFeatureTensors"}
N_OUT = {"scalar": 3, "list": 4, "map": 5}
GRADIENTS = ["MergeSingleScalarFeatureTensorsGradient", "MergeSingleListFeatureTensorsGradient",
             "MergeSingleMapFeatureTensorsGradient", "MergeMultiScalarFeatureTensorsGradient",
             "MergeMultiListFeatureTensorsGradient", "MergeMultiMapFeatureTensorsGradient"]


@pytest.mark.parametrize("kind", ["scalar", "list", "map"])
@pytest.mark.parametrize("seed", range(3))
def test_merge_single(kind, seed):
    groups = single_inputs(kind, examples=3 + seed, features=1 + seed)
    ids = [11 + k for k in range(len(groups))]
    flat = [x for g in groups for x in g]
    check_reference(SINGLE[kind], flat, lambda *a, feature_ids: single_reference(groups, feature_ids, kind),
                    {"feature_ids": ids}, num_outputs=N_OUT[kind])


@pytest.mark.parametrize("kind", ["scalar", "list", "map"])
@pytest.mark.parametrize("seed", range(3))
def test_merge_multi(kind, seed):
    groups = multi_inputs(kind, examples=2 + seed, features=1 + seed)
    flat = [x for g in groups for x in g]
    check_reference(MULTI[kind], flat, lambda *a: multi_reference(groups, kind), num_outputs=N_OUT[kind])


def test_merge_single_scalar_strings():
    values = np.array([b"a", b"b"], dtype=object)
    out = run_op("MergeSingleScalarFeatureTensors", [values, np.array([False, True]), values, np.array([True, True])],
                 {"feature_ids": [1, 2]}, num_outputs=3)
    assert list(out[2]) == [b"a", b"b", b"b"] and list(out[1]) == [2, 1, 2]


@pytest.mark.parametrize("kind, family", [(k, f) for k in ["scalar", "list", "map"] for f in ["Single", "Multi"]])
def test_gradients(kind, family):
    """The maker's op, run on its inputs, matches central differences of the merge."""
    groups = single_inputs(kind, 4, 2, np.float64) if family == "Single" else multi_inputs(kind, 4, 2, np.float64)
    size = len(groups[0])
    flat = [x for g in groups for x in g]
    forward = (SINGLE if family == "Single" else MULTI)[kind]
    args = {"feature_ids": [5, 6]} if family == "Single" else {}
    names = [f"x{i}" for i in range(len(flat))]
    outputs = [f"y{o}" for o in range(N_OUT[kind])]
    op = make_op(forward, names, outputs, args)
    (grad_op,), _ = GetGradientForOp(op, [None] * (N_OUT[kind] - 1) + ["dy"])
    assert grad_op.type == forward + "Gradient" and grad_op.type in GRADIENTS
    value_index = size - 2 if family == "Single" else size - 1
    assert list(grad_op.output) == [f"x{k * size + value_index}_grad" for k in range(2)]
    merged = run_op(forward, flat, args, num_outputs=N_OUT[kind])
    d_out = RNG.standard_normal(merged[-1].shape)
    by_name = dict(zip(names, flat))
    gradient_inputs = [by_name[n] for n in grad_op.input[:-1]] + [d_out]
    wrt = {k: k * size + value_index for k in range(2)}
    check_gradient_op(forward, flat, grad_op.type, gradient_inputs, wrt, [None] * (N_OUT[kind] - 1) + [d_out],
                      args, num_outputs=N_OUT[kind])


def test_single_scalar_gradient_defaults():
    presence = [np.array([True, False]), np.array([False, True])]
    out = run_op("MergeSingleScalarFeatureTensorsGradient", [*presence, np.array([b"x", b"y"], dtype=object)],
                 num_outputs=2)
    assert list(out[0]) == [b"x", b""] and list(out[1]) == [b"", b"y"]


def test_inference():
    lengths, keys = TensorInfo((4,), "int32"), TensorInfo((6,), "int64")
    out = infer("MergeMultiScalarFeatureTensors", [lengths, keys, TensorInfo((6,), "float32")] * 2, 3)
    assert out == [TensorInfo((4,), "int32"), TensorInfo((12,), "int64"), TensorInfo((12,), "float32")]
    out = infer("MergeMultiListFeatureTensors", [lengths, keys, TensorInfo((6,), "int32"),
                                                 TensorInfo((9,), "float32")], 4)
    assert out[2:] == [TensorInfo((6,), "int32"), TensorInfo((9,), "float32")]
    out = infer("MergeSingleScalarFeatureTensors", [(4,), TensorInfo((4,), "bool")], 3, feature_ids=[1])
    assert out == [TensorInfo((4,), "int32"), None, None]
    out = infer("MergeSingleScalarFeatureTensorsGradient", [TensorInfo((4,), "bool"), (3,)], 1)
    assert out == [TensorInfo((4,), "float32")]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("MergeSingleScalarFeatureTensors", [(4,), TensorInfo((4,), "bool")], {"feature_ids": [1, 2]},
     "feature_ids has 2 ids for 1 features"),
    ("MergeSingleScalarFeatureTensors", [(4,), TensorInfo((4,), "int32")], {"feature_ids": [1]},
     "in1_presence must be a 1-D bool tensor"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("MergeMultiScalarFeatureTensors", [np.array([2], np.int32), np.zeros(1, np.int64), np.zeros(1, np.float32)], {},
     "in1_keys has 1 entries, its lengths say 2"),
    ("MergeMultiScalarFeatureTensors", [np.array([-1], np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32)], {},
     "in1_lengths holds a negative length -1"),
    ("MergeSingleListFeatureTensors", [np.array([3], np.int32), np.zeros(1, np.float32), np.array([True])],
     {"feature_ids": [1]}, "in1_values has 1 entries, its lengths need 3"),
    ("MergeSingleScalarFeatureTensors", [np.zeros(2, np.float32), np.array([True])], {"feature_ids": [1]},
     "in1_presence has 1 entries, but there are 2 examples"),
    ("MergeMultiScalarFeatureTensorsGradient", [np.array([2], np.int32), np.zeros(3, np.float32)], {},
     "the values' gradient has 3 entries, the lengths say 2"),
    # huge lengths from a file are refused before anything of their size is allocated
    ("MergeSingleListFeatureTensors", [np.array([2**31 - 1], np.int32), np.zeros(1, np.float32), np.array([True])],
     {"feature_ids": [1]}, "in1_values has 1 entries, its lengths need 2147483647"),
    ("MergeSingleListFeatureTensorsGradient", [np.array([2**31 - 1], np.int32), np.array([True]),
                                               np.zeros(1, np.float32)], {},
     "the values' gradient has 1 entries, the lengths say 2147483647"),
    ("MergeMultiListFeatureTensorsGradient", [np.array([1], np.int32), np.array([2**31 - 1], np.int32),
                                              np.zeros(1, np.float32)], {},
     "the values' gradient has 1 entries, the lengths say 2147483647"),
])
def test_run_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)
