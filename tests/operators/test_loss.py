"""Loss family: each loss against an independent NumPy reference (float64), and
each gradient op against numeric differentiation of its forward op with
respect to the logits or inputs (labels get no gradient)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

ERRORS = (OpFailure, NetError)


def probabilities(rng, n, d):
    p = rng.random((n, d)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


# SoftmaxWithLoss ------------------------------------------------------------------

def ref_softmax_with_loss(logits, labels, weights=None, scale=1.0, label_prob=0, axis=1):
    axis %= logits.ndim
    n = int(np.prod(logits.shape[:axis]))
    rows = logits.astype(np.float64).reshape(n, -1)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    if label_prob:
        losses = -(labels.reshape(n, -1) * np.log(p)).sum(axis=1)
    else:
        losses = -np.log(p[np.arange(n), labels.reshape(n)])
    w = np.ones(n) if weights is None else weights.astype(np.float64).reshape(n)
    loss = scale * (w * losses).sum() / w.sum() if w.sum() != 0 else 0.0
    return p.reshape(logits.shape), np.float64(loss)


def softmax_case(seed, shape, axis, label_prob, weighted):
    """(inputs, n, d) for SoftmaxWithLoss on logits of `shape`."""
    rng = np.random.default_rng(seed)
    canonical = axis % len(shape)
    n, d = int(np.prod(shape[:canonical])), int(np.prod(shape[canonical:]))
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    if label_prob:
        labels = probabilities(rng, n, d).astype(np.float32).reshape(shape)
    else:
        labels = rng.integers(0, d, shape[:canonical]).astype(np.int32)
    inputs = [logits, labels]
    if weighted:
        inputs.append(rng.random(n).astype(np.float32) + 0.1)
    return inputs, n, d


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       data=st.data(), label_prob=st.booleans(), weighted=st.booleans(),
       scale=st.sampled_from([1.0, 0.5, 3.0]))
def test_softmax_with_loss_matches_reference(seed, shape, data, label_prob, weighted, scale):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    label_prob = label_prob and len(shape) > 1  # probability labels need 2 dims or more
    inputs, _, _ = softmax_case(seed, tuple(shape), axis, label_prob, weighted)
    args = {"axis": axis, "label_prob": int(label_prob), "scale": scale}
    p, loss = check_reference("SoftmaxWithLoss", inputs, ref_softmax_with_loss, args, atol=1e-5)
    assert p.dtype == np.float32 and loss.dtype == np.float32 and loss.shape == ()


def test_softmax_with_loss_weighted_average_and_zero_weights():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    labels = np.array([2, 0], np.int32)
    lse = np.log(np.exp(logits).sum(axis=1))
    losses = lse - logits[[0, 1], [2, 0]]
    _, loss = run_op("SoftmaxWithLoss", [logits, labels, np.array([3.0, 1.0])])
    assert loss.dtype == np.float64
    np.testing.assert_allclose(loss, (3 * losses[0] + losses[1]) / 4)
    _, loss = run_op("SoftmaxWithLoss", [logits, labels, np.zeros(2)])
    assert loss == 0
    (dx,) = run_op("SoftmaxWithLossGradient", [logits, labels, np.zeros(2), np.ones_like(logits) / 3,
                                               np.array(1.0)])
    assert (dx == 0).all()


def test_softmax_with_loss_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    p, loss = run_op("SoftmaxWithLoss", [logits, np.array([2], np.int32)])
    assert np.isfinite(p).all() and np.isclose(loss, 2e4)


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1)])
@pytest.mark.parametrize("label_prob", [0, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_with_loss_gradient_matches_numeric(shape, axis, label_prob, weighted):
    inputs, _, _ = softmax_case(sum(shape) + axis, shape, axis, label_prob, weighted)
    args = {"axis": axis, "label_prob": label_prob, "scale": 1.5}
    p, _ = run_op("SoftmaxWithLoss", inputs, args)
    grad_inputs = inputs + [p, np.array(0.7, np.float32)]
    (dx,) = check_gradient_op("SoftmaxWithLoss", inputs, "SoftmaxWithLossGradient", grad_inputs,
                              {0: 0}, [None, 0.7], args, atol=1e-3)
    assert dx.dtype == np.float32


def test_softmax_with_loss_errors():
    logits = np.zeros((4, 10), np.float32)
    with pytest.raises(ERRORS, match=r"labels are \[5\] but the batch has N=4"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(5, np.int32)])
    with pytest.raises(ERRORS, match=r"class indices in \[0, 10\), got values in \[-1, 0\]"):
        run_op("SoftmaxWithLoss", [logits, np.array([0, 0, -1, 0], np.int32)])
    with pytest.raises(ERRORS, match="labels must be integer class indices, got float32"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(4, np.float32)])
    with pytest.raises(ERRORS, match="each row of labels must sum to 1"):
        run_op("SoftmaxWithLoss", [logits, np.full((4, 10), 0.2, np.float32)], {"label_prob": 1})
    with pytest.raises(ERRORS, match=r"weights are \[3\] but the batch has N=4"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(4, np.int32), np.ones(3, np.float32)])
    with pytest.raises(ERRORS, match=r"logits is \[4, 10\] but softmax is \[4, 9\]"):
        run_op("SoftmaxWithLossGradient", [logits, np.zeros(4, np.int32),
                                           np.zeros((4, 9), np.float32), np.ones((), np.float32)])


# Cross-entropies on probabilities --------------------------------------------------

@pytest.mark.parametrize("x_shape, label_shape", [((4, 5), (4,)), ((3, 2, 3), (3, 1)), ((6,), (1,))])
def test_label_cross_entropy(x_shape, label_shape):
    rng = np.random.default_rng(len(x_shape))
    n = x_shape[0] if len(x_shape) > 1 else 1
    d = int(np.prod(x_shape)) // n
    x = probabilities(rng, n, d).reshape(x_shape)
    label = rng.integers(0, d, label_shape).astype(np.int32)

    def reference(x, label):
        return -np.log(x.reshape(n, d)[np.arange(n), label.reshape(n)])
    (y,) = check_reference("LabelCrossEntropy", [x.astype(np.float32), label], reference)
    assert y.dtype == np.float32
    x, dy = rng.uniform(0.2, 1, x_shape), rng.standard_normal(n)  # -log x is smooth away from 0
    check_gradient_op("LabelCrossEntropy", [x, label], "LabelCrossEntropyGradient", [x, label, dy],
                      {0: 0}, [dy], rtol=1e-4)


def test_label_cross_entropy_floors_zero_probabilities():
    x = np.array([[0.0, 1.0]], np.float32)
    (y,) = run_op("LabelCrossEntropy", [x, np.array([0], np.int32)])
    np.testing.assert_allclose(y, [-np.log(np.float32(1e-20))], rtol=1e-6)
    (dx,) = run_op("LabelCrossEntropyGradient", [x, np.array([0], np.int32), np.ones(1, np.float32)])
    np.testing.assert_allclose(dx, [[-1e20, 0]], rtol=1e-6)


@pytest.mark.parametrize("x_shape", [(4, 5), (3, 2, 3), (6,), (4, 1)])
def test_cross_entropy(x_shape):
    rng = np.random.default_rng(sum(x_shape))
    n = x_shape[0] if len(x_shape) > 1 else 1
    d = int(np.prod(x_shape)) // n
    x = probabilities(rng, n, d).reshape(x_shape)
    label = rng.random((n, d)) if d > 1 else rng.random(n)

    def reference(x, label):
        return -(label.reshape(n, d) * np.log(x.reshape(n, d))).sum(axis=1)
    (y,) = check_reference("CrossEntropy", [x.astype(np.float32), label.astype(np.float32)], reference)
    assert y.dtype == np.float32
    x, dy = rng.uniform(0.2, 1, x_shape), rng.standard_normal(n)
    check_gradient_op("CrossEntropy", [x, label], "CrossEntropyGradient", [x, label, dy], {0: 0}, [dy],
                      rtol=1e-4)


def test_cross_entropy_errors():
    x = np.full((4, 10), 0.1, np.float32)
    with pytest.raises(ERRORS, match=r"label is \[4, 9\]: label must be \[4, 10\]"):
        run_op("CrossEntropy", [x, np.zeros((4, 9), np.float32)])
    with pytest.raises(ERRORS, match=r"label values must be probabilities in \[0, 1\]"):
        run_op("CrossEntropy", [x, np.full((4, 10), 2.0, np.float32)])
    with pytest.raises(ERRORS, match=r"label is \[3\]: label must be \[4\] or \[4, 1\]"):
        run_op("LabelCrossEntropy", [x, np.zeros(3, np.int32)])
    with pytest.raises(ERRORS, match=r"label must be class indices in \[0, 10\), got values in \[0, 10\]"):
        run_op("LabelCrossEntropy", [x, np.array([0, 1, 2, 10], np.int32)])
    with pytest.raises(ERRORS, match=r"dY is \[3\] but the batch has N=4"):
        run_op("LabelCrossEntropyGradient", [x, np.zeros(4, np.int32), np.zeros(3, np.float32)])


# Averages and distances --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), ()])
def test_averaged_loss(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    (y,) = check_reference("AveragedLoss", [x.astype(np.float32)], lambda x: np.mean(x.astype(np.float64)))
    assert y.shape == () and y.dtype == np.float32
    dy = np.array(1.3)
    check_gradient_op("AveragedLoss", [x], "AveragedLossGradient", [x, dy], {0: 0}, [dy], rtol=1e-6)


def test_averaged_loss_of_nothing_is_zero():
    (y,) = run_op("AveragedLoss", [np.zeros((0, 3), np.float32)])
    assert y == 0 and y.shape == ()
    with pytest.raises(ERRORS, match=r"dY is \[2\] but must hold one element"):
        run_op("AveragedLossGradient", [np.zeros(3, np.float32), np.zeros(2, np.float32)])


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 2), ()])
def test_squared_l2_distance(shape):
    rng = np.random.default_rng(len(shape) + 10)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    n = shape[0] if shape else 1

    def reference(x, y):
        return 0.5 * ((x - y).astype(np.float64).reshape(n, -1) ** 2).sum(axis=1)
    (z,) = check_reference("SquaredL2Distance", [x.astype(np.float32), y.astype(np.float32)], reference)
    assert z.shape == (n,) and z.dtype == np.float32
    dz = rng.standard_normal(n)
    check_gradient_op("SquaredL2Distance", [x, y], "SquaredL2DistanceGradient", [x, y, dz],
                      {0: 0, 1: 1}, [dz], rtol=1e-6)


def test_squared_l2_distance_errors():
    with pytest.raises(ERRORS, match=r"X is \[4, 3\] but Y is \[4, 2\]"):
        run_op("SquaredL2Distance", [np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)])
    with pytest.raises(ERRORS, match=r"dZ is \[3\] but the batch has N=4"):
        run_op("SquaredL2DistanceGradient", [np.zeros((4, 3), np.float32)] * 2 + [np.zeros(3, np.float32)],
               num_outputs=2)


# Sigmoid cross-entropy on logits -----------------------------------------------------

def ref_sigmoid_xent(logits, targets, log_D_trick=0, unjoined_lr_loss=0):
    lg, t = logits.astype(np.float64), targets.astype(np.float64)
    log_sig, log_one_minus = -np.logaddexp(0, -lg), -np.logaddexp(0, lg)
    if log_D_trick:
        per_element = (2 * t - 1) * log_sig
    elif unjoined_lr_loss:
        per_element = t * lg + (1 - t) * log_one_minus
    else:
        per_element = t * log_sig + (1 - t) * log_one_minus
    return -per_element.mean(axis=-1) if lg.ndim else -per_element


SIGMOID_VARIANTS = [{}, {"log_D_trick": 1}, {"unjoined_lr_loss": 1}]


@pytest.mark.parametrize("args", SIGMOID_VARIANTS, ids=["plain", "log_D_trick", "unjoined"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (7,), ()])
def test_sigmoid_cross_entropy_with_logits(args, shape):
    rng = np.random.default_rng(len(shape))
    logits = rng.standard_normal(shape) * 4
    targets = rng.random(shape) if not args else (rng.random(shape) < 0.5).astype(np.float64)
    (y,) = check_reference("SigmoidCrossEntropyWithLogits",
                           [logits.astype(np.float32), targets.astype(np.float32)], ref_sigmoid_xent, args)
    assert y.shape == shape[:-1] and y.dtype == np.float32
    dy = rng.standard_normal(shape[:-1])
    check_gradient_op("SigmoidCrossEntropyWithLogits", [logits, targets],
                      "SigmoidCrossEntropyWithLogitsGradient", [dy, logits, targets], {0: 0}, [dy], args,
                      rtol=1e-5, atol=1e-6)


def test_sigmoid_cross_entropy_is_stable_and_checks_args():
    logits = np.array([[-200.0, 200.0]], dtype=np.float32)
    (y,) = run_op("SigmoidCrossEntropyWithLogits", [logits, np.array([[1.0, 0.0]], np.float32)])
    np.testing.assert_allclose(y, [200.0])
    with pytest.raises(ERRORS, match="log_D_trick and unjoined_lr_loss cannot both be set"):
        run_op("SigmoidCrossEntropyWithLogits", [logits, logits], {"log_D_trick": 1, "unjoined_lr_loss": 1})
    with pytest.raises(ERRORS, match=r"logits is \[1, 2\] but targets is \[2\]"):
        run_op("SigmoidCrossEntropyWithLogits", [logits, np.zeros(2, np.float32)])
    with pytest.raises(ERRORS, match=r"dY is \[2\] but logits are \[1, 2\]"):
        run_op("SigmoidCrossEntropyWithLogitsGradient", [np.zeros(2, np.float32), logits, logits])


# Accuracy ------------------------------------------------------------------------------

def ref_accuracy(predictions, labels, top_k=1):
    order = np.argsort(-predictions, axis=1, kind="stable")[:, :top_k]
    return np.float32(np.mean([label in row for label, row in zip(labels, order)]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 8), d=st.integers(1, 6), data=st.data())
def test_accuracy_matches_a_stable_sort(seed, n, d, data):
    rng = np.random.default_rng(seed)
    predictions = rng.integers(0, 3, (n, d)).astype(np.float32)  # many ties
    labels = rng.integers(0, d, n).astype(np.int32)
    top_k = data.draw(st.integers(1, d))
    (accuracy,) = check_reference("Accuracy", [predictions, labels], ref_accuracy, {"top_k": top_k})
    assert accuracy.shape == () and accuracy.dtype == np.float32


def test_accuracy_is_float32_for_float64_scores_and_checks_labels():
    (accuracy,) = run_op("Accuracy", [np.eye(3), np.array([0, 1, 0], np.int32)])
    assert accuracy.dtype == np.float32 and np.isclose(accuracy, 2 / 3)
    with pytest.raises(ERRORS, match=r"labels are \[2\] but the batch has N=3"):
        run_op("Accuracy", [np.eye(3), np.zeros(2, np.int32)])
    with pytest.raises(ERRORS, match=r"predictions must be 2-D \[N, D\], got \[3\]"):
        run_op("Accuracy", [np.ones(3), np.zeros(3, np.int32)])


# Gradient makers: each registered gradient against central differences ----------

@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1)])
@pytest.mark.parametrize("label_prob", [0, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_with_loss_registered_gradient(shape, axis, label_prob, weighted):
    inputs, _, _ = softmax_case(len(shape) + axis, shape, axis, label_prob, weighted)
    names = ["logits", "labels", "weights"][:len(inputs)]
    op = make_op("SoftmaxWithLoss", names, ["P", "loss"], {"axis": axis, "label_prob": label_prob, "scale": 1.5})
    report = check_op_gradient(op, inputs, 0, outputs_with_grads=(1,))
    assert report.ok, report


@pytest.mark.parametrize("x_shape, label_shape", [((3, 4), (3,)), ((2, 2, 3), (2, 1)), ((5,), (1,))])
def test_label_cross_entropy_registered_gradient(x_shape, label_shape):
    rng = np.random.default_rng(1)
    n = int(np.prod(label_shape))
    x = probabilities(rng, n, int(np.prod(x_shape)) // n).reshape(x_shape)
    labels = rng.integers(0, x.size // n, label_shape).astype(np.int32)
    report = check_op_gradient(make_op("LabelCrossEntropy", ["X", "label"], ["Y"]), [x, labels], 0)
    assert report.ok, report


@pytest.mark.parametrize("x_shape", [(3, 4), (2, 2, 3), (4, 1)])
def test_cross_entropy_registered_gradient(x_shape):
    rng = np.random.default_rng(2)
    n, d = x_shape[0], int(np.prod(x_shape[1:]))
    x, label = probabilities(rng, n, d).reshape(x_shape), rng.random((n, d))  # label is [N, D]
    report = check_op_gradient(make_op("CrossEntropy", ["X", "label"], ["Y"]), [x, label], 0)
    assert report.ok, report


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 1, 3)])
def test_averaged_loss_registered_gradient(shape):
    x = np.random.default_rng(3).standard_normal(shape)
    report = check_op_gradient(make_op("AveragedLoss", ["X"], ["Y"]), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("shape", [(3, 2), (4,), (2, 3, 2)])
def test_squared_l2_distance_registered_gradient(shape, input_to_check):
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal(shape), rng.standard_normal(shape)]
    report = check_op_gradient(make_op("SquaredL2Distance", ["X", "Y"], ["Z"]), inputs, input_to_check)
    assert report.ok, report


@pytest.mark.parametrize("args", SIGMOID_VARIANTS, ids=["plain", "log_D_trick", "unjoined"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3), (5,)])
def test_sigmoid_cross_entropy_registered_gradient(args, shape):
    rng = np.random.default_rng(5)
    logits, targets = rng.standard_normal(shape) * 2, rng.random(shape)
    op = make_op("SigmoidCrossEntropyWithLogits", ["logits", "targets"], ["Y"], args)
    report = check_op_gradient(op, [logits, targets], 0)
    assert report.ok, report
