"""Loss family (SoftmaxWithLoss is in test_softmax_loss.py, the other distances
in test_distance.py): each loss against an independent NumPy reference
(float64), each gradient op against numeric differentiation of its forward op
with respect to the logits or inputs (labels get no gradient), the CUDA kernels
against their CPU twins (gpu-marked), and the shape-inference rules."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.cuda import many_rows
from tests.operators import DEVICES
from tests.operators.test_nn import run_cuda
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def probabilities(rng, n, d):
    p = rng.random((n, d)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


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


@pytest.mark.parametrize("device", DEVICES)
def test_cross_entropy_errors(device):
    on = device_option(device)
    x = np.full((4, 10), 0.1, np.float32)
    with pytest.raises(ERRORS, match=r"label is \[4, 9\]: label must be \[4, 10\]"):
        run_op("CrossEntropy", [x, np.zeros((4, 9), np.float32)], device_option=on)
    with pytest.raises(ERRORS, match=r"label values must be probabilities in \[0, 1\]"):
        run_op("CrossEntropy", [x, np.full((4, 10), 2.0, np.float32)], device_option=on)
    with pytest.raises(ERRORS, match=r"label is \[3\]: label must be \[4\] or \[4, 1\]"):
        run_op("LabelCrossEntropy", [x, np.zeros(3, np.int32)], device_option=on)
    with pytest.raises(ERRORS, match=r"label must be class indices in \[0, 10\), got values in \[0, 10\]"):
        run_op("LabelCrossEntropy", [x, np.array([0, 1, 2, 10], np.int32)], device_option=on)
    with pytest.raises(ERRORS, match=r"dY is \[3\] but the batch has N=4"):
        run_op("LabelCrossEntropyGradient", [x, np.zeros(4, np.int32), np.zeros(3, np.float32)],
               device_option=on)


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


@pytest.mark.parametrize("device", DEVICES)
def test_squared_l2_distance_errors(device):
    on = device_option(device)
    with pytest.raises(ERRORS, match=r"X is \[4, 3\] but Y is \[4, 2\]"):
        run_op("SquaredL2Distance", [np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)],
               device_option=on)
    with pytest.raises(ERRORS, match=r"dZ is \[3\] but the batch has N=4"):
        run_op("SquaredL2DistanceGradient", [np.zeros((4, 3), np.float32)] * 2 + [np.zeros(3, np.float32)],
               num_outputs=2, device_option=on)


def ref_sigmoid_xent(logits, targets, weights=None, log_D_trick=0, unjoined_lr_loss=0):
    """(Weighted)SigmoidCrossEntropyWithLogits: -mean over the last axis of each element's
    (weighted) log-likelihood."""
    lg, t = logits.astype(np.float64), targets.astype(np.float64)
    log_sig, log_one_minus = -np.logaddexp(0, -lg), -np.logaddexp(0, lg)
    if log_D_trick:
        per_element = (2 * t - 1) * log_sig
    elif unjoined_lr_loss:
        per_element = t * lg + (1 - t) * log_one_minus
    else:
        per_element = t * log_sig + (1 - t) * log_one_minus
    if weights is not None:
        per_element = per_element * weights
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


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (7,), ()])
def test_weighted_sigmoid_cross_entropy_with_logits(shape):
    rng = np.random.default_rng(len(shape) + 10)
    logits, targets, w = rng.standard_normal(shape) * 4, rng.random(shape), rng.random(shape) + 0.1
    inputs = [a.astype(np.float32) for a in (logits, targets, w)]
    (y,) = check_reference("WeightedSigmoidCrossEntropyWithLogits", inputs, ref_sigmoid_xent)
    assert y.shape == shape[:-1] and y.dtype == np.float32
    dy = rng.standard_normal(shape[:-1])
    check_gradient_op("WeightedSigmoidCrossEntropyWithLogits", [logits, targets, w],
                      "WeightedSigmoidCrossEntropyWithLogitsGradient", [dy, logits, targets, w], {0: 0}, [dy],
                      rtol=1e-5, atol=1e-6)
    op = make_op("WeightedSigmoidCrossEntropyWithLogits", ["logits", "targets", "weights"], ["Y"])
    report = check_op_gradient(op, [logits, targets, w], 0)
    assert report.ok, report


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
    with pytest.raises(ERRORS, match=r"predictions are \[3, 3\] but labels are \[2\]: N must match"):
        run_op("Accuracy", [np.eye(3), np.zeros(2, np.int32)])
    with pytest.raises(ERRORS, match=r"predictions must be 2-D \[N, D\], got \[3\]"):
        run_op("Accuracy", [np.ones(3), np.zeros(3, np.int32)])


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


# CUDA against the CPU twin -----------------------------------------------------------

cuda_rng = np.random.default_rng(0)


# [N, D]: odd sizes, more rows than the emulator's grid has blocks, one huge row, and more
# rows than a real grid has blocks (65535).
SHAPES = [(1, 1), (3, 7), (5, 1000), (300, 3), (1, 1 << 20), many_rows(((1 << 20) // 3 + 1, 3))]


def scores(n, d):
    return cuda_rng.uniform(-20, 20, (n, d)).astype(np.float32)


def labels(n, d):
    return cuda_rng.integers(0, d, n).astype(np.int32)


def weights(n):
    return cuda_rng.uniform(0, 2, n).astype(np.float32)


def label_probs(n, d):
    p = cuda_rng.random((n, d)) * (cuda_rng.random((n, d)) < 0.7)  # some zero targets
    p[:, 0] += 1e-3
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def floored_probabilities(n, d):
    """Softmax rows [N, D] (float32) with a first column of zeros, below the floor."""
    p = run_op("Softmax", [scores(n, d)])[0]
    p[:, :1] = 0.0  # below the 1e-20 floor
    return p


def logits(shape):
    """Scores with exact zeros (softplus's own branch) and large magnitudes."""
    x = cuda_rng.uniform(-30, 30, shape).astype(np.float32)
    return np.where(cuda_rng.random(shape) < 0.1, np.float32(0), x)


def targets(shape):
    """Targets in [0, 1] with exact 0s and 1s."""
    return np.clip(cuda_rng.uniform(-0.3, 1.3, shape), 0, 1).astype(np.float32)


def row_grad(shape):
    """The gradient of one loss per row (all but the last axis)."""
    return cuda_rng.standard_normal(shape[:-1]).astype(np.float32)


def scalar_grad():
    return np.array(cuda_rng.uniform(0.5, 2.0), np.float32)


# op type -> (inputs for an [N, D] shape, args)
CASES = {
    "LabelCrossEntropy": (lambda s: [floored_probabilities(*s), labels(*s)], {}),
    "LabelCrossEntropyGradient": (lambda s: [floored_probabilities(*s), labels(*s),
                                             cuda_rng.standard_normal(s[0]).astype(np.float32)], {}),
    "AveragedLoss": (lambda s: [scores(*s)], {}),
    "AveragedLossGradient": (lambda s: [scores(*s), scalar_grad()], {}),
    "SquaredL2Distance": (lambda s: [scores(*s), scores(*s)], {}),
    "SquaredL2DistanceGradient": (lambda s: [scores(*s), scores(*s),
                                             cuda_rng.standard_normal(s[0]).astype(np.float32)], {}),
    "Accuracy": (lambda s: [np.round(scores(*s) / 8), labels(*s)], {}),  # ties
    "CrossEntropy": (lambda s: [floored_probabilities(*s), label_probs(*s)], {}),
    "CrossEntropyGradient": (lambda s: [floored_probabilities(*s), label_probs(*s),
                                        cuda_rng.standard_normal(s[0]).astype(np.float32)], {}),
    "SigmoidCrossEntropyWithLogits": (lambda s: [logits(s), targets(s)], {}),
    "SigmoidCrossEntropyWithLogitsGradient": (lambda s: [row_grad(s), logits(s), targets(s)], {}),
}


OUTPUTS = {"SquaredL2DistanceGradient": 2}


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, OUTPUTS.get(op_type), atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("top_k", [1, 3, 1000])
def test_accuracy_top_k(top_k):
    predictions = np.round(scores(4001, 10) / 4)  # many ties
    check_devices("Accuracy", [predictions, labels(4001, 10)], {"top_k": top_k})


@pytest.mark.gpu
@pytest.mark.slow
def test_odd_shapes():
    check_devices("AveragedLoss", [scores(1, 1).reshape(())])
    check_devices("LabelCrossEntropy", [floored_probabilities(1, 5)[0], labels(1, 5)])  # 1-D X: one example
    check_devices("SquaredL2Distance", [np.float32(1.5), np.float32(-2.0)])
    check_devices("SquaredL2Distance", [scores(3, 10).reshape(3, 2, 5), scores(3, 10).reshape(3, 2, 5)])


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["SoftmaxWithLoss", "LabelCrossEntropy", "Accuracy"])
def test_out_of_range_labels_are_refused_as_on_the_cpu(op_type):
    bad = np.array([0, 7, 1], np.int32)
    with pytest.raises((OpFailure, NetError), match=r"class indices in \[0, 7\)"):
        run_cuda(op_type, [scores(3, 7), bad], {}, 2 if op_type == "SoftmaxWithLoss" else 1)


SIGMOID_XENT_ARGS = [{}, {"log_D_trick": 1}, {"unjoined_lr_loss": 1}, {"log_D_trick": 0, "unjoined_lr_loss": 0}]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value", "ignore:divide by zero")
@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 7), (2, 3, 5), (300, 3), (2, 1000), (4, 0), (0, 3),
                                   (2, 0, 3)], ids=str)
@pytest.mark.parametrize("args", SIGMOID_XENT_ARGS, ids=str)
def test_sigmoid_cross_entropy_every_variant_and_shape(args, shape):
    x, t = logits(shape), targets(shape)
    check_devices("SigmoidCrossEntropyWithLogits", [x, t], args, atol=1e-6, rtol=1e-5)
    dy = np.asarray(row_grad(shape) if shape else cuda_rng.standard_normal(), np.float32)
    check_devices("SigmoidCrossEntropyWithLogitsGradient", [dy, x, t], args, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
def test_sigmoid_cross_entropy_refusals_as_on_the_cpu():
    x = logits((3, 4))
    with pytest.raises((OpFailure, NetError), match="cannot both be set"):
        run_cuda("SigmoidCrossEntropyWithLogits", [x, targets((3, 4))],
                 {"log_D_trick": 1, "unjoined_lr_loss": 1}, 1)
    with pytest.raises((OpFailure, NetError), match="must have the same shape"):
        run_cuda("SigmoidCrossEntropyWithLogits", [x, targets((4, 3))], {}, 1)
    with pytest.raises((OpFailure, NetError), match="one element per row"):
        run_cuda("SigmoidCrossEntropyWithLogitsGradient", [row_grad((4, 4)), x, targets((3, 4))], {}, 1)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("x_shape, label_shape", [((5,), (1, 5)), ((4, 1), (4,)), ((3, 2, 5), (3, 10)),
                                                  ((0, 4), (0, 4)), ((3, 0), (3, 0))], ids=str)
def test_cross_entropy_odd_shapes(x_shape, label_shape):
    x = cuda_rng.uniform(0, 1, x_shape).astype(np.float32)
    label = cuda_rng.uniform(0, 1, label_shape).astype(np.float32)
    check_devices("CrossEntropy", [x, label])
    n = x_shape[0] if len(x_shape) > 1 else 1
    check_devices("CrossEntropyGradient", [x, label, cuda_rng.standard_normal(n).astype(np.float32)])


@pytest.mark.gpu
@pytest.mark.slow
def test_cross_entropy_refuses_labels_outside_0_1_as_on_the_cpu():
    label = label_probs(3, 4)
    label[1, 2] = 1.5
    with pytest.raises((OpFailure, NetError), match=r"probabilities in \[0, 1\]"):
        run_cuda("CrossEntropy", [floored_probabilities(3, 4), label], {}, 1)


# Shape and type inference ------------------------------------------------------------

SCALAR = TensorInfo((), "float32")


def ints(*shape):
    return TensorInfo(shape, "int32")


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "loss"}
    assert len(family) == 13
    assert all(s.inference != "none" for s in family.values())
    assert all_schemas()["Accuracy"].gradient == "should_not"


@pytest.mark.parametrize("x_shape, label_shape", [((4, 10), (4,)), ((4, 10), (4, 1)),
                                                  ((4, 2, 5), (4,)), ((10,), (1,))])
def test_label_cross_entropy_matches_numpy_inference(x_shape, label_shape):
    x = np.random.rand(*x_shape).reshape(x_shape[0] if len(x_shape) > 1 else 1, -1)
    label = np.zeros(label_shape, dtype=np.int32).ravel()
    expected = (-np.log(x[np.arange(x.shape[0]), label])).shape
    assert infer("LabelCrossEntropy", [x_shape, ints(*label_shape)]) == [
        TensorInfo(expected, "float32")]
    assert infer("LabelCrossEntropyGradient", [x_shape, ints(*label_shape), expected]) == [
        TensorInfo(x_shape)]


def test_label_cross_entropy_errors_inference():
    with pytest.raises(ShapeError, match=r"X \[4, 10\] is a batch of N=4, D=10, but label is "
                                         r"\[4, 2\]: label must be \[4\] or \[4, 1\]"):
        infer("LabelCrossEntropy", [(4, 10), ints(4, 2)])
    with pytest.raises(ShapeError, match=r"label is \[3\]"):
        infer("LabelCrossEntropy", [(4, 10), ints(3)])
    with pytest.raises(ShapeError, match="label must be int32"):
        infer("LabelCrossEntropy", [(4, 10), TensorInfo((4,), "int64")])
    with pytest.raises(ShapeError, match="X must have at least one dim"):
        infer("LabelCrossEntropy", [(), ints(1)])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but the batch has N=4"):
        infer("LabelCrossEntropyGradient", [(4, 10), ints(4), (3,)])
    assert infer("LabelCrossEntropy", [None, ints(4)]) == [TensorInfo((4,))]
    assert infer("LabelCrossEntropy", [None, None]) == [None]


@pytest.mark.parametrize("shape", [(4, 10), (4, 2, 5)])
def test_cross_entropy_matches_numpy_inference(shape):
    x = np.random.rand(*shape).reshape(shape[0], -1)
    expected = (-(x * np.log(x)).sum(axis=1)).shape
    label = (shape[0], int(np.prod(shape[1:])))
    assert infer("CrossEntropy", [shape, label]) == [TensorInfo(expected)]
    assert infer("CrossEntropyGradient", [shape, label, expected]) == [TensorInfo(shape)]


def test_cross_entropy_errors_inference():
    with pytest.raises(ShapeError, match=r"label is \[4, 9\]: label must be \[4, 10\]"):
        infer("CrossEntropy", [(4, 10), (4, 9)])
    with pytest.raises(ShapeError, match=r"label is \[4\]: label must be \[4, 10\]"):
        infer("CrossEntropy", [(4, 10), (4,)])
    assert infer("CrossEntropy", [(4, 1), (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"dY is \[4, 1\] but the batch has N=4"):
        infer("CrossEntropyGradient", [(4, 10), (4, 10), (4, 1)])


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), ()])
def test_averaged_loss_is_a_scalar_inference(shape):
    assert infer("AveragedLoss", [shape]) == [TensorInfo(np.mean(np.ones(shape)).shape)]
    assert infer("AveragedLossGradient", [shape, ()]) == [TensorInfo(shape)]
    with pytest.raises(ShapeError, match=r"dY is \[2\] but must hold one element"):
        infer("AveragedLossGradient", [shape, (2,)])


@pytest.mark.parametrize("shape", [(4, 3), (4,), (2, 3, 4)])
def test_squared_l2_distance_matches_numpy_inference(shape):
    x, y = np.random.rand(*shape), np.random.rand(*shape)
    expected = (0.5 * ((x - y) ** 2).reshape(shape[0], -1).sum(axis=1)).shape
    assert infer("SquaredL2Distance", [shape, shape]) == [TensorInfo(expected)]
    assert infer("SquaredL2Distance", [None, shape]) == [TensorInfo(expected)]
    assert infer("SquaredL2DistanceGradient", [shape, None, expected], n_out=2) == [
        TensorInfo(shape), TensorInfo(shape)]


def test_squared_l2_distance_errors_inference():
    assert infer("SquaredL2Distance", [(), ()]) == [TensorInfo((1,))]
    with pytest.raises(ShapeError, match=r"X is \[4, 3\] but Y is \[4, 2\]"):
        infer("SquaredL2Distance", [(4, 3), (4, 2)])
    with pytest.raises(ShapeError, match=r"dZ is \[3\] but the batch has N=4"):
        infer("SquaredL2DistanceGradient", [(4, 3), (4, 3), (3,)])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (7,), ()])
def test_sigmoid_cross_entropy_matches_numpy_inference(shape):
    x = np.random.rand(*shape)
    expected = np.mean(np.atleast_1d(x), axis=-1).shape if shape else ()
    assert infer("SigmoidCrossEntropyWithLogits", [shape, shape]) == [TensorInfo(expected)]
    assert infer("SigmoidCrossEntropyWithLogitsGradient", [expected, shape, shape]) == [
        TensorInfo(shape)]


def test_sigmoid_cross_entropy_errors_inference():
    with pytest.raises(ShapeError, match=r"logits is \[4, 3\] but targets is \[4, 2\]"):
        infer("SigmoidCrossEntropyWithLogits", [(4, 3), (4, 2)])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but logits are \[4, 3\]"):
        infer("SigmoidCrossEntropyWithLogitsGradient", [(3,), (4, 3), (4, 3)])
    assert infer("SigmoidCrossEntropyWithLogits", [None, None]) == [None]


def test_weighted_sigmoid_cross_entropy_inference():
    assert infer("WeightedSigmoidCrossEntropyWithLogits", [(4, 3), None, (4, 3)]) == [TensorInfo((4,))]
    assert infer("WeightedSigmoidCrossEntropyWithLogitsGradient", [(4,), (4, 3), (4, 3), (4, 3)]) == [
        TensorInfo((4, 3))]
    assert infer("WeightedSigmoidCrossEntropyWithLogits", [None, None, None]) == [None]
    with pytest.raises(ShapeError, match=r"^logits \[4, 3\], targets \[4, 3\], weights \[4\]: "
                                         r"these must have the same shape"):
        infer("WeightedSigmoidCrossEntropyWithLogits", [(4, 3), (4, 3), (4,)])
    with pytest.raises(ShapeError, match=r"^dY is \[3\] but logits are \[4, 3\]"):
        infer("WeightedSigmoidCrossEntropyWithLogitsGradient", [(3,), (4, 3), None, (4, 3)])


def test_weighted_sigmoid_cross_entropy_errors():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ERRORS, match=r"logits \[4, 3\], targets \[4, 3\], weights \[3\]: these must have"):
        run_op("WeightedSigmoidCrossEntropyWithLogits", [x, x, np.ones(3, np.float32)])
    with pytest.raises(ERRORS, match=r"dY is \[3\] but logits are \[4, 3\]"):
        run_op("WeightedSigmoidCrossEntropyWithLogitsGradient", [np.zeros(3, np.float32), x, x, x])


def test_accuracy_inference():
    scores, labels = np.random.rand(4, 10), np.zeros(4, dtype=np.int32)
    expected = np.mean(scores.argmax(axis=1) == labels).shape
    assert infer("Accuracy", [(4, 10), ints(4)], top_k=3) == [TensorInfo(expected, "float32")]
    assert infer("Accuracy", [None, None]) == [SCALAR]
    with pytest.raises(ShapeError, match=r"predictions must be 2-D \[N, D\], got \[4\]"):
        infer("Accuracy", [(4,), ints(4)])
    with pytest.raises(ShapeError, match=r"predictions are \[4, 10\] but labels are \[3\]"):
        infer("Accuracy", [(4, 10), ints(3)])
    with pytest.raises(ShapeError, match="top_k 11 exceeds the 10 classes"):
        infer("Accuracy", [(4, 10), ints(4)], top_k=11)
    with pytest.raises(ShapeError, match="labels must be 1-D"):
        infer("Accuracy", [(4, 10), ints(4, 1)])


def test_losses_keep_a_float64_input_type_inference():
    f64 = TensorInfo((4, 10), "float64")
    assert infer("SoftmaxWithLoss", [f64, ints(4)], n_out=2)[1] == TensorInfo((), "float64")
    assert infer("LabelCrossEntropy", [f64, ints(4)]) == [TensorInfo((4,), "float64")]
    assert infer("CrossEntropy", [f64, f64]) == [TensorInfo((4,), "float64")]
    assert infer("AveragedLoss", [f64]) == [TensorInfo((), "float64")]
    assert infer("SigmoidCrossEntropyWithLogits", [f64, f64]) == [TensorInfo((4,), "float64")]
    assert infer("Accuracy", [f64, ints(4)]) == [SCALAR]
