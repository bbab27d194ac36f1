"""The attention_ops family: Attention against a query-by-query, key-by-key float64
reference (3-D and 4-D inputs, grouped heads, masks of every rank and type, causal,
windows, caches, per-batch key counts, softcap, every qk_matmul_output_mode, softmax
precision); RotaryEmbedding against a pair-by-pair rotation, its gradient against
central differences; inference and errors."""
import math

import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, numeric_gradient, run_op
from tests.schema import infer

EXTRAS = ("attn_mask", "past_key", "past_value", "nonpad_kv_seqlen")


def _heads(x, heads):
    return x if x.ndim == 4 else x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(0, 2, 1, 3)


def _key_bias(mask_row, j, position, nonpad, args):
    """The bias of key j for a query at absolute `position`: the float mask's value or 0
    when the key may be attended, else -inf."""
    allowed, add = True, 0.0
    if mask_row is not None:
        if mask_row.dtype == bool:
            allowed = bool(mask_row[j])
        else:
            add = float(mask_row[j])
    if args.get("is_causal") and j > position:
        allowed = False
    if args.get("left_window_size", -1) >= 0 and j < position - args["left_window_size"]:
        allowed = False
    if args.get("right_window_size", -1) >= 0 and j > position + args["right_window_size"]:
        allowed = False
    if nonpad is not None and j >= nonpad:
        allowed = False
    return add if allowed else -math.inf


def reference_attention(q, k, v, *extra, **args):
    """Attention one query row at a time, in float64."""
    given = dict(zip(args.get("extra_inputs") or EXTRAS, extra))
    qh, kh, vh = (_heads(x.astype(np.float64), n) for x, n in
                  ((q, args.get("q_num_heads")), (k, args.get("kv_num_heads")), (v, args.get("kv_num_heads"))))
    past = given.get("past_key")
    if past is not None:
        kh = np.concatenate([given["past_key"], kh], 2)
        vh = np.concatenate([given["past_value"], vh], 2)
    batch, q_heads, q_len, head = qh.shape
    kv_heads, total = kh.shape[1], kh.shape[2]
    mask = given.get("attn_mask")
    if mask is not None:  # pad the keys, then broadcast to [B, Hq, Sq, T]
        filler = np.zeros if mask.dtype == bool else (lambda s, dtype: np.full(s, -np.inf, dtype))
        mask = np.concatenate([mask, filler(mask.shape[:-1] + (total - mask.shape[-1],), mask.dtype)], -1)
        mask = np.broadcast_to(mask, (batch, q_heads, q_len, total))
    nonpad = given.get("nonpad_kv_seqlen")
    scale = args.get("scale", 1 / math.sqrt(head))
    softcap = args.get("softcap", 0.0)
    y = np.zeros((batch, q_heads, q_len, vh.shape[3]))
    qk = np.zeros((batch, q_heads, q_len, total))
    for b in range(batch):
        offset = (0 if past is None else past.shape[2]) if nonpad is None else int(nonpad[b]) - q_len
        for h in range(q_heads):
            kv = h // (q_heads // kv_heads)
            for i in range(q_len):
                raw = np.array([qh[b, h, i] @ kh[b, kv, j] * scale for j in range(total)])
                capped = softcap * np.tanh(raw / softcap) if softcap > 0 else raw
                bias = np.array([_key_bias(None if mask is None else mask[b, h, i], j, offset + i,
                                           None if nonpad is None else nonpad[b], args) for j in range(total)])
                scores = capped + bias
                weights = np.zeros(total)
                if not np.all(np.isneginf(bias)):
                    weights = np.exp(scores - scores.max())
                    weights /= weights.sum()
                y[b, h, i] = weights @ vh[b, kv]
                qk[b, h, i] = (raw, capped, scores, weights)[args.get("qk_matmul_output_mode", 0)]
    if q.ndim == 3:
        y = y.transpose(0, 2, 1, 3).reshape(batch, q_len, -1)
    return [y, kh, vh, qk]


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def attention_inputs(rng, rank=4, batch=2, q_heads=3, kv_heads=3, q_len=4, kv_len=6, head=8, v_head=8):
    if rank == 4:
        return [_rand(rng, batch, q_heads, q_len, head), _rand(rng, batch, kv_heads, kv_len, head),
                _rand(rng, batch, kv_heads, kv_len, v_head)], {}
    return ([_rand(rng, batch, q_len, q_heads * head), _rand(rng, batch, kv_len, kv_heads * head),
             _rand(rng, batch, kv_len, kv_heads * v_head)], {"q_num_heads": q_heads, "kv_num_heads": kv_heads})


SHAPES = {
    "mha": {}, "gqa": {"q_heads": 6}, "mqa": {"q_heads": 4, "kv_heads": 1}, "v_head": {"v_head": 5},
    "cross": {"q_len": 3, "kv_len": 7}, "one_query": {"q_len": 1},
}
OPTIONS = {
    "plain": {}, "scaled": {"scale": 0.3}, "causal": {"is_causal": 1}, "softcap": {"softcap": 1.5},
    "window": {"left_window_size": 1, "right_window_size": 2}, "causal_window": {"is_causal": 1, "left_window_size": 2},
}


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_attention(rank, shape, option):
    inputs, args = attention_inputs(np.random.default_rng(0), rank, **SHAPES[shape])
    check_reference("Attention", inputs, reference_attention, args | OPTIONS[option])


MASKS = {  # mask shape for B=2, Hq=3, Sq=4, T=6; dtype
    "bool_2d": ((4, 6), bool), "float_2d": ((4, 6), np.float32), "bool_1d": ((6,), bool),
    "float_3d_heads": ((3, 4, 6), np.float32), "bool_4d_batch": ((2, 1, 4, 6), bool),
    "float_4d": ((2, 3, 4, 6), np.float32), "short_bool": ((4, 4), bool), "short_float": ((1, 3), np.float32),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("option", ["plain", "causal", "window"])
def test_attention_masks(mask, option):
    rng = np.random.default_rng(1)
    inputs, _ = attention_inputs(rng)
    shape, dtype = MASKS[mask]
    values = rng.random(shape) > 0.3 if dtype is bool else _rand(rng, *shape)
    check_reference("Attention", inputs + [values], reference_attention, OPTIONS[option])


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_past_and_every_output(rank, mode, causal):
    rng = np.random.default_rng(2)
    inputs, args = attention_inputs(rng, rank, q_heads=6)
    past = [_rand(rng, 2, 3, 5, 8), _rand(rng, 2, 3, 5, 8)]
    mask = _rand(rng, 4, 11)
    args |= {"qk_matmul_output_mode": mode, "is_causal": causal, "softcap": 2.0}
    check_reference("Attention", inputs + [mask] + past, reference_attention, args, num_outputs=4)


@pytest.mark.parametrize("option", ["plain", "causal", "causal_window"])
def test_attention_nonpad_kv_seqlen(option):
    """An external cache: keys past each batch item's count are padding; the causal
    frontier sits at count - Sq (a negative offset empties the first rows)."""
    rng = np.random.default_rng(3)
    inputs, _ = attention_inputs(rng, q_len=3, kv_len=8, batch=3)
    nonpad = np.array([8, 5, 2], np.int64)
    mask = rng.random((3, 1, 3, 6)) > 0.2
    args = OPTIONS[option] | {"extra_inputs": ["nonpad_kv_seqlen", "attn_mask"]}
    check_reference("Attention", inputs + [nonpad, mask], reference_attention, args)
    check_reference("Attention", inputs + [nonpad], reference_attention,
                    OPTIONS[option] | {"extra_inputs": ["nonpad_kv_seqlen"]})


def test_fully_masked_rows_are_zero():
    rng = np.random.default_rng(4)
    inputs, _ = attention_inputs(rng, q_len=2, kv_len=2)
    mask = np.array([[False, False], [True, False]])
    y, qk = run_op("Attention", inputs + [mask], {"qk_matmul_output_mode": 3}, num_outputs=4)[::3]
    assert not np.isnan(y).any() and not y[:, :, 0].any() and not qk[:, :, 0].any()
    np.testing.assert_allclose(qk[:, :, 1], np.broadcast_to([1.0, 0.0], (2, 3, 2)))


@pytest.mark.parametrize("dtype, precision", [(np.float16, None), (np.float16, "FLOAT"), (np.float64, None),
                                              (np.float32, "DOUBLE"), (np.float32, "FLOAT16")])
def test_attention_types_and_softmax_precision(dtype, precision):
    rng = np.random.default_rng(5)
    inputs, _ = attention_inputs(rng)
    inputs = [x.astype(dtype) for x in inputs]
    args = {"is_causal": 1, "qk_matmul_output_mode": 3} | ({"softmax_precision": precision} if precision else {})
    loose = 1e-4 if dtype != np.float16 and precision != "FLOAT16" else 2e-2
    got = check_reference("Attention", inputs, reference_attention, args, num_outputs=4, atol=loose, rtol=loose)
    assert got[0].dtype == dtype and got[3].dtype == dtype


def test_attention_has_no_gradient():
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("Attention", ["q", "k", "v"], ["y"]), ["y_grad"])


def test_attention_inference():
    assert [i.shape for i in infer("Attention", [(2, 9, 4, 8), (2, 3, 6, 8), (2, 3, 6, 10), (4, 18), (2, 3, 12, 8),
                                                 (2, 3, 12, 10)], n_out=4)] == [
        (2, 9, 4, 10), (2, 3, 18, 8), (2, 3, 18, 10), (2, 9, 4, 18)]
    assert infer("Attention", [(2, 4, 72), (2, 6, 24), (2, 6, 30)], q_num_heads=9, kv_num_heads=3)[0].shape == (
        2, 4, 90)
    assert infer("Attention", [(2, 3, 4, 8), None, (2, 3, 6, 8)]) == [None]
    assert infer("Attention", [(2, 6, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)], q_num_heads=6, kv_num_heads=3)[0].shape == (
        2, 6, 4, 8)
    mixed = infer("Attention", [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), TensorInfo((2,), "int64")], n_out=1,
                  extra_inputs=["nonpad_kv_seqlen"], dtype="float16")
    assert mixed[0].dtype == "float16"


INT64_2 = TensorInfo((2,), "int64")


def _info(shape):
    return shape if isinstance(shape, TensorInfo) else TensorInfo(tuple(shape), "float32")


def _zeros(shape):
    return np.zeros(_info(shape).shape, _info(shape).dtype)


ERRORS = [
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8, 1)], {}, "must all be 3-D or all 4-D"),
    ([(2, 4, 24), (2, 6, 24), (2, 6, 24)], {"q_num_heads": 3}, "needs kv_num_heads > 0"),
    ([(2, 4, 24), (2, 6, 24), (2, 6, 24)], {"q_num_heads": 5, "kv_num_heads": 3}, "not a multiple of q_num_heads"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)], {"q_num_heads": 4}, r"q_num_heads 4 but 4-D Q \[2, 3, 4, 8\] has 3"),
    ([(2, 4, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)], {}, "not a multiple of 3 key/value heads"),
    ([(2, 3, 4, 8), (2, 3, 6, 4), (2, 3, 6, 8)], {}, "differ in head size"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 5, 8)], {}, "differ in heads or sequence length"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (4, 7)], {}, r"attn_mask \[4, 7\] does not broadcast"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2, 2, 4, 6)], {}, "does not broadcast"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (4, 6), (2, 3, 1, 8)], {}, "past_key and past_value come together"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 1, 8), (2, 3, 2, 8)],
     {"extra_inputs": ["past_key", "past_value"]}, "one P for both"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), TensorInfo((3,), "int64")], {"extra_inputs": ["nonpad_kv_seqlen"]},
     r"nonpad_kv_seqlen \[3\] must be \[2\]"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2,)], {"extra_inputs": ["mask"]}, "'mask' is not one of"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2,)], {"extra_inputs": ["attn_mask", "past_key"]},
     "names 2 inputs"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2,), (2,)], {"extra_inputs": ["attn_mask", "attn_mask"]},
     "names attn_mask twice"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 1, 8), (2, 3, 1, 8), INT64_2],
     {"extra_inputs": ["past_key", "past_value", "nonpad_kv_seqlen"]}, "cannot come with past_key"),
    ([(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)], {"softmax_precision": 2}, "softmax_precision int32"),
]


@pytest.mark.parametrize("shapes, args, message", ERRORS)
def test_attention_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("Attention", [_info(shape) for shape in shapes], **args)
    inputs = [_zeros(shape) for shape in shapes]
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("Attention", inputs, args)


def test_attention_type_errors():
    with pytest.raises(ShapeError, match="must be one of float16"):
        infer("Attention", [(2, 3, 4, 8)] * 3, dtype="int32")
    q = np.zeros((1, 1, 2, 4), np.float32)
    with pytest.raises((OpFailure, NetError), match="Q, K, past_key must be one of"):
        run_op("Attention", [q, q.astype(np.float64), q])


# -- RotaryEmbedding --------------------------------------------------------------------------

def reference_rotary(x, cos, sin, *positions, interleaved=0, rotary_embedding_dim=0, num_heads=0, inverse=0):
    """Rotate each (x1, x2) pair of each head of each token by its own angle."""
    view = x.transpose(0, 2, 1, 3) if x.ndim == 4 else x.reshape(x.shape[0], x.shape[1], num_heads, -1)
    out = np.array(view, dtype=np.float64)
    rotated = rotary_embedding_dim or view.shape[3]
    batch, seq, heads, _ = view.shape
    for b in range(batch):
        for s in range(seq):
            row = positions[0][b, s] if positions else None
            for p in range(rotated // 2):
                c = cos[row, p] if positions else cos[b, s, p]
                n = (-1 if inverse else 1) * (sin[row, p] if positions else sin[b, s, p])
                first, second = (2 * p, 2 * p + 1) if interleaved else (p, p + rotated // 2)
                for h in range(heads):
                    x1, x2 = view[b, s, h, first], view[b, s, h, second]
                    out[b, s, h, first], out[b, s, h, second] = c * x1 - n * x2, n * x1 + c * x2
    return [out.transpose(0, 2, 1, 3) if x.ndim == 4 else out.reshape(x.shape)]


def rotary_inputs(rng, rank, rotated, positions, heads=2, seq=3, head=8):
    x = _rand(rng, 2, heads, seq, head) if rank == 4 else _rand(rng, 2, seq, heads * head)
    angles = rng.uniform(0, 2 * np.pi, (10, rotated // 2) if positions else (2, seq, rotated // 2))
    extra = [rng.integers(0, 10, (2, seq))] if positions else []
    return [x, np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)] + extra


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rotated", [0, 4])
@pytest.mark.parametrize("positions", [True, False])
@pytest.mark.parametrize("inverse", [0, 1])
def test_rotary_embedding(rank, interleaved, rotated, positions, inverse):
    inputs = rotary_inputs(np.random.default_rng(6), rank, rotated or 8, positions)
    args = {"interleaved": interleaved, "rotary_embedding_dim": rotated, "inverse": inverse}
    args |= {"num_heads": 2} if rank == 3 else {}
    check_reference("RotaryEmbedding", inputs, reference_rotary, args)


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("positions", [True, False])
def test_rotary_embedding_gradient(interleaved, positions):
    rng = np.random.default_rng(7)
    inputs = rotary_inputs(rng, 4, 4, positions)
    args = {"interleaved": interleaved, "rotary_embedding_dim": 4}
    names = ["x", "cos", "sin", "pos"][:len(inputs)]
    (grad_op,), _ = GetGradientForOp(make_op("RotaryEmbedding", names, ["y"], args), ["y_grad"])
    assert grad_op.type == "RotaryEmbedding" and list(grad_op.input) == ["y_grad"] + names[1:]
    dy = _rand(rng, *inputs[0].shape)
    grad_args = {a.name: a.i for a in grad_op.arg}
    got, = run_op("RotaryEmbedding", [dy] + inputs[1:], grad_args)
    expected = numeric_gradient("RotaryEmbedding", inputs, 0, [dy], args)
    np.testing.assert_allclose(got, expected, atol=1e-2, rtol=1e-2)


def test_rotary_embedding_inference():
    assert infer("RotaryEmbedding", [(2, 4, 3, 8), (50, 4), (50, 4), TensorInfo((2, 3), "int64")])[0].shape == (
        2, 4, 3, 8)
    assert infer("RotaryEmbedding", [(2, 3, 32), (2, 3, 2), (2, 3, 2)], num_heads=4,
                 rotary_embedding_dim=4)[0].shape == (2, 3, 32)


ROTARY_ERRORS = [
    ([(2, 3, 32), (2, 3, 4), (2, 3, 4)], {}, "needs num_heads > 0"),
    ([(2, 3, 30), (2, 3, 4), (2, 3, 4)], {"num_heads": 4}, "not a multiple of num_heads"),
    ([(2, 4, 3, 8), (2, 3, 4), (2, 3, 4)], {"num_heads": 2}, "num_heads 2 but X"),
    ([(2, 4, 3, 8), (2, 3, 4), (2, 3, 4)], {"rotary_embedding_dim": 3}, "must be even"),
    ([(2, 4, 3, 8), (2, 3, 4), (2, 3, 4)], {"rotary_embedding_dim": 10}, "at most the head size"),
    ([(2, 4, 3, 8), (2, 3, 3), (2, 3, 3)], {}, r"cos_cache \[2, 3, 3\] must be \[2, 3, 4\]"),
    ([(2, 4, 3, 8), (50, 3), (50, 3), (2, 3)], {}, r"must be \[positions, 4\]"),
    ([(2, 4, 3, 8), (50, 4), (40, 4), (2, 3)], {}, "differ"),
    ([(2, 4, 3, 8), (50, 4), (50, 4), (2, 2)], {}, r"position_ids \[2, 2\] must be \[2, 3\]"),
    ([(2, 8)] * 3, {}, "must be 3-D"),
]


@pytest.mark.parametrize("shapes, args, message", ROTARY_ERRORS)
def test_rotary_embedding_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("RotaryEmbedding", [_info(shape) for shape in shapes[:3]] + [TensorInfo(s, "int64") for s in shapes[3:]],
              **args)
    inputs = [np.zeros(shape, np.float32) for shape in shapes[:3]] + [np.zeros(s, np.int64) for s in shapes[3:]]
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("RotaryEmbedding", inputs, args)


def test_rotary_embedding_position_out_of_range():
    inputs = rotary_inputs(np.random.default_rng(8), 4, 8, True)
    inputs[3][0, 0] = 10
    with pytest.raises((OpFailure, NetError), match="position id 10 is out of range"):
        run_op("RotaryEmbedding", inputs)


# -- SwiGLU -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [1.0, 0.5, -1.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_swiglu(alpha, dtype):
    rng = np.random.default_rng(9)
    a, b = _rand(rng, 3, 5, dtype=dtype), _rand(rng, 3, 5, dtype=dtype)
    check_reference("SwiGLU", [a, b], lambda a, b, alpha: [a * b / (1 + np.exp(-alpha * a))], {"alpha": alpha})


def test_swiglu_gradient():
    rng = np.random.default_rng(10)
    a, b, dy = (rng.standard_normal((2, 4)) for _ in range(3))
    (grad_op,), _ = GetGradientForOp(make_op("SwiGLU", ["a", "b"], ["y"]), ["y_grad"])
    assert grad_op.type == "SwiGLUGradient" and list(grad_op.output) == ["a_grad", "b_grad"]
    check_gradient_op("SwiGLU", [a, b], "SwiGLUGradient", [a, b, dy], {0: 0, 1: 1}, [dy], {"alpha": 0.7})


@pytest.mark.parametrize("op", ["SwiGLU", "SwiGLUGradient"])
def test_swiglu_errors(op):
    extra = [np.ones((2, 3), np.float32)] if op == "SwiGLUGradient" else []
    with pytest.raises(ShapeError, match=r"A \[2, 3\] and B \[3, 2\] must have the same shape"):
        infer(op, [(2, 3), (3, 2)] + [(2, 3)] * len(extra), n_out=len(extra) + 1)
    with pytest.raises((OpFailure, NetError), match="A is float32 and B float64"):
        run_op(op, [np.ones((2, 3), np.float32), np.ones((2, 3))] + extra)


# -- LinearAttention --------------------------------------------------------------------------

def reference_linear_attention(query, key, value, *extra, extra_inputs, q_num_heads, kv_num_heads, update_rule,
                               scale=0.0):
    """Each key/value head's state step by step, in float64; query heads read it."""
    given = dict(zip(extra_inputs, extra))
    batch, steps = query.shape[:2]
    dk, dv, group = query.shape[2] // q_num_heads, value.shape[2] // kv_num_heads, q_num_heads // kv_num_heads
    factor = scale or 1 / math.sqrt(dk)
    out = np.zeros((batch, steps, q_num_heads, dv))
    present = np.zeros((batch, kv_num_heads, dk, dv))
    for b in range(batch):
        for kv in range(kv_num_heads):
            state = given["past_state"][b, kv].astype(np.float64) if "past_state" in given else np.zeros((dk, dv))
            for t in range(steps):
                k, v = key[b, t, kv * dk:(kv + 1) * dk], value[b, t, kv * dv:(kv + 1) * dv]
                if "decay" in given:
                    per_key = given["decay"].shape[2] != kv_num_heads
                    g = given["decay"][b, t, kv * dk:(kv + 1) * dk] if per_key else given["decay"][b, t, kv]
                    state = np.exp(g).reshape(-1, 1) * state
                if "beta" in given:
                    v = given["beta"][b, t, kv % given["beta"].shape[2]] * (v - state.T @ k)
                state = state + np.outer(k, v)
                for h in range(kv * group, (kv + 1) * group):
                    out[b, t, h] = factor * query[b, t, h * dk:(h + 1) * dk] @ state
            present[b, kv] = state
    return [out.reshape(batch, steps, -1), present]


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("heads", [(2, 2), (4, 2), (3, 1)])
@pytest.mark.parametrize("variant", ["plain", "per_key_decay", "past", "scalar_beta"])
def test_linear_attention(rule, heads, variant):
    rng = np.random.default_rng(11)
    (hq, hkv), batch, steps, dk, dv = heads, 2, 3, 4, 5
    inputs = [_rand(rng, batch, steps, hq * dk), _rand(rng, batch, steps, hkv * dk) / 2,
              _rand(rng, batch, steps, hkv * dv)]
    names = ["past_state"] if variant == "past" else []
    extra = [_rand(rng, batch, hkv, dk, dv)] if variant == "past" else []
    if "gated" in rule:
        names.append("decay")
        extra.append(-rng.random((batch, steps, hkv * dk if variant == "per_key_decay" else hkv), np.float32))
    if "delta" in rule:
        names.append("beta")
        extra.append(rng.random((batch, steps, 1 if variant == "scalar_beta" else hkv), np.float32))
    args = {"extra_inputs": names, "q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule}
    args |= {"scale": 0.3} if variant == "plain" else {}
    check_reference("LinearAttention", inputs + extra, reference_linear_attention, args, num_outputs=2)


LINEAR_ERRORS = [
    ([(2, 3, 8)] * 3, {"update_rule": "gated"}, "update_rule gated needs decay"),
    ([(2, 3, 8)] * 3 + [(2, 3, 2)], {"update_rule": "linear", "extra_inputs": ["beta"]}, "linear takes no beta"),
    ([(2, 3, 8)] * 3, {"q_num_heads": 3, "update_rule": "linear"}, "not a multiple of kv_num_heads 2"),
    ([(2, 3, 8), (2, 3, 8), (2, 4, 8)], {"update_rule": "linear"}, "differ in batch, steps or key size"),
    ([(2, 3, 8)] * 3 + [(2, 3, 3)], {"update_rule": "gated"}, r"decay \[2, 3, 3\] must be \[2, 3, 2\] or"),
    ([(2, 3, 8)] * 3 + [(2, 2, 4, 3)], {"update_rule": "linear", "extra_inputs": ["past_state"]},
     r"past_state \[2, 2, 4, 3\] must be \[2, 2, 4, 4\]"),
    ([(2, 3, 8)] * 2 + [(2, 3)], {"update_rule": "linear"}, "must be 3-D"),
]


@pytest.mark.parametrize("shapes, args, message", LINEAR_ERRORS)
def test_linear_attention_errors(shapes, args, message):
    args = {"q_num_heads": 2, "kv_num_heads": 2} | args
    with pytest.raises(ShapeError, match=message):
        infer("LinearAttention", shapes, n_out=2, **args)
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("LinearAttention", [np.zeros(shape, np.float32) for shape in shapes], args)


# -- CausalConvWithState ----------------------------------------------------------------------

def reference_causal_conv(x, weight, *extra, extra_inputs=(), activation="none"):
    given = dict(zip(extra_inputs or ("bias", "past_state"), extra))
    batch, channels, length = x.shape
    k = weight.shape[2]
    history = given.get("past_state", np.zeros((batch, channels, k - 1)))
    full = np.concatenate([history, x], axis=2)
    y = np.zeros(x.shape)
    for b in range(batch):
        for c in range(channels):
            for t in range(length):
                y[b, c, t] = sum(full[b, c, t + i] * weight[c, 0, i] for i in range(k)) + (
                    given["bias"][c] if "bias" in given else 0)
    if activation != "none":
        y = y / (1 + np.exp(-y))
    return [y, full[:, :, length:]]


@pytest.mark.parametrize("k, length", [(4, 6), (1, 5), (5, 2)])
@pytest.mark.parametrize("extra", [(), ("bias",), ("past_state",), ("past_state", "bias")])
@pytest.mark.parametrize("activation", ["none", "silu"])
def test_causal_conv_with_state(k, length, extra, activation):
    rng = np.random.default_rng(12)
    values = {"bias": _rand(rng, 3), "past_state": _rand(rng, 2, 3, k - 1)}
    inputs = [_rand(rng, 2, 3, length), _rand(rng, 3, 1, k)] + [values[name] for name in extra]
    check_reference("CausalConvWithState", inputs, reference_causal_conv,
                    {"extra_inputs": list(extra), "activation": activation}, num_outputs=2)


CONV_STATE_ERRORS = [
    ([(2, 3, 5), (4, 1, 3)], {}, r"weight \[4, 1, 3\] must be \[3, 1, k\]"),
    ([(2, 3, 5), (3, 1, 3), (2,)], {}, r"bias \[2\] must be \[3\]"),
    ([(2, 3, 5), (3, 1, 3), (2, 3, 3)], {"extra_inputs": ["past_state"]}, r"past_state \[2, 3, 3\] must be \[2, 3, 2\]"),
    ([(2, 3), (3, 1, 3)], {}, "must be 3-D"),
    ([(2, 3, 5), (3, 1, 3), (3,)], {"extra_inputs": ["weight"]}, "'weight' is not one of"),
]


@pytest.mark.parametrize("shapes, args, message", CONV_STATE_ERRORS)
def test_causal_conv_with_state_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("CausalConvWithState", shapes, n_out=2, **args)
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("CausalConvWithState", [np.zeros(shape, np.float32) for shape in shapes], args)


@pytest.mark.parametrize("op, inputs", [("LinearAttention", ["q", "k", "v"]), ("CausalConvWithState", ["x", "w"])])
def test_no_gradient(op, inputs):
    with pytest.raises(GradientError):
        GetGradientForOp(make_op(op, inputs, ["y"]), ["y_grad"])
