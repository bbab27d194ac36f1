"""Ranking family: PairWiseLoss, MarginRankingCriterion, CosineEmbeddingCriterion
and BernoulliJSD against independent NumPy references (loops over pairs and
elements in float64), their gradient ops against numeric differentiation and
through their makers, refusals, and the inference rules. CPU only."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GradientRegistry
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def ref_pair_wise_loss(x, label, lengths=None):
    x, label = x.reshape(-1).astype(np.float64), label.reshape(-1)
    if x.size == 0:
        return np.zeros(0)
    lengths = [x.size] if lengths is None else list(lengths)
    out, offset = [], 0
    for length in lengths:
        total, count = 0.0, 0
        for i in range(offset, offset + length):
            for j in range(offset, i):
                if label[i] != label[j]:
                    sign = 1 if label[i] > label[j] else -1
                    total += np.log(1 + np.exp(sign * (x[j] - x[i])))
                    count += 1
        out.append(total / count if count else 0.0)
        offset += length
    return np.array(out)


# (X shape, lengths or None)
PAIR_CASES = [((6,), None), ((6, 1), [2, 0, 4]), ((5, 1), [5]), ((4,), [1, 1, 1, 1]), ((0,), [0, 0])]


@pytest.mark.parametrize("shape, lengths", PAIR_CASES, ids=[f"{s}-{l}" for s, l in PAIR_CASES])
def test_pair_wise_loss(shape, lengths):
    rng = np.random.default_rng(sum(shape) + 3)
    x = rng.random(shape).astype(np.float32)
    label = rng.integers(0, 3, shape).astype(np.float32)
    inputs = [x, label] + ([] if lengths is None else [np.array(lengths, np.int32)])
    (y,) = check_reference("PairWiseLoss", inputs, ref_pair_wise_loss)
    if x.size == 0:
        return
    dy = rng.random(y.shape) + 0.5
    check_gradient_op("PairWiseLoss", inputs, "PairWiseLossGradient", [x, label, dy] + inputs[2:], {0: 0}, [dy],
                      rtol=1e-3, atol=1e-4)
    report = check_op_gradient(make_op("PairWiseLoss", ["X", "L", "S"][:len(inputs)], ["Y"]), inputs, 0)
    assert report.ok, report


def test_pair_wise_loss_of_two_items_is_the_logistic_loss():
    x, label = np.array([[0.3], [1.2]], np.float32), np.array([[1], [0]], np.float32)
    (y,) = run_op("PairWiseLoss", [x, label])
    np.testing.assert_allclose(y, [np.log1p(np.exp(1.2 - 0.3))], rtol=1e-6)  # the better item scored lower
    (same,) = run_op("PairWiseLoss", [x, np.ones((2, 1), np.float32)])
    assert same.tolist() == [0.0]


def test_pair_wise_loss_errors_and_inference():
    x, label = np.zeros((4, 1), np.float32), np.zeros(4, np.float32)
    with pytest.raises(ERRORS, match="lengths sum to 3 but X has N=4"):
        run_op("PairWiseLoss", [x, label, np.array([1, 2], np.int32)])
    with pytest.raises(ERRORS, match="lengths must not be negative"):
        run_op("PairWiseLoss", [x, label, np.array([5, -1], np.int32)])
    with pytest.raises(ERRORS, match=r"X must hold one score per row"):
        run_op("PairWiseLoss", [np.zeros((4, 2), np.float32), label])
    with pytest.raises(ERRORS, match=r"label must be \[4\] or \[4, 1\]"):
        run_op("PairWiseLoss", [x, np.zeros(3, np.float32)])
    with pytest.raises(ERRORS, match=r"dY must be \[2\]"):
        run_op("PairWiseLossGradient", [x, label, np.zeros(3, np.float32), np.array([1, 3], np.int32)])
    assert infer("PairWiseLoss", [(4, 1), (4,), TensorInfo((3,), "int32")]) == [TensorInfo((3,))]
    assert infer("PairWiseLoss", [(4, 1), (4,)]) == [TensorInfo((1,))]
    assert infer("PairWiseLossGradient", [(4, 1), (4,), (1,)]) == [TensorInfo((4, 1))]
    with pytest.raises(ShapeError, match="lengths must be int32"):
        infer("PairWiseLoss", [(4,), (4,), (2,)])


def _signs(rng, n):
    return rng.choice([-1, 1], n).astype(np.int32)


@pytest.mark.parametrize("margin", [1.0, -0.3, 0.25])
def test_margin_ranking_criterion(margin):
    rng = np.random.default_rng(7)
    x1, x2, y = rng.standard_normal(12), rng.standard_normal(12), _signs(rng, 12)
    x1 = np.where(np.abs(-y * (x1 - x2) + margin) < 0.05, x1 + 0.2, x1)  # off the kink
    reference = lambda a, b, y, margin: np.array([max(-yi * (ai - bi) + margin, 0) for ai, bi, yi in zip(a, b, y)])
    check_reference("MarginRankingCriterion", [x1.astype(np.float32), x2.astype(np.float32), y], reference,
                    {"margin": margin})
    dl = rng.standard_normal(12)
    check_gradient_op("MarginRankingCriterion", [x1, x2, y], "MarginRankingCriterionGradient", [x1, x2, y, dl],
                      {0: 0, 1: 1}, [dl], {"margin": margin}, rtol=1e-5, atol=1e-6)
    for wrt in (0, 1):
        report = check_op_gradient(make_op("MarginRankingCriterion", ["A", "B", "Y"], ["L"], {"margin": margin}),
                                   [x1, x2, y], wrt)
        assert report.ok, report


@pytest.mark.parametrize("margin", [0.0, 0.4])
def test_cosine_embedding_criterion(margin):
    rng = np.random.default_rng(8)
    s, y = rng.uniform(-1, 1, (3, 4)), _signs(rng, 12).reshape(3, 4)
    s = np.where(np.abs(s - margin) < 0.05, s + 0.1, s)
    reference = lambda s, y, margin: np.vectorize(lambda si, yi: 1 - si if yi == 1 else max(0, si - margin),
                                                    otypes=[np.float64])(s, y)
    check_reference("CosineEmbeddingCriterion", [s.astype(np.float32), y], reference, {"margin": margin})
    dl = rng.standard_normal(s.shape)
    check_gradient_op("CosineEmbeddingCriterion", [s, y], "CosineEmbeddingCriterionGradient", [s, y, dl], {0: 0},
                      [dl], {"margin": margin}, rtol=1e-5, atol=1e-6)
    report = check_op_gradient(make_op("CosineEmbeddingCriterion", ["S", "Y"], ["L"], {"margin": margin}), [s, y], 0)
    assert report.ok, report


def ref_jsd(x, t):
    def h(p):
        return -p * np.log(p) - (1 - p) * np.log(1 - p)
    x, t = x.astype(np.float64), t.astype(np.float64)
    return h((x + t) / 2) - h(x) / 2 - h(t) / 2


def test_bernoulli_jsd():
    rng = np.random.default_rng(9)
    x, t = rng.uniform(0.05, 0.95, (2, 5)), rng.uniform(0.05, 0.95, (2, 5))
    check_reference("BernoulliJSD", [x.astype(np.float32), t.astype(np.float32)], ref_jsd)
    dl = rng.standard_normal(x.shape)
    check_gradient_op("BernoulliJSD", [x, t], "BernoulliJSDGradient", [dl, x, t], {0: 0}, [dl], rtol=1e-4, atol=1e-4)
    report = check_op_gradient(make_op("BernoulliJSD", ["X", "T"], ["L"]), [x, t], 0)
    assert report.ok, report
    (edge,) = run_op("BernoulliJSD", [np.array([0.0, 1.0], np.float32), np.array([1.0, 1.0], np.float32)])
    np.testing.assert_allclose(edge, [np.log(2), 0.0], rtol=1e-6)  # H(1/2) = log 2, H(0) = H(1) = 0


def test_elementwise_criteria_errors_and_inference():
    f, i = np.zeros(4, np.float32), np.ones(4, np.int32)
    with pytest.raises(ERRORS, match="hold the same number of elements"):
        run_op("MarginRankingCriterion", [f, np.zeros(3, np.float32), i])
    with pytest.raises(ERRORS, match="Y must be int32"):
        run_op("CosineEmbeddingCriterion", [f, f])
    with pytest.raises(ERRORS, match="X must be float, got int32"):
        run_op("BernoulliJSD", [i, f])
    assert infer("MarginRankingCriterion", [(2, 3), (6,), TensorInfo((6,), "int32")]) == [TensorInfo((2, 3))]
    assert infer("MarginRankingCriterionGradient", [(6,), (6,), None, (6,)], n_out=2) == [TensorInfo((6,))] * 2
    assert infer("CosineEmbeddingCriterionGradient", [(5,), None, (5,)]) == [TensorInfo((5,))]
    assert infer("BernoulliJSD", [(5,), (5,)]) == [TensorInfo((5,))]
    assert infer("BernoulliJSDGradient", [(5,), (5,), None]) == [TensorInfo((5,))]


def _ref_discounts(v):
    d = np.zeros(v.size)
    for position, item in enumerate(sorted(range(v.size), key=lambda k: -v[k]), 1):
        d[item] = 1 / np.log2(position + 1)
    return d


def ref_lambda_rank(y, r, lengths, use_ndcg_as_loss=0, use_idcg_normalization=1, use_exp_gain=1):
    """Session by session with loops over items and pairs, float64."""
    losses, dys, start = [], [], 0
    for length in lengths:
        ys, rs = y[start:start + length].astype(np.float64), r[start:start + length].astype(np.float64)
        start += length
        dy, loss = np.zeros(length), 0.0
        if np.abs(rs).sum() >= 1e-6:
            gain = rs if use_ndcg_as_loss and not use_exp_gain else 2.0 ** rs
            ideal, actual = _ref_discounts(rs), _ref_discounts(ys)
            idcg = sum(gain * ideal)
            for i in range(length):
                for j in range(length):
                    weight = abs((gain[i] - gain[j]) * (actual[i] - actual[j]))
                    s = 1 if rs[i] > rs[j] else -1
                    loss += weight * np.log1p(np.exp(-s * (ys[i] - ys[j])))
                    dy[i] -= weight * s / (1 + np.exp(s * (ys[i] - ys[j])))
            if use_ndcg_as_loss:
                loss = idcg - sum(gain * actual)
            if use_idcg_normalization:
                loss, dy = loss / max(idcg, 1e-5), dy / max(idcg, 1e-5)
        losses.append(loss)
        dys.append(dy)
    return np.array(losses), np.concatenate(dys) if dys else np.zeros(0)


LAMBDA_ARGS = [{}, {"use_ndcg_as_loss": 1}, {"use_ndcg_as_loss": 1, "use_exp_gain": 0},
               {"use_ndcg_as_loss": 1, "use_idcg_normalization": 0}, {"use_idcg_normalization": 0}]


@pytest.mark.parametrize("args", LAMBDA_ARGS, ids=[str(a) for a in LAMBDA_ARGS])
@pytest.mark.parametrize("lengths", [[4, 3, 5], [6], [0, 2, 0]])
def test_lambda_rank_ndcg(args, lengths):
    rng = np.random.default_rng(sum(lengths) + len(args))
    n = sum(lengths)
    y, r = rng.random(n).astype(np.float32), rng.integers(0, 4, n).astype(np.float32)
    r[:2] = 0  # a session may be all zeros when it is short
    lengths = np.array(lengths, np.int32)
    loss, dy = check_reference("LambdaRankNdcg", [y, r, lengths], ref_lambda_rank, args, atol=1e-5)
    dloss = rng.random(loss.shape).astype(np.float32)
    (back,) = check_reference("LambdaRankNdcgGradient", [y, lengths, dy, dloss],
                              lambda y, s, d, g: np.repeat(g, s) * d)
    assert back.shape == y.shape


def test_lambda_rank_dy_is_half_the_pairwise_losss_derivative():
    # The pairwise loss sums both orders of every pair, so at fixed ranks its derivative
    # is twice the lambdas Caffe2 puts in dy.
    y = np.array([0.9, 0.1, 0.5, 0.7]).astype(np.float64)
    r, lengths = np.array([2, 0, 1, 3], np.float64), np.array([4], np.int32)
    _, dy = run_op("LambdaRankNdcg", [y, r, lengths], num_outputs=2)
    loss = lambda y: float(run_op("LambdaRankNdcg", [y, r, lengths])[0][0])
    numeric = [(loss(y + e) - loss(y - e)) / 2e-2 for e in np.eye(4) * 1e-2]  # steps that keep the ranks
    np.testing.assert_allclose(2 * dy, numeric, rtol=2e-3)
    ops, _ = GradientRegistry.GetGradientForOp(make_op("LambdaRankNdcg", ["y", "r", "s"], ["loss", "dy"]),
                                               ["loss_grad", None])
    assert [(op.type, list(op.input)) for op in ops] == [("LambdaRankNdcgGradient", ["y", "s", "dy", "loss_grad"])]


def test_lambda_rank_errors_and_inference():
    y, r = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ERRORS, match="lengths sum to 3 but X has N=4"):
        run_op("LambdaRankNdcg", [y, r, np.array([3], np.int32)], num_outputs=2)
    with pytest.raises(ERRORS, match=r"y must be 1-D \[N\]"):
        run_op("LambdaRankNdcg", [y.reshape(2, 2), r, np.array([4], np.int32)], num_outputs=2)
    with pytest.raises(ERRORS, match="dloss must hold 2"):
        run_op("LambdaRankNdcgGradient", [y, np.array([2, 2], np.int32), y, np.ones(3, np.float32)])
    assert infer("LambdaRankNdcg", [(6,), (6,), TensorInfo((2,), "int32")], n_out=2) == [
        TensorInfo((2,)), TensorInfo((6,))]
    assert infer("LambdaRankNdcgGradient", [(6,), TensorInfo((2,), "int32"), (6,), (2,)]) == [TensorInfo((6,))]
    with pytest.raises(ShapeError, match="hold the same number of elements"):
        infer("LambdaRankNdcg", [(6,), (5,), None], n_out=2)
