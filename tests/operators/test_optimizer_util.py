"""optimizer_util family: Lars, LearningRateAdaption, ClipTensorByScaling,
EnsureClipped, RowWiseCounter and SparseDropoutWithReplacement against NumPy
references written from Caffe2's formulas, their inference and errors."""
import math

import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def one(value, dtype=np.float32):
    return np.array([value], dtype)


# -- Lars ---------------------------------------------------------------------------------

def lars_reference(x, dx, wd, trust, lr_max, offset=0.5, lr_min=0.02):
    x_norm = np.sqrt((x.astype(np.float64) ** 2).sum())
    value = 1.0 if x_norm == 0 else \
        trust[0] / (np.sqrt((dx.astype(np.float64) ** 2).sum()) / x_norm + wd[0] + offset)
    return [np.array([max(min(float(value), float(lr_max[0])), lr_min)], x.dtype)]  # lr_min wins


@pytest.mark.parametrize("args", [{}, {"offset": 0.0, "lr_min": 1e-6}, {"offset": 3.0, "lr_min": 0.3}])
@pytest.mark.parametrize("x", [f32(3, 4), np.zeros((2, 2), np.float32)], ids=["x", "zero-x"])
def test_lars(args, x):
    inputs = [x, f32(*x.shape), one(1e-4), one(0.7), one(0.9)]
    check_reference("Lars", inputs, lars_reference, args)


# -- LearningRateAdaption -----------------------------------------------------------------

def lr_adaption_reference(lr, grad, effgrad, lr_alpha=0.01, normalized_lr_adaption=1):
    x = float((grad.astype(np.float64) * effgrad).sum())
    if not normalized_lr_adaption:
        return [lr - lr_alpha * x]
    y = max(np.linalg.norm(grad.astype(np.float64)), 1e-12)
    z = max(np.linalg.norm(effgrad.astype(np.float64)), 1e-12)
    return [lr * (1 - lr_alpha * x / (y * z))]


@pytest.mark.parametrize("args", [{}, {"lr_alpha": 0.5}, {"lr_alpha": 0.2, "normalized_lr_adaption": 0}])
@pytest.mark.parametrize("shape", [(3, 4), (0,)])
def test_learning_rate_adaption(args, shape):
    check_reference("LearningRateAdaption", [one(0.3), f32(*shape), f32(*shape)], lr_adaption_reference, args)


# -- ClipTensorByScaling ------------------------------------------------------------------

def clip_by_scaling_reference(tensor, val, *additional, threshold):
    final = threshold * (additional[0][0] if additional else 1.0)
    return [tensor * (final / val.reshape(-1)[0]) if val.reshape(-1)[0] > final else tensor]


@pytest.mark.parametrize("val", [0.5, 5.0])
@pytest.mark.parametrize("additional", [[], [one(0.5)]], ids=["plain", "additional"])
def test_clip_tensor_by_scaling(val, additional):
    inputs = [f32(4, 3), np.array(val, np.float32), *additional]
    check_reference("ClipTensorByScaling", inputs,
                    clip_by_scaling_reference, {"threshold": 2.0})


# -- EnsureClipped ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [{"min": 0.0}, {"max": 0.1}, {"min": -0.2, "max": 0.3}, {}])
def test_ensure_clipped_dense(args):
    x = f32(5, 3)
    expected = np.clip(x, args.get("min", -np.inf), args.get("max", np.inf))
    check_reference("EnsureClipped", [x], lambda *_, **__: [expected], args)


@pytest.mark.parametrize("indices", [[0, 3], [4, 4], []])
def test_ensure_clipped_sparse_clips_the_named_rows_in_place(indices):
    x, idx = f32(5, 3), np.array(indices, np.int64)
    grad = f32(len(indices), 3)
    expected = np.array([np.clip(x[i], 0, None) if i in indices else x[i] for i in range(5)])
    (out,) = run_op("EnsureClipped", [x, idx, grad], {"min": 0.0}, input_names=["p", "i", "g"],
                    output_names=["p"])
    np.testing.assert_array_equal(out, expected)


def test_ensure_clipped_sparse_must_be_in_place():
    with pytest.raises(OpFailure, match="must write param in place"):
        run_op("EnsureClipped", [f32(5, 3), np.array([1]), f32(1, 3)], {"min": 0.0})


# -- RowWiseCounter -----------------------------------------------------------------------

def row_wise_counter_reference(prev_iter, counter, indices, iteration, counter_halflife=-1):
    prev, count = prev_iter.copy(), counter.copy()
    if counter_halflife <= 0:
        return prev, count
    for k in indices:
        delta = max(0, int(iteration[0]) - int(prev[k]))
        count[k] = 1.0 + math.exp(-delta * math.log(2) / counter_halflife) * count[k]
        prev[k] = max(int(iteration[0]), int(prev[k]))
    return prev, count


@pytest.mark.parametrize("halflife", [-1, 1, 5])
@pytest.mark.parametrize("indices", [[0, 3, 7], [2, 5, 2, 2], []])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_wise_counter(halflife, indices, dtype):
    prev = np.array([0, 3, 97, 120, 50, 99, 100, 10], np.int64)
    count = (np.arange(8) * 1.5).astype(dtype)
    inputs = [prev, count, np.array(indices, np.int32), one(100, np.int64)]
    check_reference("RowWiseCounter", inputs, row_wise_counter_reference, {"counter_halflife": halflife})


# -- SparseDropoutWithReplacement ---------------------------------------------------------

def test_sparse_dropout_keeps_everything_at_ratio_0():
    x, lengths = np.arange(1, 11, dtype=np.int64), np.array([2, 0, 3, 5], np.int32)
    _, out_lengths = check_reference("SparseDropoutWithReplacement", [x, lengths], lambda x, lengths: [x, lengths])
    assert out_lengths.dtype == np.int32


def test_sparse_dropout_replaces_everything_at_ratio_1():
    x, lengths = np.arange(1, 6, dtype=np.int64), np.array([2, 0, 3], np.int32)
    check_reference("SparseDropoutWithReplacement", [x, lengths],
                    lambda *_, **__: [np.full(3, -7, np.int64), np.ones(3, np.int32)],
                    {"ratio": 1.0, "replacement_value": -7})


def test_sparse_dropout_replaces_whole_segments():
    x, lengths = np.arange(100, dtype=np.int64), np.full(20, 5, np.int32)
    y, out_lengths = run_op("SparseDropoutWithReplacement", [x, lengths], {"ratio": 0.5, "replacement_value": -1})
    assert out_lengths.sum() == y.size and set(out_lengths) <= {1, 5} and 1 in out_lengths and 5 in out_lengths
    pieces = np.split(y, np.cumsum(out_lengths)[:-1])
    for i, piece in enumerate(pieces):
        assert piece.tolist() == ([-1] if out_lengths[i] == 1 else list(range(5 * i, 5 * i + 5)))


# -- inference and errors -----------------------------------------------------------------

@pytest.mark.parametrize("op_type, infos, n_out, expected", [
    ("Lars", [TensorInfo((3, 4)), TensorInfo((12,)), *[TensorInfo((1,))] * 3], 1, [TensorInfo((1,))]),
    ("LearningRateAdaption", [TensorInfo(()), TensorInfo((3,)), TensorInfo((3,))], 1, [TensorInfo(())]),
    ("ClipTensorByScaling", [TensorInfo((3, 2)), TensorInfo(())], 1, [TensorInfo((3, 2))]),
    ("EnsureClipped", [TensorInfo((5, 3)), TensorInfo((2,), "int64"), TensorInfo((2, 3))], 1, [TensorInfo((5, 3))]),
    ("RowWiseCounter", [TensorInfo((8, 1), "int64"), TensorInfo((8,)), TensorInfo((2,), "int64"),
                        TensorInfo((1,), "int64")], 2, [TensorInfo((8, 1), "int64"), TensorInfo((8,))]),
    ("SparseDropoutWithReplacement", [TensorInfo((7,), "int64"), TensorInfo((3,), "int32")], 2,
     [None, TensorInfo((3,), "int32")]),
])
def test_inference(op_type, infos, n_out, expected):
    args = {"threshold": 1.0} if op_type == "ClipTensorByScaling" else {}
    assert infer(op_type, infos, n_out, **args) == expected


@pytest.mark.parametrize("op_type, shapes, n_out, args, message", [
    ("Lars", [(3,), (4,), (1,), (1,), (1,)], 1, {}, "these must hold the same number of elements"),
    ("Lars", [(3,), (3,), (1,), (2,), (1,)], 1, {}, r"trust must hold one element"),
    ("LearningRateAdaption", [(2,), (3,), (3,)], 1, {}, r"lr must hold one element"),
    ("ClipTensorByScaling", [(3,), (1,)], 1, {}, "threshold must be > 0, got 0.0"),
    ("ClipTensorByScaling", [(0,), (1,)], 1, {"threshold": 1.0}, r"input_tensor must not be empty"),
    ("ClipTensorByScaling", [(3,), (1,), (2,)], 1, {"threshold": 1.0}, "additional_threshold must hold one"),
    ("EnsureClipped", [(5, 3), (2,)], 1, {}, "takes param alone, or param, indices and grad"),
    ("EnsureClipped", [(5, 3), (2,), (3, 3)], 1, {}, "must hold one row of param"),
])
def test_inference_errors(op_type, shapes, n_out, args, message):
    dtypes = {("EnsureClipped", 1): "int64"}
    infos = [TensorInfo(s, dtypes.get((op_type, i), "float32")) for i, s in enumerate(shapes)]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos, n_out, **args)


@pytest.mark.parametrize("infos, message", [
    ([TensorInfo((8,), "int32"), TensorInfo((8,)), TensorInfo((2,), "int64"), TensorInfo((1,), "int64")],
     "prev_iter must be int64"),
    ([TensorInfo((8,), "int64"), TensorInfo((7,)), TensorInfo((2,), "int64"), TensorInfo((1,), "int64")],
     "these must hold the same number of elements"),
    ([TensorInfo((8,), "int64"), TensorInfo((8,)), TensorInfo((2,), "float32"), TensorInfo((1,), "int64")],
     "indices must be int32 or int64"),
    ([TensorInfo((8,), "int64"), TensorInfo((8,)), TensorInfo((2,), "int64"), TensorInfo((2,), "int64")],
     "iter must be a one-element int64"),
])
def test_row_wise_counter_inference_errors(infos, message):
    with pytest.raises(ShapeError, match=message):
        infer("RowWiseCounter", infos, 2)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("Lars", [np.arange(3), f32(3), one(0), one(1), one(1)], {}, "X must be a float tensor"),
    ("ClipTensorByScaling", [f32(3), one(1.0)], {}, "threshold must be > 0"),
    ("RowWiseCounter", [np.zeros(4, np.int64), np.zeros(4, np.float32), np.array([4]), one(1, np.int64)],
     {"counter_halflife": 2}, "index 4 is out of range"),
    ("SparseDropoutWithReplacement", [np.arange(5, dtype=np.int64), np.array([2, 2], np.int32)], {},
     "Lengths sum to 4 but X holds 5 values"),
    ("SparseDropoutWithReplacement", [np.arange(5, dtype=np.int64), np.array([7, -2], np.int32)], {},
     "Lengths must not be negative"),
    ("SparseDropoutWithReplacement", [np.arange(5, dtype=np.int32), np.array([5], np.int32)], {},
     "X must be a 1-D int64 tensor"),
    ("SparseDropoutWithReplacement", [np.arange(5, dtype=np.int64), np.array([5], np.int64)], {},
     "Lengths must be a 1-D int32 tensor"),
])
def test_run_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)


@pytest.mark.parametrize("op_type, n_in, n_out, blocked", [
    ("Lars", 5, 1, False), ("ClipTensorByScaling", 2, 1, False), ("EnsureClipped", 1, 1, False),
    ("RowWiseCounter", 4, 2, False), ("LearningRateAdaption", 3, 1, True),
    ("SparseDropoutWithReplacement", 2, 2, True)])
def test_no_gradients(op_type, n_in, n_out, blocked):
    op = make_op(op_type, [f"x{i}" for i in range(n_in)], [f"y{i}" for i in range(n_out)])
    grads = [f"y{i}_grad" for i in range(n_out)]
    if blocked:
        ops, input_grads = GetGradientForOp(op, grads)
        assert ops == [] and all(g is None for g in input_grads)
    else:
        with pytest.raises(GradientError, match=f"should not call gradient for operator {op_type}"):
            GetGradientForOp(op, grads)


# -- WeightScale --------------------------------------------------------------------------

@pytest.mark.parametrize("iteration, args, scaled", [
    (3, {"stepsize": 2, "scale": 0.5}, True), (2, {"stepsize": 2, "scale": 0.5}, False),
    (3, {"stepsize": 2, "scale": 0.5, "upper_bound_iter": 4}, False), (5, {"scale": 3.0}, False),
    (0, {"stepsize": 1, "scale": 3.0}, True)])
def test_weight_scale(iteration, args, scaled):
    w = f32(3, 2)
    factor = args["scale"] if scaled else 1.0
    check_reference("WeightScale", [w, one(iteration, np.int64)], lambda *_, **__: [w * np.float32(factor)], args)


def test_weight_scale_errors():
    with pytest.raises(ShapeError, match="iter must be a one-element int64"):
        infer("WeightScale", [TensorInfo((3,)), TensorInfo((1,), "int32")])
    with pytest.raises((OpFailure, NetError), match="w must be a float tensor"):
        run_op("WeightScale", [np.arange(3), one(1, np.int64)])
    with pytest.raises(GradientError, match="should not call gradient for operator WeightScale"):
        GetGradientForOp(make_op("WeightScale", ["w", "it"], ["nw"]), ["nw_grad"])


# -- SparseNormalize, Float16SparseNormalize, SparseLpRegularizer --------------------------

def sparse_normalize_reference(param, indices, *grad, use_max_norm=1, norm=1.0):
    out = param.astype(np.float64)
    for k in np.ravel(indices):
        row_norm = np.linalg.norm(out[k])
        if not use_max_norm or row_norm > norm:
            out[k] = out[k] * norm / (row_norm + 1e-12)
    return [out.astype(param.dtype)]


def sparse_lp_reference(param, indices, *grad, p=2.0, reg_lambda=1e-5):
    out = param.copy()
    for k in np.ravel(indices):
        if p == 2.0:
            out[k] = out[k] * (1 - reg_lambda)
        else:
            out[k] = np.sign(out[k]) * np.maximum(np.abs(out[k]) - reg_lambda, 0)
    return [out]


@pytest.mark.parametrize("args", [{}, {"use_max_norm": 0, "norm": 2.0}, {"norm": 1.5}])
@pytest.mark.parametrize("indices", [[0, 3], [4, 1, 4], [[2, 0]], []])
@pytest.mark.parametrize("with_grad", [False, True])
def test_sparse_normalize(args, indices, with_grad):
    param = f32(5, 2, 3) * 2
    idx = np.array(indices, np.int64).reshape(np.shape(indices))
    inputs = [param, idx] + ([f32(idx.size, 2, 3)] if with_grad else [])
    check_reference("SparseNormalize", inputs, sparse_normalize_reference, args, atol=1e-5)


def test_float16_sparse_normalize():
    param = (f32(4, 3) * 3).astype(np.float16)
    check_reference("Float16SparseNormalize", [param, np.array([1, 3], np.int32)], sparse_normalize_reference,
                    {"norm": 1.0}, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("args", [{}, {"reg_lambda": 0.1}, {"p": 1.0, "reg_lambda": 0.3}])
@pytest.mark.parametrize("indices", [[0, 3], [4, 1, 4], []])
def test_sparse_lp_regularizer(args, indices):
    check_reference("SparseLpRegularizer", [f32(5, 3), np.array(indices, np.int32)], sparse_lp_reference, args,
                    atol=1e-6)


@pytest.mark.parametrize("op_type, infos, args, message", [
    ("SparseLpRegularizer", [TensorInfo((5, 3)), TensorInfo((2,), "int64")], {"p": 3.0}, "p must be 1 or 2"),
    ("SparseNormalize", [TensorInfo(()), TensorInfo((2,), "int64")], {}, "param must be at least 1-D"),
    ("SparseNormalize", [TensorInfo((5, 3)), TensorInfo((2,), "float32")], {}, "indices must be int32 or int64"),
    ("SparseNormalize", [TensorInfo((5, 3), "int32"), TensorInfo((2,), "int64")], {}, "param must be a float tensor"),
    ("Float16SparseNormalize", [TensorInfo((5, 3)), TensorInfo((2,), "int64")], {}, "param must be float16"),
])
def test_sparse_row_inference_errors(op_type, infos, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos, **args)


def test_sparse_row_ops_check_indices_at_run_time():
    with pytest.raises(OpFailure, match="index 5 is out of range"):
        run_op("SparseNormalize", [f32(5, 3), np.array([5])])
    assert infer("SparseLpRegularizer", [TensorInfo((5, 3)), TensorInfo((2,), "int32")]) == [TensorInfo((5, 3))]


def test_sparse_row_ops_gradients():
    for op_type in ("SparseNormalize", "Float16SparseNormalize"):
        with pytest.raises(GradientError, match="should not call gradient"):
            GetGradientForOp(make_op(op_type, ["p", "i"], ["p"]), ["p_grad"])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("SparseLpRegularizer", ["p", "i"], ["p"]), ["p_grad"])
