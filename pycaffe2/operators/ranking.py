"""Ranking and pairwise criteria (NumPy) on the CPU, with their gradient ops:
PairWiseLoss, MarginRankingCriterion, CosineEmbeddingCriterion, BernoulliJSD
and LambdaRankNdcg.

PairWiseLoss and LambdaRankNdcg compare every pair of items within a session;
a session's pairs are taken a block of rows at a time, so a long session costs
time, not an [L, L] array at once. The other ops are elementwise. Shape checks
are the schema's (schema/inference/ranking.py).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference import TensorInfo, info_of
from pycaffe2.schema.inference import ranking as checks

_PAIR_BLOCK = 1 << 20  # pairs compared at once within one session


def _sessions(x, label, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores [N] in float64, labels [N], session lengths) after the schema's checks."""
    n, _ = checks.pair_inputs(*(info_of(v) for v in (x, label, lengths)))
    if lengths is None:
        lengths = np.array([n], np.int64)
    elif n:
        checks.session_lengths(lengths, n)
    return x.reshape(n).astype(np.float64), label.reshape(n), lengths.astype(np.int64)


def _pairs(x, label, start, stop):
    """Blocks (rows i, s, d, counted) over the pairs j < i of one session, where s is
    the pair's sign (+1 when label[i] > label[j]), d = X[j] - X[i], counted the mask."""
    rows = max(1, _PAIR_BLOCK // max(stop - start, 1))
    for first in range(start, stop, rows):
        i = np.arange(first, min(first + rows, stop))[:, None]
        j = np.arange(start, stop)[None, :]
        diff = label[i] - label[j]
        counted = (j < i) & (np.abs(diff) >= np.finfo(np.float32).eps)
        yield i[:, 0], np.where(diff > 0, 1.0, -1.0), x[j] - x[i], counted


def _log_logit(v):
    """log(1 + exp(v)), as Caffe2 cuts it: 0 below log(eps), v above -log(eps)."""
    cut = np.log(np.finfo(np.float32).eps)
    return np.where(v < cut, 0.0, np.where(v > -cut, v, np.log1p(np.exp(np.clip(v, cut, -cut)))))


@register_cpu("PairWiseLoss")
def pair_wise_loss(x, label, lengths=None):
    n = x.shape[0] if x.ndim else 0
    if n == 0:
        return np.zeros(0, x.dtype)
    scores, labels, lengths = _sessions(x, label, lengths)
    y = np.zeros(lengths.size, np.float64)
    for index, (start, stop) in enumerate(zip(np.cumsum(lengths) - lengths, np.cumsum(lengths))):
        total, count = 0.0, 0
        for _, sign, diff, counted in _pairs(scores, labels, start, stop):
            total += float(np.sum(_log_logit(sign * diff), where=counted))
            count += int(counted.sum())
        y[index] = total / count if count else 0.0
    return y.astype(x.dtype)


@register_cpu("PairWiseLossGradient")
def pair_wise_loss_gradient(x, label, dy, lengths=None):
    n = x.shape[0] if x.ndim else 0
    if n == 0:
        return np.zeros_like(x)
    scores, labels, lengths = _sessions(x, label, lengths)
    checks.session_grad(dy.shape, lengths.size)
    dx = np.zeros(n, np.float64)
    for index, (start, stop) in enumerate(zip(np.cumsum(lengths) - lengths, np.cumsum(lengths))):
        count = 0
        for i, sign, diff, counted in _pairs(scores, labels, start, stop):
            grad = np.where(counted, sign * float(dy[index]) / (1 + np.exp(np.clip(-sign * diff, -80, 80))), 0.0)
            dx[i] -= grad.sum(axis=1)
            dx[start:stop] += grad.sum(axis=0)
            count += int(counted.sum())
        if count:
            dx[start:stop] /= count
    return dx.astype(x.dtype).reshape(x.shape)


@register_gradient("PairWiseLoss")
def _pair_wise_loss_gradient(g):
    lengths = [g.I(2)] if len(g.op.input) == 3 else []
    return [g.Op("PairWiseLossGradient", [g.I(0), g.I(1), g.GO(0), *lengths], [g.GI(0)])]


def _info(*values):
    return [info_of(v) for v in values]


@register_cpu("MarginRankingCriterion")
def margin_ranking_criterion(x1, x2, y, *, margin):
    checks.margin(None, _info(x1, x2, y))
    return np.maximum(-y.reshape(x1.shape) * (x1 - x2.reshape(x1.shape)) + margin, 0).astype(x1.dtype)


@register_cpu("MarginRankingCriterionGradient")
def margin_ranking_criterion_gradient(x1, x2, y, dloss, *, margin):
    checks.margin_gradient(None, _info(x1, x2, y, dloss))
    y = y.reshape(x1.shape)
    active = -y * (x1 - x2.reshape(x1.shape)) + margin >= 0
    dx1 = np.where(active, -y * dloss.reshape(x1.shape), 0).astype(x1.dtype)
    return dx1, (-dx1).astype(x2.dtype).reshape(x2.shape)


@register_cpu("CosineEmbeddingCriterion")
def cosine_embedding_criterion(s, y, *, margin):
    checks.cosine_embedding(None, _info(s, y))
    return np.where(y.reshape(s.shape) == 1, 1 - s, np.maximum(s - margin, 0)).astype(s.dtype)


@register_cpu("CosineEmbeddingCriterionGradient")
def cosine_embedding_criterion_gradient(s, y, dloss, *, margin):
    checks.cosine_embedding_gradient(None, _info(s, y, dloss))
    factor = np.where(y.reshape(s.shape) == 1, -1.0, (s >= margin).astype(np.float64))
    return (dloss.reshape(s.shape) * factor).astype(s.dtype)


_LOG_FLOOR = 1e-20  # Caffe2's kLOG_THRESHOLD


def _entropy(p):
    """H(p) of a Bernoulli, 0 where p or 1 - p is under the floor."""
    inside = (p >= _LOG_FLOOR) & (1 - p >= _LOG_FLOOR)
    safe = np.where(inside, p, 0.5)
    return np.where(inside, -safe * np.log(safe) - (1 - safe) * np.log(1 - safe), 0.0)


def _logit(p):
    p = np.clip(p, _LOG_FLOOR, 1 - _LOG_FLOOR)
    return -np.log(1 / p - 1)


@register_cpu("BernoulliJSD")
def bernoulli_jsd(x, t):
    checks.bernoulli_jsd(None, _info(x, t))
    p, q = x.astype(np.float64), t.astype(np.float64).reshape(x.shape)
    return (_entropy((p + q) / 2) - (_entropy(p) + _entropy(q)) / 2).astype(x.dtype)


@register_cpu("BernoulliJSDGradient")
def bernoulli_jsd_gradient(dl, x, t):
    checks.bernoulli_jsd_gradient(None, _info(dl, x, t))
    p, q = x.astype(np.float64), t.astype(np.float64).reshape(x.shape)
    return (dl.reshape(x.shape) * (_logit(p) - _logit((p + q) / 2)) / 2).astype(x.dtype)


def _discounts(values):
    """1 / log2(position + 1) of each item, positions from 1 by descending value."""
    out = np.empty(values.size)
    out[np.argsort(-values, kind="stable")] = 1 / np.log2(np.arange(2, values.size + 2))
    return out


def _log_sigmoid(v):
    """log(sigmoid(v)), cut as Caffe2 does: 0 above 100, v below -100."""
    inner = -np.log1p(np.exp(-np.clip(v, -100, 100)))
    return np.where(v > 100, 0.0, np.where(v < -100, v, inner))


def _lambda_session(y, r, ndcg, normalize, exp_gain) -> tuple[float, np.ndarray]:
    """(loss, dy) of one session, in float64, a block of rows of the pair matrices at a time."""
    if np.abs(r).sum() < 1e-6:
        return 0.0, np.zeros(y.size)
    gain = r if ndcg and not exp_gain else np.exp2(r)
    discount = _discounts(y)
    idcg, dcg = float(gain @ _discounts(r)), float(gain @ discount)
    loss, dy = 0.0, np.zeros(y.size)
    rows = max(1, _PAIR_BLOCK // y.size)
    for first in range(0, y.size, rows):
        i = slice(first, first + rows)
        weight = np.abs((discount[i, None] - discount[None, :]) * (gain[i, None] - gain[None, :]))
        sign = np.where(r[i, None] - r[None, :] > 0, 1.0, -1.0)
        diff = y[i, None] - y[None, :]
        dy[i] = -(weight * sign / (1 + np.exp(np.clip(sign * diff, -80, 80)))).sum(axis=1)
        if not ndcg:
            loss -= float((weight * _log_sigmoid(sign * diff)).sum())
    if ndcg:
        loss = idcg - dcg
    if normalize:
        loss, dy = loss / max(idcg, 1e-5), dy / max(idcg, 1e-5)
    return loss, dy


def _lambda_sessions(y, other, lengths):
    """Session bounds after the schema's checks, for y and `other` (r or dy_cache)."""
    checks.lambda_rank_inputs(TensorInfo(y.shape, y.dtype.name), TensorInfo(other.shape, other.dtype.name),
                              TensorInfo(lengths.shape, lengths.dtype.name))
    checks.session_lengths(lengths, y.size)
    stops = np.cumsum(lengths, dtype=np.int64)
    return zip(stops - lengths, stops)


@register_cpu("LambdaRankNdcg")
def lambda_rank_ndcg(y, r, session_lengths, *, use_ndcg_as_loss, use_idcg_normalization, use_exp_gain):
    bounds = list(_lambda_sessions(y, r, session_lengths))
    loss, dy = np.zeros(len(bounds)), np.zeros(y.size)
    scores, relevance = y.astype(np.float64), r.reshape(-1).astype(np.float64)
    for index, (start, stop) in enumerate(bounds):
        if stop > start:
            loss[index], dy[start:stop] = _lambda_session(scores[start:stop], relevance[start:stop],
                                                          use_ndcg_as_loss, use_idcg_normalization, use_exp_gain)
    return loss.astype(np.float32), dy.astype(y.dtype)


@register_cpu("LambdaRankNdcgGradient")
def lambda_rank_ndcg_gradient(y, session_lengths, dy_cache, dloss):
    checks.lambda_rank_gradient(None, _info(y, session_lengths, dy_cache, dloss))
    checks.session_lengths(session_lengths, y.size)
    per_item = np.repeat(dloss.reshape(-1).astype(np.float64), session_lengths)
    return (per_item * dy_cache).astype(y.dtype)


gradient_op("LambdaRankNdcg", "I0 I2 O1 GO0")
gradient_op("MarginRankingCriterion", "I0 I1 I2 GO0", "GI0 GI1")
gradient_op("CosineEmbeddingCriterion", "I0 I1 GO0")
gradient_op("BernoulliJSD", "GO0 I0 I1")
