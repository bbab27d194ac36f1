"""CUDA kernels of the loss family (loss.cu) against their CPU twins (marked gpu)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.testing import check_devices, run_op
from tests.cuda import many_rows
from tests.cuda.test_devices_nn import run_cuda

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
# [N, D]: odd sizes, more rows than the emulator's grid has blocks, one huge row, and more
# rows than a real grid has blocks (65535).
SHAPES = [(1, 1), (3, 7), (5, 1000), (300, 3), (1, 1 << 20), many_rows(((1 << 20) // 3 + 1, 3))]


def scores(n, d):
    return rng.uniform(-20, 20, (n, d)).astype(np.float32)


def labels(n, d):
    return rng.integers(0, d, n).astype(np.int32)


def weights(n):
    return rng.uniform(0, 2, n).astype(np.float32)


def label_probs(n, d):
    p = rng.random((n, d)) * (rng.random((n, d)) < 0.7)  # some zero targets
    p[:, 0] += 1e-3
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def probabilities(n, d):
    p = run_op("Softmax", [scores(n, d)])[0]
    p[:, :1] = 0.0  # below the 1e-20 floor
    return p


def logits(shape):
    """Scores with exact zeros (softplus's own branch) and large magnitudes."""
    x = rng.uniform(-30, 30, shape).astype(np.float32)
    return np.where(rng.random(shape) < 0.1, np.float32(0), x)


def targets(shape):
    """Targets in [0, 1] with exact 0s and 1s."""
    return np.clip(rng.uniform(-0.3, 1.3, shape), 0, 1).astype(np.float32)


def row_grad(shape):
    """The gradient of one loss per row (all but the last axis)."""
    return rng.standard_normal(shape[:-1]).astype(np.float32)


def scalar_grad():
    return np.array(rng.uniform(0.5, 2.0), np.float32)


def softmax_with_loss_gradient(with_weights=False, label_prob=False):
    """{logits, labels, [weights], softmax, dloss} with softmax from the CPU forward op."""
    def make(shape):
        n, d = shape
        x = scores(n, d)
        target = label_probs(n, d) if label_prob else labels(n, d)
        w = [weights(n)] if with_weights else []
        p = run_op("SoftmaxWithLoss", [x, target, *w], {"label_prob": int(label_prob)})[0]
        return [x, target, *w, p, scalar_grad()]
    return make


# op type -> (inputs for an [N, D] shape, args)
CASES = {
    "SoftmaxWithLoss": (lambda s: [scores(*s), labels(*s)], {"scale": 0.5}),
    "SoftmaxWithLossGradient": (softmax_with_loss_gradient(), {}),
    "LabelCrossEntropy": (lambda s: [probabilities(*s), labels(*s)], {}),
    "LabelCrossEntropyGradient": (lambda s: [probabilities(*s), labels(*s),
                                             rng.standard_normal(s[0]).astype(np.float32)], {}),
    "AveragedLoss": (lambda s: [scores(*s)], {}),
    "AveragedLossGradient": (lambda s: [scores(*s), scalar_grad()], {}),
    "SquaredL2Distance": (lambda s: [scores(*s), scores(*s)], {}),
    "SquaredL2DistanceGradient": (lambda s: [scores(*s), scores(*s),
                                             rng.standard_normal(s[0]).astype(np.float32)], {}),
    "Accuracy": (lambda s: [np.round(scores(*s) / 8), labels(*s)], {}),  # ties
    "CrossEntropy": (lambda s: [probabilities(*s), label_probs(*s)], {}),
    "CrossEntropyGradient": (lambda s: [probabilities(*s), label_probs(*s),
                                        rng.standard_normal(s[0]).astype(np.float32)], {}),
    "SigmoidCrossEntropyWithLogits": (lambda s: [logits(s), targets(s)], {}),
    "SigmoidCrossEntropyWithLogitsGradient": (lambda s: [row_grad(s), logits(s), targets(s)], {}),
}
OUTPUTS = {"SquaredL2DistanceGradient": 2}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, OUTPUTS.get(op_type), atol=1e-6, rtol=1e-5)


# SoftmaxWithLoss variants: (inputs, args); the gradient of each as well.
VARIANTS = {
    "weights": (lambda n, d: [scores(n, d), labels(n, d), weights(n)], {"scale": 2.0}),
    "zero_weights": (lambda n, d: [scores(n, d), labels(n, d), np.zeros(n, np.float32)], {}),
    "label_prob": (lambda n, d: [scores(n, d), label_probs(n, d)], {"label_prob": 1}),
    "label_prob_weights": (lambda n, d: [scores(n, d), label_probs(n, d), weights(n)], {"label_prob": 1}),
    "axis_2": (lambda n, d: [scores(n, d).reshape(n, 1, d), labels(n, d)], {"axis": 2}),
}


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(3, 7), (1000, 33), many_rows(((1 << 20) // 5, 5))], ids=str)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_softmax_with_loss_variants(variant, shape):
    make_inputs, args = VARIANTS[variant]
    inputs = make_inputs(*shape)
    check_devices("SoftmaxWithLoss", inputs, args, 2, atol=1e-6, rtol=1e-5)
    p = run_op("SoftmaxWithLoss", inputs, args)[0]
    logits, targets, *w = inputs
    gradient_inputs = [logits, targets, *w, p, scalar_grad()]
    check_devices("SoftmaxWithLossGradient", gradient_inputs, args, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [1, 3, 1000])
def test_accuracy_top_k(top_k):
    predictions = np.round(scores(4001, 10) / 4)  # many ties
    check_devices("Accuracy", [predictions, labels(4001, 10)], {"top_k": top_k})


@pytest.mark.gpu
def test_odd_shapes():
    check_devices("AveragedLoss", [scores(1, 1).reshape(())])
    check_devices("LabelCrossEntropy", [probabilities(1, 5)[0], labels(1, 5)])  # 1-D X: one example
    check_devices("SquaredL2Distance", [np.float32(1.5), np.float32(-2.0)])
    check_devices("SquaredL2Distance", [scores(3, 10).reshape(3, 2, 5), scores(3, 10).reshape(3, 2, 5)])


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", ["SoftmaxWithLoss", "LabelCrossEntropy", "Accuracy"])
def test_out_of_range_labels_are_refused_as_on_the_cpu(op_type):
    bad = np.array([0, 7, 1], np.int32)
    with pytest.raises((OpFailure, NetError), match=r"class indices in \[0, 7\)"):
        run_cuda(op_type, [scores(3, 7), bad], {}, 2 if op_type == "SoftmaxWithLoss" else 1)


SIGMOID_XENT_ARGS = [{}, {"log_D_trick": 1}, {"unjoined_lr_loss": 1}, {"log_D_trick": 0, "unjoined_lr_loss": 0}]


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value", "ignore:divide by zero")
@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 7), (2, 3, 5), (300, 3), (2, 1000), (4, 0), (0, 3),
                                   (2, 0, 3)], ids=str)
@pytest.mark.parametrize("args", SIGMOID_XENT_ARGS, ids=str)
def test_sigmoid_cross_entropy_every_variant_and_shape(args, shape):
    x, t = logits(shape), targets(shape)
    check_devices("SigmoidCrossEntropyWithLogits", [x, t], args, atol=1e-6, rtol=1e-5)
    dy = np.asarray(row_grad(shape) if shape else rng.standard_normal(), np.float32)
    check_devices("SigmoidCrossEntropyWithLogitsGradient", [dy, x, t], args, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
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
@pytest.mark.parametrize("x_shape, label_shape", [((5,), (1, 5)), ((4, 1), (4,)), ((3, 2, 5), (3, 10)),
                                                  ((0, 4), (0, 4)), ((3, 0), (3, 0))], ids=str)
def test_cross_entropy_odd_shapes(x_shape, label_shape):
    x = rng.uniform(0, 1, x_shape).astype(np.float32)
    label = rng.uniform(0, 1, label_shape).astype(np.float32)
    check_devices("CrossEntropy", [x, label])
    n = x_shape[0] if len(x_shape) > 1 else 1
    check_devices("CrossEntropyGradient", [x, label, rng.standard_normal(n).astype(np.float32)])


@pytest.mark.gpu
def test_cross_entropy_refuses_labels_outside_0_1_as_on_the_cpu():
    label = label_probs(3, 4)
    label[1, 2] = 1.5
    with pytest.raises((OpFailure, NetError), match=r"probabilities in \[0, 1\]"):
        run_cuda("CrossEntropy", [probabilities(3, 4), label], {}, 1)
