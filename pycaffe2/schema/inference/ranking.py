"""Inference rules of the ranking family (PairWiseLoss, MarginRankingCriterion,
CosineEmbeddingCriterion, BernoulliJSD and their gradients), and the checks
its kernels share with them.

PairWiseLoss scores are [N] or [N, 1] (one per row) with labels alike and optional int32
session lengths summing to N; its output has one loss per session. The other
ops are elementwise over inputs holding the same number of elements, their
labels int32 (+1 or -1); every output or gradient is shaped like the first
float input.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_sizes, shape_of
from pycaffe2.schema.inference.activation import float_dtypes
from pycaffe2.schema.inference.loss import int32_labels


def pair_scores(x_shape, label_shape) -> int:
    """N of PairWiseLoss's X ([N] or [N, 1, ...]: one score per row; N = 0 for a 0-d X)
    after checking the label."""
    n = x_shape[0] if x_shape else 0
    if n and math.prod(x_shape) != n:
        raise ShapeError(f"X must hold one score per row, [N] or [N, 1], got {list(x_shape)}")
    if label_shape is not None and n and tuple(label_shape) not in ((n,), (n, 1)):
        raise ShapeError(f"X has N={n} scores but label is {list(label_shape)}: label must be [{n}] or [{n}, 1]")
    return n


def session_count(lengths_shape) -> int:
    """S, the number of sessions in a 1-D lengths blob."""
    if len(lengths_shape) != 1:
        raise ShapeError(f"lengths must be 1-D [S], got {list(lengths_shape)}")
    return lengths_shape[0]


def session_lengths(lengths, n: int):
    """The lengths' values, checked: non-negative and summing to N."""
    if lengths.size and lengths.min() < 0:
        raise ShapeError(f"lengths must not be negative, got {int(lengths.min())}")
    if int(lengths.sum(dtype="int64")) != n:
        raise ShapeError(f"lengths sum to {int(lengths.sum(dtype='int64'))} but X has N={n} scores")
    return lengths


def _lengths_info(lengths) -> int | None:
    if lengths is None:
        return None
    if lengths.dtype != "int32":
        raise ShapeError(f"lengths must be int32, got {lengths.dtype}")
    return session_count(lengths.shape)


def pair_inputs(x, label, lengths) -> tuple:
    """(N or None, S or None) of PairWiseLoss's inputs after the checks."""
    float_dtypes([None if info is None else info.dtype for info in (x, label)])
    n = None if x is None else pair_scores(x.shape, shape_of(label))
    return n, _lengths_info(lengths)


@rule("ranking_pair_wise_loss")
def pair_wise_loss(op: OpView, inputs: list) -> list:
    """Y is [S] (sessions), [1] without lengths, [0] for an empty X."""
    x, label, lengths = (inputs + [None])[:3]
    n, s = pair_inputs(x, label, lengths)
    if n == 0:
        return [TensorInfo((0,), x.dtype)]
    if op.n_inputs < 3:
        s = 1
    return [None if s is None or x is None else TensorInfo((s,), x.dtype)]


@rule("ranking_pair_wise_loss_gradient")
def pair_wise_loss_gradient(op: OpView, inputs: list) -> list:
    """dX is like X; dY must be [S]."""
    x, label, dy, lengths = (inputs + [None])[:4]
    n, s = pair_inputs(x, label, lengths)
    if op.n_inputs < 4:
        s = 1
    if dy is not None and s is not None and n != 0:
        session_grad(dy.shape, s)
    return [x]


def session_grad(dy_shape, s: int) -> None:
    """PairWiseLossGradient's dY must hold one value per session, [S]."""
    if tuple(dy_shape) != (s,):
        raise ShapeError(f"dY is {list(dy_shape)} but there are {s} sessions: dY must be [{s}]")


def elementwise_inputs(named: dict, floats: dict, labels: dict) -> None:
    """The elementwise criteria: float inputs and int32 labels, all of one size."""
    same_sizes({name: shape_of(info) for name, info in named.items()})
    for name, info in floats.items():
        if info is not None and not info.dtype.startswith("float"):
            raise ShapeError(f"{name} must be float, got {info.dtype}")
    for name, info in labels.items():
        int32_labels(info, name)


@rule("ranking_margin")
def margin(op: OpView, inputs: list) -> list:
    x1, x2, y = inputs
    elementwise_inputs({"X1": x1, "X2": x2, "Y": y}, {"X1": x1, "X2": x2}, {"Y": y})
    return [x1]


@rule("ranking_margin_gradient")
def margin_gradient(op: OpView, inputs: list) -> list:
    x1, x2, y, dloss = inputs
    elementwise_inputs({"X1": x1, "X2": x2, "Y": y, "dloss": dloss}, {"X1": x1, "X2": x2, "dloss": dloss},
                       {"Y": y})
    return [x1, x2]


@rule("ranking_cosine_embedding")
def cosine_embedding(op: OpView, inputs: list) -> list:
    s, y = inputs
    elementwise_inputs({"S": s, "Y": y}, {"S": s}, {"Y": y})
    return [s]


@rule("ranking_cosine_embedding_gradient")
def cosine_embedding_gradient(op: OpView, inputs: list) -> list:
    s, y, dloss = inputs
    elementwise_inputs({"S": s, "Y": y, "dloss": dloss}, {"S": s, "dloss": dloss}, {"Y": y})
    return [s]


@rule("ranking_bernoulli_jsd")
def bernoulli_jsd(op: OpView, inputs: list) -> list:
    x, t = inputs
    elementwise_inputs({"X": x, "T": t}, {"X": x, "T": t}, {})
    return [x]


@rule("ranking_bernoulli_jsd_gradient")
def bernoulli_jsd_gradient(op: OpView, inputs: list) -> list:
    dl, x, t = inputs
    elementwise_inputs({"dL": dl, "X": x, "T": t}, {"dL": dl, "X": x, "T": t}, {})
    return [x]



def lambda_rank_inputs(y, r, lengths) -> int | None:
    """S of LambdaRankNdcg's inputs after the checks: y [N] float, r as many, lengths int32 [S]."""
    for name, info in (("y", y), ("r", r)):
        if info is not None and not info.dtype.startswith("float"):
            raise ShapeError(f"{name} must be float, got {info.dtype}")
    if y is not None and len(y.shape) != 1:
        raise ShapeError(f"y must be 1-D [N], got {list(y.shape)}")
    same_sizes({"y": shape_of(y), "r": shape_of(r)})
    return _lengths_info(lengths)


@rule("ranking_lambda_rank")
def lambda_rank(op: OpView, inputs: list) -> list:
    """loss float [S], dy like y."""
    y, r, lengths = inputs
    s = lambda_rank_inputs(y, r, lengths)
    return [None if s is None else TensorInfo((s,), "float32"), y]


@rule("ranking_lambda_rank_gradient")
def lambda_rank_gradient(op: OpView, inputs: list) -> list:
    """dy like y; dy_cache like y, dloss [S]."""
    y, lengths, dy_cache, dloss = inputs
    s = lambda_rank_inputs(y, dy_cache, lengths)
    if dy_cache is not None and len(dy_cache.shape) != 1:
        raise ShapeError(f"dy_cache must be 1-D [N], got {list(dy_cache.shape)}")
    if dloss is not None and s is not None and math.prod(dloss.shape) != s:
        raise ShapeError(f"dloss is {list(dloss.shape)} but there are {s} sessions: dloss must hold {s}")
    return [y]
