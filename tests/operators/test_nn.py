"""nn family: Softmax, LogSoftmax and Dropout against NumPy references (on every
device), their gradient ops against numeric differentiation of the forward ops,
the CUDA kernels against their CPU twins where the references do not reach
(gradient ops, big grids), and the shape-inference rules. Dropout's CUDA mask
comes from its own RNG, so it is checked by its statistics."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.cuda import many_rows
from tests.operators import DEVICES
from tests.schema import infer


def rows_of(x, axis):
    axis %= x.ndim
    return x.astype(np.float64).reshape(int(np.prod(x.shape[:axis])), -1)


def ref_softmax(x, axis=1):
    rows = rows_of(x, axis)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def ref_log_softmax(x, axis=1):
    rows = rows_of(x, axis)
    shifted = rows - rows.max(axis=1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).reshape(x.shape)


@st.composite
def tensor_and_axis(draw):
    x = draw(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                        elements=st.floats(-20, 20, width=32)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@pytest.mark.parametrize("op_type, reference", [("Softmax", ref_softmax), ("LogSoftmax", ref_log_softmax)])
@settings(max_examples=25, deadline=None)
@given(case=tensor_and_axis())
def test_softmax_ops_match_reference(op_type, reference, case):
    x, axis = case
    (y,) = check_reference(op_type, [x], reference, {"axis": axis}, atol=1e-5)
    assert y.dtype == np.float32 and y.shape == x.shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, axis", [((3, 7), 1), ((2, 3, 5), 2), ((2, 3, 5), -2), ((6,), 0)], ids=str)
@pytest.mark.parametrize("op_type, reference", [("Softmax", ref_softmax), ("LogSoftmax", ref_log_softmax)])
def test_softmax_ops_on_each_device(op_type, reference, shape, axis, device):
    x = np.random.default_rng(len(shape)).uniform(-20, 20, shape).astype(np.float32)
    (y,) = check_reference(op_type, [x], reference, {"axis": axis}, atol=1e-5, device=device)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type, reference", [("Softmax", ref_softmax), ("LogSoftmax", ref_log_softmax)])
def test_softmax_ops_are_stable_and_keep_float64(op_type, reference):
    x = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4]])
    (y,) = check_reference(op_type, [x], reference)
    assert y.dtype == np.float64 and np.isfinite(y).all()
    big = np.array([[88.0, 90.0, 3.0]], dtype=np.float32)
    assert np.isfinite(run_op(op_type, [big])[0]).all()


@pytest.mark.parametrize("forward, gradient", [("Softmax", "SoftmaxGradient"),
                                               ("LogSoftmax", "LogSoftmaxGradient")])
@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 3, 2), -2), ((5,), 0)])
def test_softmax_gradients_match_numeric(forward, gradient, shape, axis):
    rng = np.random.default_rng(sum(shape) + axis)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    (y,) = run_op(forward, [x], {"axis": axis})
    check_gradient_op(forward, [x], gradient, [y, dy], {0: 0}, [dy], {"axis": axis}, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("gradient", ["SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_gradient_dtype_and_empty(gradient):
    y, dy = np.full((2, 4), 0.25, np.float32), np.ones((2, 4), np.float32)
    (dx,) = run_op(gradient, [y, dy])
    assert dx.dtype == np.float32
    (dx,) = run_op(gradient, [np.zeros((0, 3), np.float32)] * 2)
    assert dx.shape == (0, 3)


# (op type, inputs, args, message): refused alike on the CPU and on CUDA
ERROR_CASES = [
    ("Softmax", [np.zeros((2, 3), np.float32)], {"axis": 2}, r"axis 2 is out of range for X of rank 2"),
    ("SoftmaxGradient", [np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)], {},
     r"Y is \[2, 3\] but dY is \[3, 2\]"),
    ("DropoutGrad", [np.zeros((2, 3), np.float32), np.zeros((3, 2), bool)], {},
     r"dY is \[2, 3\] but mask is \[3, 2\]"),
    ("DropoutGrad", [np.zeros((2, 3), np.float32)], {}, "needs the mask input"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", ERROR_CASES,
                         ids=[f"{c[0]}-{c[3][:12]}" for c in ERROR_CASES])
def test_errors(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, device_option=device_option(device))


def test_softmax_refuses_integers():
    with pytest.raises((OpFailure, NetError), match="X must be float, got int32"):
        run_op("Softmax", [np.zeros((2, 3), np.int32)])


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.9])
def test_dropout_training_keeps_with_probability_one_minus_ratio(ratio):
    x = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)
    y, mask = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=2, seed=7)
    assert mask.dtype == np.bool_ and mask.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, np.where(mask, x / (1 - ratio), 0), rtol=1e-6)
    assert abs(mask.mean() - (1 - ratio)) < 0.02
    again, _ = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=2, seed=7)
    np.testing.assert_array_equal(y, again)  # same seed, same mask
    (only_y,) = run_op("Dropout", [x], {"ratio": ratio}, num_outputs=1, seed=7)
    assert only_y.shape == x.shape


def test_dropout_edges_and_test_mode():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    y, mask = run_op("Dropout", [x], {"ratio": 1.0}, num_outputs=2)
    assert not mask.any() and (y == 0).all()
    y, mask = run_op("Dropout", [x], {"ratio": 0.5, "is_test": 1}, num_outputs=2)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float64 and mask.all()
    check_reference("Dropout", [x], lambda x, **_: x, {"is_test": 1})  # also in place


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_grad_matches_reference(device):
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((3, 4)).astype(np.float32)
    mask = rng.random((3, 4)) < 0.6
    check_reference("DropoutGrad", [dy, mask], lambda dy, mask, ratio: dy * mask / (1 - ratio),
                    {"ratio": 0.4}, device=device)
    check_reference("DropoutGrad", [dy], lambda dy, **_: dy, {"is_test": 1}, device=device)
    check_reference("DropoutGrad", [dy, mask], lambda dy, mask, **_: dy, {"is_test": 1}, device=device)
    (dx,) = run_op("DropoutGrad", [dy, mask], {"ratio": 1.0}, device_option=device_option(device))
    assert (dx == 0).all() and dx.dtype == np.float32


def test_dropout_grad_is_the_gradient_of_dropout_with_its_mask():
    x = np.random.default_rng(3).standard_normal((4, 5))
    y, mask = run_op("Dropout", [x], {"ratio": 0.3}, num_outputs=2, seed=11)
    dy = np.random.default_rng(4).standard_normal(x.shape)
    (dx,) = run_op("DropoutGrad", [dy, mask], {"ratio": 0.3})
    np.testing.assert_allclose(dx, y / np.where(mask, x, 1) * dy, rtol=1e-12)


# Gradient makers: each registered gradient against central differences --------

@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 3, 2), -2), ((5,), 0)])
def test_softmax_registered_gradient(op_type, shape, axis):
    x = np.random.default_rng(len(shape) + axis).standard_normal(shape) * 2
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], {"axis": axis}), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5])
@pytest.mark.parametrize("is_test", [0, 1])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2)])
def test_dropout_registered_gradient(ratio, is_test, shape):
    x = np.random.default_rng(6).standard_normal(shape)
    outputs = ["Y"] if is_test else ["Y", "mask"]
    op = make_op("Dropout", ["X"], outputs, {"ratio": ratio, "is_test": is_test})
    op.device_option.random_seed = 7  # the same mask on every forward run
    report = check_op_gradient(op, [x], 0)
    assert report.ok, report


def test_dropout_gradient_in_training_needs_the_mask():
    with pytest.raises(GradientError, match="mask"):
        GetGradientForOp(make_op("Dropout", ["X"], ["Y"]), ["Y_grad"])


# CUDA against the CPU twin -------------------------------------------------------

rng = np.random.default_rng(0)
# Odd sizes, more rows than the emulator's grid has blocks, one huge row, and more rows
# than a real grid has blocks (65535).
SHAPES = [(1, 1), (3, 7), (2, 3, 5), (5, 1000), (300, 3), (1, 1 << 20), many_rows(((1 << 20) // 3 + 1, 3))]


def logits(shape):
    return rng.uniform(-20, 20, shape).astype(np.float32)  # large enough to need the max shift


def forward_then_gradient(forward):
    """(Y, dY): Y from the CPU forward op."""
    def make(shape):
        return [run_op(forward, [logits(shape)])[0], rng.standard_normal(shape).astype(np.float32)]
    return make


def dropout_grad_inputs(shape):
    mask = rng.random(shape) >= 0.4
    return [rng.standard_normal(shape).astype(np.float32), mask]


# op type -> (inputs for a shape, args)
CASES = {
    "Softmax": (lambda s: [logits(s)], {}),
    "LogSoftmax": (lambda s: [logits(s)], {}),
    "SoftmaxGradient": (forward_then_gradient("Softmax"), {}),
    "LogSoftmaxGradient": (forward_then_gradient("LogSoftmax"), {}),
    "DropoutGrad": (dropout_grad_inputs, {"ratio": 0.4}),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.add("Dropout")  # test_dropout_* below


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("axis", [0, 2, -1])
@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_axis(op_type, axis):
    make_inputs, _ = CASES[op_type]
    check_devices(op_type, make_inputs((4, 3, 33)), {"axis": axis}, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
def test_softmax_of_extreme_rows():
    x = np.array([[1e30, -1e30, 0.0], [88.0, 88.0, -88.0], [-np.inf, 0.0, 1.0]], np.float32)
    for op_type in ("Softmax", "LogSoftmax"):
        check_devices(op_type, [x], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("rows", [
    [[0.5, -1.0, 2.0, 0.0]] * 3,  # sums of exp(x) at least 1: exp(x) / sum without the max
    [[0.5, -1.0, 2.0, 0.0], [-90.0, -95.0, -91.0, -99.0]],  # a row summing below 1: every row shifted
    [[0.5, -1.0, 2.0, 0.0], [100.0, 99.0, -3.0, 0.0]],  # exp overflows in one row
    [[0.5, -1.0, 2.0, 0.0], [np.nan, 0.0, 1.0, 2.0]],
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_with_and_without_the_max_shift_matches_reference(rows, dtype):
    x = np.asarray(rows, dtype)
    (y,) = run_op("Softmax", [x])
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref_softmax(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    (dx,) = run_op("SoftmaxGradient", [y, dy])
    expected = y * (dy - (dy * y).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-6)


def run_cuda(op_type, inputs, args, num_outputs, seed=None):
    option = caffe2_pb2.DeviceOption()
    option.CopyFrom(device_option("cuda"))
    if seed is not None:
        option.random_seed = seed
    return run_op(op_type, list(inputs), args, num_outputs=num_outputs, device_option=option)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.75, 1.0])
def test_dropout_keeps_one_minus_ratio_scaled(ratio):
    x = rng.uniform(0.5, 2.0, (1 << 20) + 3).astype(np.float32)  # nonzero: kept means y != 0
    y, mask = run_cuda("Dropout", [x], {"ratio": ratio}, 2)
    assert mask.dtype == np.bool_ and mask.shape == x.shape
    keep = 1.0 - ratio
    assert abs(mask.mean() - keep) <= 5 * np.sqrt(keep * ratio / x.size) + 1e-12
    scale = np.float32(0.0 if ratio >= 1 else 1.0 / (1.0 - ratio))
    np.testing.assert_array_equal(y[mask], x[mask] * scale)
    np.testing.assert_array_equal(y[~mask], 0)
    # The mask looks random: no long runs, halves alike.
    if 0 < ratio < 1:
        half = x.size // 2
        assert abs(mask[:half].mean() - mask[half:].mean()) < 0.01


@pytest.mark.gpu
@pytest.mark.slow
def test_dropout_seeds():
    x = np.ones(4099, np.float32)
    first, again = (run_cuda("Dropout", [x], {"ratio": 0.5}, 2, seed=7)[1] for _ in range(2))
    other = run_cuda("Dropout", [x], {"ratio": 0.5}, 2, seed=8)[1]
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.4


@pytest.mark.gpu
@pytest.mark.slow
def test_dropout_in_test_mode_is_the_identity():
    x = rng.standard_normal((3, 1001)).astype(np.float32)
    y, mask = run_cuda("Dropout", [x], {"ratio": 0.5, "is_test": 1}, 2)
    np.testing.assert_array_equal(y, x)
    assert mask.all() and mask.shape == x.shape
    (y,) = run_cuda("Dropout", [x], {"ratio": 0.5, "is_test": 1}, 1)
    np.testing.assert_array_equal(y, x)


@pytest.mark.gpu
@pytest.mark.slow
def test_dropout_grad_reads_the_cuda_mask():
    x = rng.standard_normal((7, 513)).astype(np.float32)
    _, mask = run_cuda("Dropout", [x], {"ratio": 0.3}, 2)
    check_devices("DropoutGrad", [rng.standard_normal(x.shape).astype(np.float32), mask], {"ratio": 0.3})


# Shape and type inference ----------------------------------------------------------


def numpy_softmax(x, axis):
    """Softmax of x over its 2-D view split before `axis`, reshaped back."""
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "nn"}
    assert sorted(family) == ["Dropout", "DropoutGrad", "LogSoftmax", "LogSoftmaxGradient",
                              "Softmax", "SoftmaxGradient"]
    assert all(s.inference != "none" for s in family.values())


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, axis", [((2, 5), 1), ((2, 3, 4), 1), ((2, 3, 4), 2),
                                         ((2, 3, 4), -1), ((6,), 0), ((2, 3), -2)])
def test_softmax_keeps_shape(op_type, shape, axis):
    expected = numpy_softmax(np.random.rand(*shape), axis % len(shape)).shape
    assert infer(op_type, [shape], axis=axis) == [TensorInfo(expected, "float32")]
    assert infer(op_type, [shape], dtype="float64", axis=axis)[0].dtype == "float64"


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax_inference_errors(op_type):
    with pytest.raises(ShapeError, match=r"axis 3 is out of range for X of rank 3"):
        infer(op_type, [(2, 3, 4)], axis=3)
    with pytest.raises(ShapeError, match="axis -3 is out of range"):
        infer(op_type, [(2, 3)], axis=-3)
    with pytest.raises(ShapeError, match="X must be float, got int32"):
        infer(op_type, [(2, 3)], dtype="int32")
    assert infer(op_type, [None]) == [None]


@pytest.mark.parametrize("op_type", ["SoftmaxGradient", "LogSoftmaxGradient"])
def test_softmax_gradient_inference(op_type):
    assert infer(op_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None, (4, 5)]) == [TensorInfo((4, 5))]
    assert infer(op_type, [None, None]) == [None]
    with pytest.raises(ShapeError, match=r"Y is \[2, 3\] but dY is \[3, 2\]"):
        infer(op_type, [(2, 3), (3, 2)])


def test_dropout_training_writes_a_bool_mask():
    x = np.random.rand(2, 3, 4)
    mask = np.random.rand(*x.shape) >= 0.5
    y, m = infer("Dropout", [x.shape], n_out=2)
    assert y == TensorInfo((x * mask).shape, "float32")
    assert m == TensorInfo(mask.shape, mask.dtype.name)


def test_dropout_test_mode_and_unknowns():
    assert infer("Dropout", [(2, 3)], n_out=2, is_test=1) == [TensorInfo((2, 3)), None]
    assert infer("Dropout", [(2, 3)], is_test=1) == [TensorInfo((2, 3))]
    assert infer("Dropout", [None], n_out=2) == [None, None]


def test_dropout_grad_inference():
    mask = TensorInfo((2, 3), "bool")
    assert infer("DropoutGrad", [(2, 3), mask]) == [TensorInfo((2, 3))]
    assert infer("DropoutGrad", [(2, 3)], is_test=1) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match=r"dY is \[2, 3\] but mask is \[3, 2\]"):
        infer("DropoutGrad", [(2, 3), TensorInfo((3, 2), "bool")])
    with pytest.raises(ShapeError, match="mask must be bool, got float32"):
        infer("DropoutGrad", [(2, 3), (2, 3)])
