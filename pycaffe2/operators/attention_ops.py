"""NumPy kernels of the attention_ops family: Attention (ONNX's scaled dot-product
attention with grouped heads, caches, masks and windows), RotaryEmbedding (its gradient
is the opposite rotation), SwiGLU and its gradient, LinearAttention (the recurrent
state rules) and CausalConvWithState."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.attention_ops import (
    AttentionDims,
    attention_dims,
    check_attention_mask,
    check_attention_types,
    check_conv_state,
    check_nonpad,
    check_swiglu,
    conv_state_positions,
    extra_positions,
    linear_dims,
    linear_positions,
    rotary_dims,
    softmax_dtype,
)


def _to_heads(x, heads: int, rank: int):
    """[B, S, heads * size] -> [B, heads, S, size]; 4-D as is."""
    if rank == 4:
        return x
    batch, seq, hidden = x.shape
    return x.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)


def _allowed_keys(dims: AttentionDims, is_causal, left, right, offset, nonpad):
    """Boolean [B or 1, 1, Sq, T]: which keys each query may attend by the causal rule,
    the window and the per-batch key counts (None when nothing restricts). offset: the
    keys before the query block, an int or one per batch item."""
    if not (is_causal or left >= 0 or right >= 0 or nonpad is not None):
        return None
    keys = np.arange(dims.total)
    position = np.arange(dims.q_len)[:, None] + np.reshape(offset, (-1, 1, 1))  # [B|1, Sq, 1]
    allowed = np.ones((1, 1, 1), dtype=bool)
    if is_causal:
        allowed = allowed & (keys <= position)
    if left >= 0:
        allowed = allowed & (keys >= position - left)
    if right >= 0:
        allowed = allowed & (keys <= position + right)
    if nonpad is not None:
        allowed = allowed & (keys < nonpad.reshape(-1, 1, 1))
    return allowed[:, None]


def _bias(mask, allowed, dims: AttentionDims, dtype):
    """The additive bias: the mask (bool -> 0 / -inf; its missing keys -inf) and -inf
    wherever `allowed` says no; broadcastable to [B, Hq, Sq, T]."""
    bias = np.zeros((dims.q_len, dims.total), dtype)
    if mask is not None:
        missing = [(0, 0)] * (mask.ndim - 1) + [(0, dims.total - mask.shape[-1])]
        if mask.dtype == np.bool_:
            mask = np.where(np.pad(mask, missing, constant_values=False), dtype.type(0), dtype.type(-np.inf))
        else:
            mask = np.pad(mask.astype(dtype), missing, constant_values=-np.inf)
        bias = bias + mask
    if allowed is not None:
        bias = np.where(allowed, bias, dtype.type(-np.inf))
    return bias


def _softmax(scores):
    """Softmax over the last axis; a row of -inf only gives zeros, not NaN."""
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isneginf(top), scores.dtype.type(0), top)
    exp = np.exp(scores - top)
    total = exp.sum(axis=-1, keepdims=True)
    return exp / np.where(total == 0, scores.dtype.type(1), total)


def _grouped_matmul(a, b, kv_heads: int):
    """a [B, Hq, M, K] @ b [B, Hkv, K, N], query head h using kv head h // (Hq / Hkv), in
    a's type (NumPy gives float32 for bfloat16)."""
    batch, q_heads, m, _ = a.shape
    grouped = a.reshape(batch, kv_heads, q_heads // kv_heads, m, a.shape[3]) @ b[:, :, None]
    return grouped.reshape(batch, q_heads, m, b.shape[3]).astype(a.dtype, copy=False)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _extras(inputs, extra_inputs) -> dict:
    return {name: inputs[index - 3] for name, index in extra_positions(extra_inputs, len(inputs)).items()}


@register_cpu("Attention")
def attention(q, k, v, *extra, extra_inputs, scale, is_causal, q_num_heads, kv_num_heads, softcap,
              qk_matmul_output_mode, softmax_precision, left_window_size, right_window_size, num_outputs):
    given = _extras(extra, extra_inputs)
    check_attention_types({name: np.dtype(value.dtype).name for name, value in
                           [("Q", q), ("K", k), ("V", v), *given.items()] if name != "attn_mask"},
                          softmax_precision)
    past_key, past_value = given.get("past_key"), given.get("past_value")
    mask, nonpad = given.get("attn_mask"), given.get("nonpad_kv_seqlen")
    dims = attention_dims(q.shape, k.shape, v.shape, None if past_key is None else past_key.shape,
                          None if past_value is None else past_value.shape, q_num_heads, kv_num_heads)
    if mask is not None:
        check_attention_mask(mask.shape, dims)
    if nonpad is not None:
        check_nonpad(nonpad.shape, dims)
    dtype = q.dtype
    keys, values = _to_heads(k, dims.kv_heads, dims.rank), _to_heads(v, dims.kv_heads, dims.rank)
    if past_key is not None:
        keys = np.concatenate([past_key, keys], axis=2)
        values = np.concatenate([past_value, values], axis=2)
    offset = dims.past_len if nonpad is None else nonpad.astype(np.int64) - dims.q_len
    allowed = _allowed_keys(dims, is_causal, left_window_size, right_window_size, offset, nonpad)
    bias = _bias(mask, allowed, dims, dtype)

    # Q and K each take sqrt(scale), in Q's type, as ONNX's function body does.
    root = dtype.type(np.sqrt(scale if scale is not None else 1 / np.sqrt(dims.head)))
    logits = _grouped_matmul(_to_heads(q, dims.q_heads, dims.rank) * root, np.swapaxes(keys * root, 2, 3),
                             dims.kv_heads)
    capped = np.tanh(logits / dtype.type(softcap)) * dtype.type(softcap) if softcap > 0 else logits
    scores = capped + bias
    precise = scores if softmax_precision is None else scores.astype(softmax_dtype(softmax_precision))
    # A query with no key left (its bias -inf throughout) gets zero weights.
    unattended = np.isneginf(bias).all(axis=-1, keepdims=True)
    weights = np.where(unattended, precise.dtype.type(0), _softmax(precise))
    y = _grouped_matmul(weights.astype(dtype), values, dims.kv_heads)
    if dims.rank == 3:
        y = y.transpose(0, 2, 1, 3).reshape(dims.batch, dims.q_len, -1)
    outputs = [y]
    if num_outputs > 1:
        outputs += [np.array(keys, order="C"), np.array(values, order="C")]  # copies, never the inputs
    if num_outputs > 3:
        qk = (logits, capped, scores, weights)[qk_matmul_output_mode]
        outputs.append(np.ascontiguousarray(qk, dtype=dtype))
    return tuple(outputs[:num_outputs])


# -- RotaryEmbedding ------------------------------------------------------------------------

@register_cpu("RotaryEmbedding")
def rotary_embedding(x, cos_cache, sin_cache, *position_ids, interleaved, rotary_embedding_dim, num_heads,
                     inverse):
    positions = position_ids[0] if position_ids else None
    batch, seq, heads, head, rotated = rotary_dims(
        x.shape, cos_cache.shape, sin_cache.shape, None if positions is None else positions.shape, num_heads,
        rotary_embedding_dim)
    if positions is not None:
        check_in_range(positions, cos_cache.shape[0], "position id")
        cos_cache, sin_cache = cos_cache[positions], sin_cache[positions]
    cos = cos_cache[:, :, None, :].astype(x.dtype, copy=False)  # [B, S, 1, R / 2]
    sin = sin_cache[:, :, None, :].astype(x.dtype, copy=False)
    if inverse:
        sin = -sin
    view = x.transpose(0, 2, 1, 3) if x.ndim == 4 else x.reshape(batch, seq, heads, head)  # [B, S, H, head]
    out = np.array(view, copy=True)
    first = np.s_[..., 0:rotated:2] if interleaved else np.s_[..., :rotated // 2]
    second = np.s_[..., 1:rotated:2] if interleaved else np.s_[..., rotated // 2:rotated]
    x1, x2 = view[first], view[second]
    out[first] = cos * x1 - sin * x2
    out[second] = sin * x1 + cos * x2
    return out.transpose(0, 2, 1, 3).copy() if x.ndim == 4 else out.reshape(x.shape)


@register_gradient("RotaryEmbedding")
def make_rotary_embedding_gradient(g):
    """A rotation's gradient is the opposite rotation of the output gradient (the
    caches and positions get none)."""
    inputs = [g.GO(0)] + [g.I(i) for i in range(1, len(g.op.input))]
    return [g.Op("RotaryEmbedding", inputs, [g.GI(0)], inverse=0 if g.arg("inverse") else 1)]


# -- SwiGLU -----------------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@register_cpu("SwiGLU")
def swiglu(a, b, *, alpha):
    check_swiglu(info_of(a), info_of(b))
    return (a * _sigmoid(a * a.dtype.type(alpha)) * b).astype(a.dtype, copy=False)


@register_gradient("SwiGLU")
def make_swiglu_gradient(g):
    return [g.Op("SwiGLUGradient", [g.I(0), g.I(1), g.GO(0)], [g.GI(0), g.GI(1)])]


@register_cpu("SwiGLUGradient")
def swiglu_gradient(a, b, dy, *, alpha):
    check_swiglu(info_of(a), info_of(b))
    gate = _sigmoid(a * a.dtype.type(alpha))
    d_a = dy * b * gate * (1 + alpha * a * (1 - gate))
    return d_a.astype(a.dtype, copy=False), (dy * a * gate).astype(a.dtype, copy=False)


# -- LinearAttention --------------------------------------------------------------------------

def _per_head(x, heads: int):
    """[B, T, heads * n] -> [B, heads, T, n] in float32 (the recurrence's type)."""
    batch, steps, hidden = x.shape
    return x.reshape(batch, steps, heads, hidden // heads).transpose(0, 2, 1, 3).astype(np.float32)


@register_cpu("LinearAttention")
def linear_attention(query, key, value, *extra, extra_inputs, q_num_heads, kv_num_heads, scale, update_rule,
                     num_outputs):
    names = linear_positions(extra_inputs, len(extra), update_rule)
    given = {name: extra[index - 3] for name, index in names.items()}
    shapes = {name: x.shape for name, x in given.items()}
    batch, steps, dk, dv = linear_dims(query.shape, key.shape, value.shape, shapes, q_num_heads, kv_num_heads)
    group = q_num_heads // kv_num_heads
    q = _per_head(query, q_num_heads).reshape(batch, kv_num_heads, group, steps, dk)
    k, v = _per_head(key, kv_num_heads), _per_head(value, kv_num_heads)
    # decay and beta as [B, Hkv or 1, T, dk or 1]: per head or per key entry.
    decay = given.get("decay")
    if decay is not None:
        decay = _per_head(decay, kv_num_heads)
    beta = given.get("beta")
    if beta is not None:
        beta = _per_head(beta, beta.shape[2])
    past = given.get("past_state")
    state = np.zeros((batch, kv_num_heads, dk, dv), np.float32) if past is None else past.astype(np.float32)
    factor = np.float32(scale if scale != 0 else 1 / np.sqrt(dk))
    out = np.zeros((batch, kv_num_heads, group, steps, dv), np.float32)
    for t in range(steps):
        if decay is not None:
            state = state * np.exp(decay[:, :, t])[..., None]
        new = v[:, :, t]
        if beta is not None:  # the delta rule writes the error of what the state recalls
            new = beta[:, :, t] * (new - np.einsum("bhkv,bhk->bhv", state, k[:, :, t]))
        state = state + k[:, :, t, :, None] * new[:, :, None, :]
        out[:, :, :, t] = factor * np.einsum("bhgk,bhkv->bhgv", q[:, :, :, t], state)
    output = out.reshape(batch, q_num_heads, steps, dv).transpose(0, 2, 1, 3).reshape(batch, steps, -1)
    outputs = (output.astype(query.dtype), state.astype(query.dtype if past is None else past.dtype))
    return outputs[:num_outputs]


# -- CausalConvWithState ----------------------------------------------------------------------

@register_cpu("CausalConvWithState")
def causal_conv_with_state(x, weight, *extra, extra_inputs, activation, num_outputs):
    given = {name: extra[index - 2] for name, index in conv_state_positions(extra_inputs, len(extra)).items()}
    bias, past = given.get("bias"), given.get("past_state")
    k = check_conv_state(x.shape, weight.shape, None if bias is None else bias.shape,
                         None if past is None else past.shape)
    batch, channels, length = x.shape
    prefix = np.zeros((batch, channels, k - 1), x.dtype) if past is None else past.astype(x.dtype)
    padded = np.concatenate([prefix, x], axis=2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=2)  # [B, C, L, k]
    work = np.float32 if x.dtype == np.float16 else x.dtype  # half sums in float32
    y = np.einsum("bclk,ck->bcl", windows.astype(work), weight[:, 0].astype(work))
    if bias is not None:
        y = y + bias.astype(work)[:, None]
    y = y.astype(x.dtype)
    if _text(activation) != "none":  # SiLU, in float32 at least
        wide = y.astype(np.promote_types(y.dtype, np.float32))
        y = (wide * _sigmoid(wide)).astype(x.dtype)
    return (y, padded[:, :, length:].copy())[:num_outputs]
