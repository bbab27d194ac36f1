"""softmax_loss family (SoftmaxWithLoss, SpatialSoftmaxWithLoss): against an independent NumPy reference
(float64), its gradient op against numeric differentiation, the CUDA kernels
against their CPU twins (gpu-marked), and the shape-inference rules."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.cuda import many_rows
from tests.operators import DEVICES
from tests.operators.test_loss import (
    ERRORS,
    SCALAR,
    SHAPES,
    ints,
    label_probs,
    labels,
    probabilities,
    scalar_grad,
    scores,
    weights,
)
from tests.schema import infer


def ref_softmax_with_loss(logits, labels, weights=None, scale=1.0, label_prob=0, axis=1, only_loss=0):
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label_prob", [0, 1])
def test_softmax_with_loss_only_loss_computes_both_outputs(label_prob, device):
    """only_loss is Caffe2's memory hint: the softmax and the loss (and the gradient) are
    the same as without it."""
    inputs, _, _ = softmax_case(5, (3, 4), 1, label_prob, False)
    args = {"only_loss": 1, "label_prob": label_prob}
    p, _ = check_reference("SoftmaxWithLoss", inputs, ref_softmax_with_loss, args, atol=1e-5, device=device)
    check_gradient_op("SoftmaxWithLoss", inputs, "SoftmaxWithLossGradient",
                      inputs + [p, np.array(1.0, np.float32)], {0: 0}, [None, 1.0], args, atol=1e-3)


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


@pytest.mark.parametrize("device", DEVICES)
def test_softmax_with_loss_errors(device):
    on = device_option(device)
    logits = np.zeros((4, 10), np.float32)
    with pytest.raises(ERRORS, match=r"but labels are \[5\]: labels need N=4 elements"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(5, np.int32)], device_option=on)
    with pytest.raises(ERRORS, match=r"class indices in \[0, 10\), got values in \[-1, 0\]"):
        run_op("SoftmaxWithLoss", [logits, np.array([0, 0, -1, 0], np.int32)], device_option=on)
    with pytest.raises(ERRORS, match="labels must be integer class indices, got float32"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(4, np.float32)], device_option=on)
    with pytest.raises(ERRORS, match="each row of labels must sum to 1"):
        run_op("SoftmaxWithLoss", [logits, np.full((4, 10), 0.2, np.float32)], {"label_prob": 1},
               device_option=on)
    with pytest.raises(ERRORS, match=r"but weights are \[3\]: they need N=4 elements"):
        run_op("SoftmaxWithLoss", [logits, np.zeros(4, np.int32), np.ones(3, np.float32)], device_option=on)
    with pytest.raises(ERRORS, match=r"logits is \[4, 10\] but softmax is \[4, 9\]"):
        run_op("SoftmaxWithLossGradient", [logits, np.zeros(4, np.int32),
                                           np.zeros((4, 9), np.float32), np.ones((), np.float32)],
               device_option=on)


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1)])
@pytest.mark.parametrize("label_prob", [0, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_with_loss_registered_gradient(shape, axis, label_prob, weighted):
    inputs, _, _ = softmax_case(len(shape) + axis, shape, axis, label_prob, weighted)
    names = ["logits", "labels", "weights"][:len(inputs)]
    op = make_op("SoftmaxWithLoss", names, ["P", "loss"], {"axis": axis, "label_prob": label_prob, "scale": 1.5})
    report = check_op_gradient(op, inputs, 0, outputs_with_grads=(1,))
    assert report.ok, report


# CUDA against the CPU twin -----------------------------------------------------------

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
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(CASES)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=1e-5)


# SoftmaxWithLoss variants: (inputs, args); the gradient of each as well.
VARIANTS = {
    "weights": (lambda n, d: [scores(n, d), labels(n, d), weights(n)], {"scale": 2.0}),
    "zero_weights": (lambda n, d: [scores(n, d), labels(n, d), np.zeros(n, np.float32)], {}),
    "label_prob": (lambda n, d: [scores(n, d), label_probs(n, d)], {"label_prob": 1}),
    "label_prob_weights": (lambda n, d: [scores(n, d), label_probs(n, d), weights(n)], {"label_prob": 1}),
    "axis_2": (lambda n, d: [scores(n, d).reshape(n, 1, d), labels(n, d)], {"axis": 2}),
}


@pytest.mark.gpu
@pytest.mark.slow
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


# Shape and type inference ------------------------------------------------------------

def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "softmax_loss"}
    assert sorted(family) == ["SoftmaxWithLoss", "SoftmaxWithLossGradient", "SpatialSoftmaxWithLoss",
                              "SpatialSoftmaxWithLossGradient"]
    assert all(s.inference != "none" for s in family.values())


@pytest.mark.parametrize("shape, axis", [((4, 10), 1), ((2, 3, 5), 1), ((2, 3, 5), 2),
                                         ((2, 3, 5), -1)])
def test_softmax_with_loss_matches_numpy_inference(shape, axis):
    x = np.random.rand(*shape)
    canonical = axis % len(shape)
    n = int(np.prod(shape[:canonical]))
    rows = np.exp(x.reshape(n, -1))
    probs = (rows / rows.sum(axis=1, keepdims=True)).reshape(shape)
    labels = np.zeros(shape[:canonical], dtype=np.int32)
    loss = -np.log(probs.reshape(n, -1)[np.arange(n), labels.ravel()]).mean()
    out = infer("SoftmaxWithLoss", [shape, ints(*labels.shape)], n_out=2, axis=axis)
    assert out == [TensorInfo(probs.shape, "float32"), TensorInfo(loss.shape, "float32")]
    assert infer("SoftmaxWithLoss", [shape, ints(*shape[:canonical], 1), (n,)], n_out=2,
                 axis=axis)[0].shape == shape


def test_softmax_with_loss_probability_labels_inference():
    out = infer("SoftmaxWithLoss", [(4, 10), (4, 10)], n_out=2, label_prob=1)
    assert out == [TensorInfo((4, 10)), SCALAR]
    with pytest.raises(ShapeError, match=r"logits \[4, 10\] give N=4, D=10 at axis 1, but labels "
                                         r"are \[4, 9\]: label_prob=1"):
        infer("SoftmaxWithLoss", [(4, 10), (4, 9)], n_out=2, label_prob=1)


def test_softmax_with_loss_errors_inference():
    with pytest.raises(ShapeError, match=r"but labels are \[5\]: labels need N=4"):
        infer("SoftmaxWithLoss", [(4, 10), ints(5)], n_out=2)
    with pytest.raises(ShapeError, match=r"at axis 2, but labels are \[6\]"):
        infer("SoftmaxWithLoss", [(2, 3, 5), ints(6)], n_out=2, axis=2)
    with pytest.raises(ShapeError, match="labels must be int32 class indices, got float32"):
        infer("SoftmaxWithLoss", [(4, 10), (4,)], n_out=2)
    with pytest.raises(ShapeError, match=r"but weights are \[3\]: they need N=4"):
        infer("SoftmaxWithLoss", [(4, 10), ints(4), (3,)], n_out=2)
    with pytest.raises(ShapeError, match="axis 2 is out of range for logits of rank 2"):
        infer("SoftmaxWithLoss", [(4, 10), ints(4)], n_out=2, axis=2)
    assert infer("SoftmaxWithLoss", [None, ints(4)], n_out=2) == [None, SCALAR]


def test_softmax_with_loss_gradient_inference():
    assert infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (4, 10), ()]) == [
        TensorInfo((4, 10))]
    assert infer("SoftmaxWithLossGradient", [None, ints(4), (4,), (4, 10), ()]) == [
        TensorInfo((4, 10))]
    with pytest.raises(ShapeError, match=r"logits is \[4, 10\] but softmax is \[4, 9\]"):
        infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (4, 9), ()])
    with pytest.raises(ShapeError, match=r"weights are \[5\]"):
        infer("SoftmaxWithLossGradient", [(4, 10), ints(4), (5,), (4, 10), ()])


# SpatialSoftmaxWithLoss (CPU) ---------------------------------------------------------

def ref_spatial_softmax_with_loss(logits, labels, weights=None, scale=1.0, order="NCHW"):
    """Per-pixel softmax over D and the weighted mean of -log P[label] over pixels whose label is not -1."""
    n, _, h, w = logits.shape
    p = np.empty(logits.shape)
    total = weight_sum = 0.0
    for i, y, x in np.ndindex(n, h, w):
        column = logits[i, :, y, x].astype(np.float64)
        e = np.exp(column - column.max())
        p[i, :, y, x] = e / e.sum()
        if labels[i, y, x] != -1:
            weight = 1.0 if weights is None else float(weights[i, y, x])
            total += -np.log(max(p[i, labels[i, y, x], y, x], 1e-20)) * weight
            weight_sum += weight
    return p, np.float64(scale * total / weight_sum if weight_sum else 0.0)


def spatial_case(seed, shape, weighted, ignored=True):
    """[logits, labels, (weights)] with some labels -1 when `ignored`."""
    rng = np.random.default_rng(seed)
    n, d, h, w = shape
    labels = rng.integers(-1 if ignored else 0, d, (n, h, w)).astype(np.int32)
    inputs = [(rng.standard_normal(shape) * 2).astype(np.float32), labels]
    if weighted:
        inputs.append((rng.random((n, h, w)) + 0.1).astype(np.float32))
    return inputs


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 2, 2), (3, 4, 1, 6), (0, 3, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_spatial_softmax_with_loss_matches_reference(shape, weighted, scale):
    inputs = spatial_case(sum(shape), shape, weighted)
    p, loss = check_reference("SpatialSoftmaxWithLoss", inputs, ref_spatial_softmax_with_loss,
                              {"scale": scale}, atol=1e-5)
    assert p.dtype == np.float32 and loss.dtype == np.float32 and loss.shape == ()


def test_spatial_softmax_with_loss_ignores_every_pixel_labelled_minus_1():
    logits, _, weights = spatial_case(3, (2, 3, 2, 2), True)
    labels = np.full((2, 2, 2), -1, np.int32)
    p, loss = run_op("SpatialSoftmaxWithLoss", [logits, labels, weights])
    assert loss == 0
    (dx,) = run_op("SpatialSoftmaxWithLossGradient", [logits, labels, weights, p, np.float32(1)])
    assert (dx == 0).all()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_spatial_softmax_with_loss_gradient_matches_numeric(weighted, scale):
    inputs = spatial_case(11, (2, 3, 3, 2), weighted)
    args = {"scale": scale}
    p, _ = run_op("SpatialSoftmaxWithLoss", inputs, args)
    (dx,) = check_gradient_op("SpatialSoftmaxWithLoss", inputs, "SpatialSoftmaxWithLossGradient",
                              inputs + [p, np.array(0.7, np.float32)], {0: 0}, [None, 0.7], args, atol=1e-3)
    assert dx.dtype == np.float32 and (np.moveaxis(dx, 1, -1)[inputs[1] == -1] == 0).all()


@pytest.mark.parametrize("weighted", [False, True])
def test_spatial_softmax_with_loss_registered_gradient(weighted):
    inputs = spatial_case(7, (2, 3, 2, 3), weighted)
    names = ["logits", "labels", "weights"][:len(inputs)]
    op = make_op("SpatialSoftmaxWithLoss", names, ["P", "loss"], {"scale": 1.5})
    report = check_op_gradient(op, inputs, 0, outputs_with_grads=(1,))
    assert report.ok, report


def test_spatial_softmax_with_loss_errors():
    logits = np.zeros((2, 3, 4, 5), np.float32)
    some_minus_2 = np.where(np.eye(4, 5, dtype=bool), -2, 0).astype(np.int32)[None].repeat(2, 0)
    with pytest.raises(ERRORS, match=r"labels must be class indices in \[0, 3\) or -1 \(ignored\), "
                                     r"got values in \[-2, 0\]"):
        run_op("SpatialSoftmaxWithLoss", [logits, some_minus_2])
    with pytest.raises(ERRORS, match=r"got values in \[3, 3\]"):
        run_op("SpatialSoftmaxWithLoss", [logits, np.full((2, 4, 5), 3, np.int32)])
    with pytest.raises(ERRORS, match="labels must be integer class indices, got float32"):
        run_op("SpatialSoftmaxWithLoss", [logits, np.zeros((2, 4, 5), np.float32)])
    with pytest.raises(ERRORS, match=r"need weights \[N, H, W\] = \[2, 4, 5\], got \[2, 20\]"):
        run_op("SpatialSoftmaxWithLoss", [logits, np.zeros((2, 4, 5), np.int32),
                                          np.ones((2, 20), np.float32)])
    with pytest.raises(ERRORS, match=r"logits is \[2, 3, 4, 5\] but softmax is \[2, 3, 4, 4\]"):
        run_op("SpatialSoftmaxWithLossGradient", [logits, np.zeros((2, 4, 5), np.int32),
                                                  np.zeros((2, 3, 4, 4), np.float32),
                                                  np.ones((), np.float32)])


def test_spatial_softmax_with_loss_inference():
    assert infer("SpatialSoftmaxWithLoss", [(2, 3, 4, 5), ints(2, 4, 5)], n_out=2) == [
        TensorInfo((2, 3, 4, 5)), SCALAR]
    x, labels = (2, 3, 4, 5), ints(2, 4, 5)
    assert infer("SpatialSoftmaxWithLoss", [x, labels, (2, 4, 5)], n_out=2)[0].shape == x
    assert infer("SpatialSoftmaxWithLossGradient", [x, labels, (2, 4, 5), x, ()]) == [TensorInfo(x)]
    assert infer("SpatialSoftmaxWithLossGradient", [None, ints(2, 4, 5), (2, 3, 4, 5), ()]) == [
        TensorInfo((2, 3, 4, 5))]


@pytest.mark.parametrize("op_type, shapes, message", [
    ("SpatialSoftmaxWithLoss", [(6, 10), ints(6)], r"^logits are \[6, 10\] but must be 4-D \[N, D, H, W\]"),
    ("SpatialSoftmaxWithLoss", [(2, 3, 4, 5), ints(2, 20)],
     r"^logits \[2, 3, 4, 5\] need labels \[N, H, W\] = \[2, 4, 5\], got \[2, 20\]"),
    ("SpatialSoftmaxWithLoss", [(2, 3, 4, 5), (2, 4, 5)], "^labels must be int32 class indices, got float32"),
    ("SpatialSoftmaxWithLoss", [(2, 3, 4, 5), ints(2, 4, 5), (2, 4, 4)], r"need weights \[N, H, W\]"),
    ("SpatialSoftmaxWithLossGradient", [(2, 3, 4, 5), ints(2, 4, 5), (2, 3, 4, 4), ()],
     r"^logits is \[2, 3, 4, 5\] but softmax is \[2, 3, 4, 4\]"),
])
def test_spatial_softmax_with_loss_inference_errors(op_type, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=2 if op_type == "SpatialSoftmaxWithLoss" else 1)
