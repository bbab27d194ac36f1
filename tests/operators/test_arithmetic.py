"""Arithmetic family: each op against a NumPy reference (on the CPU, and on CUDA where a
row takes `device`), each gradient op against central differences of its forward op, the
shape inference rules against NumPy's shapes, and the CUDA kernels (arithmetic.cu) against
their CPU twins over every broadcasting layout, forward and backward, with grids larger
than the emulator's."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.executor.net import compile_net
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_net_gradient, check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

RNG = np.random.default_rng(0)

BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def rand(shape, rng, low=0.5, high=2.0, dtype=np.float32):
    """Random values of either sign with magnitude in [low, high): safe divisors."""
    magnitude = rng.uniform(low, high, shape)
    return np.asarray(magnitude * rng.choice([-1, 1], shape), dtype=dtype)


def legacy_start(a_shape, b_shape, axis):
    return len(a_shape) - len(b_shape) if axis == -1 else axis


def legacy_reference(function):
    """function(A, B) with B padded by 1s to line up with A at `axis`: Caffe2's legacy rule."""
    def reference(a, b, axis=-1, **_):
        start = legacy_start(a.shape, b.shape, axis)
        return function(a, b.reshape((1,) * start + b.shape + (1,) * (a.ndim - start - b.ndim)))
    return reference


def reduce_to(x, shape):
    """Sum x down to `shape` (NumPy broadcasting in reverse), independently of the kernels."""
    while x.ndim > len(shape):
        x = x.sum(axis=0)
    for axis, dim in enumerate(shape):
        if dim == 1 and x.shape[axis] != 1:
            x = x.sum(axis=axis, keepdims=True)
    return x


@st.composite
def legacy_case(draw):
    """(A shape, B shape, axis): B a run of A's dims, its first or last possibly 1."""
    a = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    start = draw(st.integers(0, len(a)))
    end = draw(st.integers(start, len(a)))
    b = list(a[start:end])
    if b and draw(st.booleans()):
        b[0] = 1
    if b and draw(st.booleans()):
        b[-1] = 1
    axis = -1 if end == len(a) and draw(st.booleans()) else start
    return a, tuple(b), axis


# --- forward binary ops -----------------------------------------------------------------------

@pytest.mark.parametrize("op_type", BINARY)
@settings(max_examples=20, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4),
       seed=st.integers(0, 2**16))
def test_numpy_broadcasting(op_type, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rand(shape, rng) for shape in shapes.input_shapes)
    (c,) = check_reference(op_type, [a, b], BINARY[op_type])
    assert c.shape == shapes.result_shape and c.dtype == np.float32


@pytest.mark.parametrize("op_type", BINARY)
@settings(max_examples=20, deadline=None)
@given(case=legacy_case(), seed=st.integers(0, 2**16))
def test_legacy_broadcasting(op_type, case, seed):
    a_shape, b_shape, axis = case
    rng = np.random.default_rng(seed)
    a, b = rand(a_shape, rng), rand(b_shape, rng)
    (c,) = check_reference(op_type, [a, b], legacy_reference(BINARY[op_type]),
                           {"broadcast": 1, "axis": axis})
    assert c.shape == a_shape


@pytest.mark.parametrize("a_shape, b_shape, args, axis", [
    ((2, 3, 4, 5), (3,), {"axis_str": "C"}, 1),
    ((2, 3, 4, 5), (3, 4), {"axis_str": "C", "order": "NCHW"}, 1),
    ((2, 4, 5, 3), (3,), {"axis_str": "C", "order": "NHWC"}, 3),
    ((2, 3, 4), (1, 1, 1, 1), {}, -1),  # a one-element B goes with any A
    ((2, 3, 4), (), {"axis": 0}, 0),
])
@pytest.mark.parametrize("device", DEVICES)
def test_legacy_axis_forms(a_shape, b_shape, args, axis, device):
    rng = np.random.default_rng(0)
    a, b = rand(a_shape, rng), rand(b_shape, rng)
    expected = a * b.reshape(-1) if b.size == 1 else legacy_reference(np.multiply)(a, b, axis)
    check_reference("Mul", [a, b], lambda *_, **__: expected, {"broadcast": 1, **args}, rtol=1e-6,
                    device=device)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op_type, reference", [
    ("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
    ("Div", lambda a, b: np.trunc(a.astype(np.float64) / b))])  # C++ truncates toward zero
@pytest.mark.parametrize("broadcast", [0, 1])
def test_integer_types(dtype, op_type, reference, broadcast):
    rng = np.random.default_rng(1)
    a = rng.integers(-50, 50, (3, 4)).astype(dtype)
    b = (rng.integers(1, 7, (4,)) * rng.choice([-1, 1], 4)).astype(dtype)
    (c,) = check_reference(op_type, [a, b], lambda a, b, **_: reference(a, b).astype(dtype),
                           {"broadcast": broadcast}, atol=0, rtol=0)
    assert c.dtype == dtype


def test_integer_division_truncates_and_rejects_zero():
    a, b = np.array([7, -7, 7, -7, 6, -6]), np.array([2, 2, -2, -2, -3, 3])
    (c,) = run_op("Div", [a, b])
    np.testing.assert_array_equal(c, [3, -3, -3, 3, -2, -2])
    with pytest.raises(OpFailure, match=r"op 0 \(Div\) failed: .*integer division by zero"):
        run_op("Div", [a, np.array([1, 2, 0, 1, 1, 1])])


@pytest.mark.parametrize("op_type", BINARY)
def test_float64_kept(op_type):
    a, b = np.linspace(1, 2, 6).reshape(2, 3), np.linspace(-2, -1, 3)
    (c,) = check_reference(op_type, [a, b], BINARY[op_type])
    assert c.dtype == np.float64


def test_no_broadcast_arg_dispatches_to_the_bare_ufunc():
    ops = [make_op(t, ["X", "Y"], [f"Z{t}"]) for t in ("Add", "Sub", "Mul")]
    ops.append(make_op("Add", ["X", "Y"], ["W"], {"axis": 1}))  # axis means nothing without broadcast
    net = caffe2_pb2.NetDef(name="plain", op=ops)
    steps = compile_net(net, known_blobs=["X", "Y"]).steps
    assert [s.function for s in steps] == [np.add, np.subtract, np.multiply, np.add]
    assert all(not s.kwargs for s in steps)


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_legacy_mismatch_is_reported_with_shapes(device):
    a, b = np.ones((2, 3, 4), np.float32), np.ones((3,), np.float32)
    with pytest.raises(OpFailure, match=r"\(Add\) failed: B is \[3\] but A is \[2, 3, 4\]: with "
                                        r"broadcast=1 at axis 2, B's dim 0 \(3\) must equal A's dim 2 \(4\)"):
        check_reference("Add", [a, b], None, {"broadcast": 1}, device=device)
    with pytest.raises(OpFailure, match=r"\(Sub\) failed: B is .* cannot have more dims than A"):
        check_reference("Sub", [b, a], None, {"broadcast": 1}, device=device)


def test_bad_axis_str_fails_at_create_net():
    workspace = Workspace("_axis_str")
    workspace.FeedBlob("A", np.ones((2, 3), np.float32))
    workspace.FeedBlob("B", np.ones((3,), np.float32))
    op = make_op("Add", ["A", "B"], ["C"], {"broadcast": 1, "axis_str": "Q"})
    with pytest.raises(NetError, match="'Q' is not a letter of order NCHW"):
        workspace.CreateNet(caffe2_pb2.NetDef(name="bad", op=[op]))


def test_numpy_mismatch_names_the_shapes():
    with pytest.raises((OpFailure, NetError), match=r"\(2,3\) \(2,4\)|\[2, 3\].*\[2, 4\]"):
        run_op("Mul", [np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)])


@pytest.mark.parametrize("device", DEVICES)
def test_variadic_mismatch(device):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(OpFailure, match=r"\(Sum\) failed: input 2 is \[3, 2\] float32 but input 0 is \[2, 3\]"):
        check_reference("Sum", [x, x, x.reshape(3, 2)], None, device=device)
    if device == "cpu":  # CUDA kernels take float32 only
        with pytest.raises(OpFailure, match=r"\(Max\) failed: input 1 is .* float64"):
            run_op("Max", [x, x.astype(np.float64)])
        with pytest.raises(OpFailure, match=r"\(Mean\) failed: input 0 is int32; Mean takes floating-point"):
            run_op("Mean", [x.astype(np.int32), x.astype(np.int32)])


# --- binary gradients -------------------------------------------------------------------------

# (A shape, B shape, args): NumPy-style and legacy layouts.
LAYOUTS = [
    ((2, 3), (2, 3), {}),
    ((2, 3, 2), (3, 1), {}),
    ((3, 1), (2, 1, 4), {}),
    ((2, 3), (), {}),
    ((2, 3, 2), (3,), {"broadcast": 1, "axis": 1}),
    ((2, 3, 2), (1, 2), {"broadcast": 1}),
    ((2, 3, 2), (1,), {"broadcast": 1}),
    ((2, 2, 1, 3), (3,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
]


def operands(a_shape, b_shape, args, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rand(a_shape, rng), rand(b_shape, rng)
    forward = legacy_reference if args.get("broadcast") else (lambda f: lambda a, b, **_: f(a, b))
    return a, b, forward


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul"])
@pytest.mark.parametrize("a_shape, b_shape, args", LAYOUTS)
def test_binary_gradient_ops(op_type, a_shape, b_shape, args):
    a, b, forward = operands(a_shape, b_shape, args)
    c = forward(BINARY[op_type])(a, b, **args)
    dc = rand(c.shape, np.random.default_rng(1))
    da, db = check_gradient_op(op_type, [a, b], op_type + "Gradient", [dc, a, b],
                               {0: 0, 1: 1}, [dc], args)
    assert da.shape == a.shape and db.shape == b.shape and da.dtype == db.dtype == np.float32
    # The explicit formulas (and in place on dC, as the schema allows).
    b_line = forward(lambda a, b: b)(np.zeros_like(c), b, **args)
    local = {"Add": (1, 1), "Sub": (1, -1), "Mul": (b_line, a)}[op_type]
    expected = (reduce_to(dc * local[0], a.shape), reduce_to(dc * local[1], b_line.shape).reshape(b.shape))
    check_reference(op_type + "Gradient", [dc, a, b], lambda *_, **__: expected, args)


@pytest.mark.parametrize("a_shape, b_shape, args", LAYOUTS)
def test_div_gradient(a_shape, b_shape, args):
    a, b, forward = operands(a_shape, b_shape, args)
    c = forward(np.divide)(a, b, **args)
    dc = rand(c.shape, np.random.default_rng(1))
    check_gradient_op("Div", [a, b], "DivGradient", [dc, a, b, c], {0: 0, 1: 1}, [dc], args)
    if a.shape == c.shape:  # the older 3-input form (B, C, dC) takes A's shape from C
        check_gradient_op("Div", [a, b], "DivGradient", [b, c, dc], {0: 0, 1: 1}, [dc], args)


def test_add_gradient_passes_dc_through_when_shapes_match():
    dc = np.ones((2, 3), np.float32)
    da, db = run_op("AddGradient", [dc, dc, dc], num_outputs=2)
    np.testing.assert_array_equal(da, dc)
    np.testing.assert_array_equal(db, dc)


# --- SumReduceLike ----------------------------------------------------------------------------

@pytest.mark.parametrize("a_shape, b_shape, args, sum_axes", [
    ((2, 3, 4, 5), (4, 5), {}, (0, 1)),
    ((2, 3, 4, 5), (3, 4), {"axis": 1}, (0, 3)),
    ((2, 3, 4, 5), (2,), {"axis": 0}, (1, 2, 3)),
    ((2, 3, 4, 5), (3,), {"axis_str": "C"}, (0, 2, 3)),
    ((2, 3, 4, 5), (1, 4, 1), {"axis": 1}, (0, 1, 3)),
    ((2, 3, 4), (1,), {}, None),
    ((2, 3), (2, 3), {}, ()),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sum_reduce_like(a_shape, b_shape, args, sum_axes, dtype):
    rng = np.random.default_rng(2)
    a = rng.integers(-9, 9, a_shape).astype(dtype)
    b = np.zeros(b_shape, dtype)
    reference = lambda a, b, **_: a.sum(axis=sum_axes).reshape(b.shape)
    (c,) = check_reference("SumReduceLike", [a, b], reference, args)
    assert c.dtype == dtype


# --- Sum, Mean, Max, Min ----------------------------------------------------------------------

VARIADIC = {"Sum": lambda *xs: np.sum(xs, axis=0), "Mean": lambda *xs: np.mean(xs, axis=0),
            "Max": lambda *xs: np.max(xs, axis=0), "Min": lambda *xs: np.min(xs, axis=0)}


@pytest.mark.parametrize("op_type", VARIADIC)
@settings(max_examples=15, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), count=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_variadic_ops(op_type, shape, count, dtype, seed):
    rng = np.random.default_rng(seed)
    xs = [rand(shape, rng, dtype=dtype) for _ in range(count)]
    (y,) = check_reference(op_type, xs, VARIADIC[op_type])
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_sum_max_min(dtype):
    xs = [np.arange(6, dtype=dtype).reshape(2, 3) * k for k in (1, -2, 3)]
    for op_type in ("Sum", "Max", "Min"):
        (y,) = check_reference(op_type, xs, VARIADIC[op_type], atol=0, rtol=0)
        assert y.dtype == dtype


@pytest.mark.parametrize("count", [1, 3])
def test_mean_gradient(count):
    rng = np.random.default_rng(3)
    xs = [rand((2, 3), rng) for _ in range(count)]
    dy = rand((2, 3), rng)
    grads = check_gradient_op("Mean", xs, "MeanGradient", [dy], {i: i for i in range(count)}, [dy])
    assert len(grads) == count


@pytest.mark.parametrize("op_type", ["Max", "Min"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_select_gradients(op_type, count):
    rng = np.random.default_rng(4)
    xs = [rand((2, 3), rng) for _ in range(count)]  # distinct values: no ties
    y = VARIADIC[op_type](*xs).astype(np.float32)
    dy = rand((2, 3), rng)
    check_gradient_op(op_type, xs, op_type + "Gradient", [y, dy, *xs],
                      {i: i for i in range(count)}, [dy])


def test_select_gradient_ties_all_receive():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    dy = np.array([10.0, 20.0, 30.0], np.float32)
    d0, d1 = run_op("MaxGradient", [x, dy, x, np.array([1.0, 5.0, 0.0], np.float32)], num_outputs=2)
    np.testing.assert_array_equal(d0, dy)
    np.testing.assert_array_equal(d1, [10.0, 0.0, 0.0])


# --- gradient makers --------------------------------------------------------------------------

@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("op_type", BINARY)
@pytest.mark.parametrize("a_shape, b_shape, args", LAYOUTS + [((2, 3, 2), (2, 3), {"broadcast": 1, "axis": 0})])
def test_binary_registered_gradient(op_type, a_shape, b_shape, args, input_to_check):
    a, b, _ = operands(a_shape, b_shape, args, seed=5)  # |B| >= 0.5: Div stays smooth
    report = check_op_gradient(make_op(op_type, ["A", "B"], ["C"], args), [a, b], input_to_check)
    assert report.ok, report


def test_binary_maker_inherits_broadcast_args():
    args = {"broadcast": 1, "axis_str": "C", "order": "NHWC"}
    (grad_op,), g_input = GetGradientForOp(make_op("Div", ["A", "B"], ["C"], args), ["C_grad"])
    assert (grad_op.type, list(grad_op.input), list(grad_op.output)) == \
        ("DivGradient", ["C_grad", "A", "B", "C"], ["A_grad", "B_grad"])
    assert {a.name for a in grad_op.arg} == set(args) and g_input == ["A_grad", "B_grad"]


@pytest.mark.parametrize("op_type", BINARY)
def test_binary_gradient_with_one_blob_for_both_inputs(op_type):
    # Mul(X, X): the maker names X_grad twice; the backward pass renames one and sums them.
    net = caffe2_pb2.NetDef(op=[make_op(op_type, ["X", "X"], ["Y"])])
    x = rand((2, 3), np.random.default_rng(6))
    (report,) = check_net_gradient(net, ["Y"], {"X": x}, ["X"])
    assert report.ok, report


def variadic_inputs(count, shape=(2, 3), seed=7):
    """`count` inputs whose values are all at least 0.1 apart: no ties for Max and Min."""
    size = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(count * size) * 0.1 - 0.05 * count * size
    return [v.reshape(shape) for v in np.split(values, count)]


@pytest.mark.parametrize("op_type", ["Mean", "Max", "Min"])
@pytest.mark.parametrize("count, shape", [(1, (3,)), (2, (2, 3)), (3, (2, 1, 2))])
def test_variadic_registered_gradient(op_type, count, shape):
    xs = variadic_inputs(count, shape)
    op = make_op(op_type, [f"X{i}" for i in range(count)], ["Y"])
    for i in range(count):
        report = check_op_gradient(op, xs, i)
        assert report.ok, report


def test_sum_gradient_is_a_pass_through():
    ops, g_input = GetGradientForOp(make_op("Sum", ["A", "B", "C"], ["Y"]), ["Y_grad"])
    assert ops == [] and g_input == ["Y_grad"] * 3


# Sum's maker emits no op, so it is checked through a backward pass (check_op_gradient would
# run an empty op list); a repeated input collects the shared gradient once per use.
@pytest.mark.parametrize("op_type", ["Sum", "Mean"])
@pytest.mark.parametrize("inputs", [["X0"], ["X0", "X1", "X2"], ["X0", "X1", "X0"]])
def test_variadic_backward_pass(op_type, inputs):
    net = caffe2_pb2.NetDef(op=[make_op(op_type, inputs, ["Y"]), make_op("Mul", ["Y", "W"], ["Z"])])
    values = dict(zip(["X0", "X1", "X2", "W"], variadic_inputs(4)))
    reports = check_net_gradient(net, ["Z"], values, sorted(set(inputs)))
    assert all(report.ok for report in reports), reports


# --- shape inference ---------------------------------------------------------------------------

def legacy_shape(a, b, axis):
    """The shape NumPy gives for A + B once B is padded with 1s to start at `axis`."""
    start = len(a) - len(b) if axis == -1 else axis
    aligned = (1,) * start + tuple(b) + (1,) * (len(a) - start - len(b))
    return (np.zeros(a) + np.zeros(b).reshape(aligned)).shape


@pytest.mark.parametrize("op_type", BINARY)
@pytest.mark.parametrize("a, b", [
    ((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)),
    ((), (5, 2)), ((1,), ()), ((3, 1, 5), (1, 4, 1)), ((0, 3), (1, 3))])
def test_numpy_broadcasting_matches_numpy(op_type, a, b):
    (out,) = infer(op_type, [a, b])
    assert out == TensorInfo(np.broadcast_shapes(a, b), "float32")


@pytest.mark.parametrize("op_type", BINARY)
def test_numpy_broadcasting_mismatch(op_type):
    with pytest.raises(ValueError):
        np.broadcast_shapes((2, 3), (2, 4))
    with pytest.raises(ShapeError, match=r"A is \[2, 3\] and B is \[2, 4\]: dims 3 and 4"):
        infer(op_type, [(2, 3), (2, 4)])


@pytest.mark.parametrize("b, axis", [
    ((5,), -1), ((4, 5), -1), ((3, 4), 1), ((2,), 0), ((), -1), ((1,), 2), ((1, 4, 1), 1),
    ((3, 1), 1), ((1, 1, 1, 1), -1)])
def test_legacy_broadcasting_keeps_a_shape(b, axis):
    a = (2, 3, 4, 5)
    (out,) = infer("Mul", [a, b], broadcast=1, axis=axis)
    assert out.shape == legacy_shape(a, b, axis) == a


@pytest.mark.parametrize("order, b, expected_axis", [("NCHW", (3, 4), 1), ("NHWC", (5,), 3)])
def test_legacy_axis_str_names_the_axis(order, b, expected_axis):
    a = (2, 3, 4, 5)
    (out,) = infer("Add", [a, b], broadcast=1, axis_str="C", order=order)
    assert out.shape == legacy_shape(a, b, expected_axis)


def test_legacy_axis_str_changes_the_answer():
    a = (2, 3, 4, 5)
    with pytest.raises(ShapeError):  # aligned with A's trailing dims, [3, 4] does not fit
        infer("Add", [a, (3, 4)], broadcast=1)
    with pytest.raises(ShapeError):  # C is A's last axis under NHWC
        infer("Add", [a, (3,)], broadcast=1, axis_str="C", order="NHWC")


@pytest.mark.parametrize("shapes, args, message", [
    ([(2, 3, 4, 5), (3,)], {}, r"B's dim 0 \(3\) must equal A's dim 3 \(5\)"),
    ([(2, 3, 4, 5), (4, 5)], {"axis": 1}, r"B's dim 0 \(4\) must equal A's dim 1 \(3\)"),
    ([(2, 3, 4, 5), (4, 5)], {"axis": 3}, r"axis 3 is out of range \[0, 2\]"),
    ([(4, 5), (3, 4, 5)], {}, "cannot have more dims than A"),
    ([(2, 3), (3,)], {"axis": 1, "axis_str": "C"}, "not both"),
    ([(2, 3), (3,)], {"axis_str": "Q"}, "'Q' is not a letter of order NCHW"),
])
def test_legacy_broadcasting_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("Add", shapes, broadcast=1, **args)


def test_broadcast_args_ignored_without_broadcast():
    (out,) = infer("Sub", [(2, 3), (2, 1)], axis=0)
    assert out.shape == np.broadcast_shapes((2, 3), (2, 1))


def test_infer_types():
    (out,) = infer("Add", [(2, 3), (3,)], dtype="int32")
    assert out.dtype == (np.zeros((2, 3), np.int32) + np.zeros(3, np.int32)).dtype.name
    with pytest.raises(ShapeError, match="A is float32 but B is int32"):
        infer("Div", [TensorInfo((2, 3)), TensorInfo((2, 3), "int32")])


def test_infer_unknown_inputs():
    assert infer("Add", [None, (3,)]) == [None]
    assert infer("Add", [(2, 3), None]) == [None]
    assert infer("Add", [(2, 3), None], broadcast=1) == [TensorInfo((2, 3))]
    assert infer("Mul", [None, None], broadcast=1, axis=1) == [None]


@pytest.mark.parametrize("op_type", ["AddGradient", "SubGradient", "MulGradient"])
def test_binary_gradients_take_input_shapes(op_type):
    a, b = (2, 3, 4), (3, 1)
    c = np.broadcast_shapes(a, b)
    assert infer(op_type, [c, a, b], n_out=2) == [TensorInfo(a), TensorInfo(b)]
    assert infer(op_type, [None, a, None], n_out=2) == [TensorInfo(a), None]
    with pytest.raises(ShapeError, match=r"dC is \[2, 3\] but the forward output is \[2, 3, 4\]"):
        infer(op_type, [(2, 3), a, b], n_out=2)


def test_gradient_under_legacy_broadcast():
    out = infer("AddGradient", [(2, 3, 4), (2, 3, 4), (3,)], n_out=2, broadcast=1, axis=1)
    assert out == [TensorInfo((2, 3, 4)), TensorInfo((3,))]


def test_div_gradient_both_forms():
    a, b = (2, 3), (3,)
    c = np.broadcast_shapes(a, b)
    assert infer("DivGradient", [c, a, b, c], n_out=2) == [TensorInfo(a), TensorInfo(b)]
    assert infer("DivGradient", [b, c, c], n_out=2) == [TensorInfo(c), TensorInfo(b)]
    with pytest.raises(ShapeError, match=r"C is \[3\] but the forward output is \[2, 3\]"):
        infer("DivGradient", [c, a, b, (3,)], n_out=2)
    with pytest.raises(ShapeError, match="dC is"):
        infer("DivGradient", [b, c, (3, 2)], n_out=2)


@pytest.mark.parametrize("a, b, axis, sum_axes", [
    ((2, 3, 4, 5), (4, 5), -1, (0, 1)),
    ((2, 3, 4, 5), (3, 4), 1, (0, 3)),
    ((2, 3, 4, 5), (2,), 0, (1, 2, 3)),
])
def test_infer_sum_reduce_like_takes_b_shape(a, b, axis, sum_axes):
    (out,) = infer("SumReduceLike", [TensorInfo(a, "float64"), TensorInfo(b)], axis=axis)
    assert out == TensorInfo(np.zeros(a).sum(axis=sum_axes).shape, "float64")


def test_sum_reduce_like_errors_and_unknowns():
    assert infer("SumReduceLike", [(2, 3, 4), (1,)]) == [TensorInfo((1,))]
    assert infer("SumReduceLike", [(2, 3, 4), None]) == [None]
    assert infer("SumReduceLike", [None, (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"B's dim 0 \(3\) must equal A's dim 2 \(4\)"):
        infer("SumReduceLike", [(2, 3, 4), (3,)])
    (out,) = infer("SumReduceLike", [(2, 3, 4, 5), (3,)], axis_str="C")
    assert out.shape == (3,)


@pytest.mark.parametrize("op_type, reduce", [
    ("Sum", np.add), ("Mean", np.add), ("Max", np.maximum), ("Min", np.minimum)])
def test_variadic_ops_need_one_shape(op_type, reduce):
    shapes = [(2, 3)] * 3
    (out,) = infer(op_type, shapes)
    assert out == TensorInfo(reduce.reduce([np.zeros(s, np.float32) for s in shapes]).shape)
    assert infer(op_type, [None, (2, 3), None]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None, None]) == [None]
    with pytest.raises(ShapeError, match=r"input 2 is \[3, 2\] float32 but input 0 is \[2, 3\]"):
        infer(op_type, [(2, 3), (2, 3), (3, 2)])
    with pytest.raises(ShapeError, match="input 1 is"):
        infer(op_type, [TensorInfo((2, 3)), TensorInfo((2, 3), "int32")])


def test_mean_needs_floats():
    assert infer("Mean", [(2, 3)] * 2, dtype="float64") == [TensorInfo((2, 3), "float64")]
    with pytest.raises(ShapeError, match="input 0 is int32; Mean takes floating-point tensors"):
        infer("Mean", [(2, 3)] * 2, dtype="int32")


def test_mean_gradient_gives_each_input_dy_shape():
    assert infer("MeanGradient", [(4, 5)], n_out=3) == [TensorInfo((4, 5))] * 3


@pytest.mark.parametrize("op_type", ["MaxGradient", "MinGradient"])
def test_infer_select_gradients(op_type):
    y = (2, 3)
    assert infer(op_type, [y, y, y, y], n_out=2) == [TensorInfo(y)] * 2
    assert infer(op_type, [None, None, y, None], n_out=2) == [TensorInfo(y), None]
    with pytest.raises(ShapeError, match=r"input 3 is \[3\] float32"):
        infer(op_type, [y, y, y, (3,)], n_out=2)


# --- CUDA against the CPU twin (gpu) ------------------------------------------------------------

SHAPES = [(1,), (7,), (3, 5, 4), (1 << 20,), (1000, 1025)]
# Gradients of operands of one shape sum nothing.
SUMS = {"atol": 1e-5, "rtol": 1e-5}


def normal(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def divisor(shape):  # |B| in [1, 2]: no blow-up in A / B or its gradient
    return (RNG.uniform(1, 2, shape) * RNG.choice([-1, 1], shape)).astype(np.float32)


def sums(c_shape, *operand_shapes):
    """Tolerances for sums down to the operands: the CPU adds n terms in float32 (an error
    up to ~n ulps of the running sum, ~sqrt(n)), the GPU in double."""
    terms = max(1, int(np.prod(c_shape)) // min(int(np.prod(s)) for s in operand_shapes))
    return {"atol": 1e-5 + 2e-7 * terms, "rtol": 1e-4}


def binary_inputs(a_shape, b_shape):
    return [normal(a_shape), divisor(b_shape)]


def gradient_inputs(forward, a_shape, b_shape, args=None):
    """(dC, A, B) of the forward op, plus C for Div."""
    a, b = binary_inputs(a_shape, b_shape)
    c = run_op(forward, [a, b], args)[0]
    return [normal(c.shape), a, b] + ([c] if forward == "Div" else [])


# op type -> (inputs for a shape, args); the binary ops here with operands of one shape
CASES = {t: ((lambda s: binary_inputs(s, s)), {}) for t in BINARY}
CASES.update({t + "Gradient": ((lambda s, t=t: gradient_inputs(t, s, s)), {}) for t in BINARY})
CASES.update({
    "Sum": (lambda s: [normal(s) for _ in range(3)], {}),
    "Mean": (lambda s: [normal(s) for _ in range(3)], {}),
    "Max": (lambda s: [normal(s) for _ in range(3)], {}),
    "Min": (lambda s: [normal(s) for _ in range(3)], {}),
    "SumReduceLike": (lambda s: [normal(s), normal(s)], {}),
})
VARIADIC_GRADIENTS = ["MeanGradient", "MaxGradient", "MinGradient"]  # test_variadic_gradients
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(VARIADIC_GRADIENTS)

# (A's shape, B's shape, args): B (or A) broadcast over C, C's shape from both
BROADCASTS = [
    ((3, 5, 4), (4,), {}),
    ((3, 5, 4), (5, 1), {}),
    ((3, 1, 4), (1, 5, 1), {}),  # both operands broadcast
    ((1, 5, 1), (3, 5, 4), {}),  # A broadcasts
    ((3, 5, 4), (), {}),
    ((2, 3, 7, 11), (3, 1, 11), {}),
    ((512, 2049), (2049,), {}),  # ~1M: a bias, 512 terms per sum
    ((1025, 1024), (1025, 1), {}),  # ~1M: rows summed
    ((5, 300001), (300001,), {}),  # many short sums
    ((64, 16, 33, 31), (16, 1, 1), {}),  # ~1M: NCHW channels
    ((2, 3, 4, 5), (3, 4), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis_str": "C"}),
    ((2, 4, 5, 3), (3,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3, 4, 5), (1,), {"broadcast": 1}),
    ((2, 3, 4, 5), (4, 5), {"broadcast": 1}),
    ((2, 3, 4, 5), (3, 1), {"broadcast": 1, "axis": 1}),
    ((64, 17, 31, 31), (17,), {"broadcast": 1, "axis": 1}),  # ~1M
]
IDS = [f"{a}-{b}-{'legacy' if args else 'numpy'}" for a, b, args in BROADCASTS]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    outputs = 2 if op_type.endswith("Gradient") else None
    tolerance = SUMS if outputs else {"atol": 1e-6, "rtol": 1e-6}
    check_devices(op_type, make_inputs(shape), args, outputs, **tolerance)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS, ids=IDS)
@pytest.mark.parametrize("op_type", BINARY)
def test_broadcasting_forward(op_type, a_shape, b_shape, args):
    check_devices(op_type, binary_inputs(a_shape, b_shape), args, atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS, ids=IDS)
@pytest.mark.parametrize("op_type", BINARY)
def test_broadcasting_gradient(op_type, a_shape, b_shape, args):
    inputs = gradient_inputs(op_type, a_shape, b_shape, args)
    check_devices(op_type + "Gradient", inputs, args, 2, **sums(inputs[0].shape, a_shape, b_shape))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", [(s, s, {}) for s in SHAPES] + BROADCASTS[10:],
                         ids=str)
def test_div_gradient_older_three_input_form(a_shape, b_shape, args):
    d_c, _, b, c = gradient_inputs("Div", a_shape, b_shape, args)
    check_devices("DivGradient", [b, c, d_c], args, 2, **sums(c.shape, b_shape))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", BROADCASTS[10:], ids=IDS[10:])
def test_sum_reduce_like_on_cuda(a_shape, b_shape, args):
    args = {k: v for k, v in args.items() if k != "broadcast"}
    check_devices("SumReduceLike", [normal(a_shape), normal(b_shape)], args, **sums(a_shape, b_shape))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 2, 5])
@pytest.mark.parametrize("shape", [(7,), (1 << 20,)], ids=str)
@pytest.mark.parametrize("op_type", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op_type, shape, count):
    check_devices(op_type, [normal(shape) for _ in range(count)], atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (1 << 20,)], ids=str)
@pytest.mark.parametrize("op_type", VARIADIC_GRADIENTS)
def test_variadic_gradients(op_type, shape, count):
    if op_type == "MeanGradient":
        inputs = [normal(shape)]
    else:
        xs = [np.round(normal(shape)) for _ in range(count)]  # ties: each receives dY
        y = run_op(op_type.replace("Gradient", ""), xs)[0]
        inputs = [y, normal(shape)] + xs
    check_devices(op_type, inputs, num_outputs=count, atol=1e-6, rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.slow
def test_nan_propagates_through_max_and_min():
    xs = [np.array([np.nan, 1, 2], np.float32), np.array([0, np.nan, 3], np.float32)]
    check_devices("Max", xs)
    check_devices("Min", xs)


@pytest.mark.gpu
@pytest.mark.slow
def test_integer_operands_are_refused_clearly():
    with pytest.raises(Exception, match=r"\(Add\) failed: the CUDA kernel takes float32, got int32"):
        check_devices("Add", [np.arange(4, dtype=np.int32)] * 2)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["Sum", "Mean", "Max", "Min"])
def test_cuda_refuses_numpy_broadcast(op_type):
    x = np.ones(3, np.float32)
    with pytest.raises(OpFailure, match="numpy_broadcast=1 runs on the CPU"):
        check_reference(op_type, [x, x], None, {"numpy_broadcast": 1}, device="cuda")


# --- numpy_broadcast=1 on the variadic ops (ONNX's Sum, Mean, Max, Min) ------------------------

VARIADIC_BROADCAST = [[(2, 3), (3,)], [(4, 1), (1, 5), ()], [(3,)], [(2, 1, 3), (2, 3), (1, 1, 1)]]


@pytest.mark.parametrize("op_type", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("shapes", VARIADIC_BROADCAST, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint64])
def test_variadic_numpy_broadcast(op_type, shapes, dtype):
    if op_type == "Mean" and np.dtype(dtype).kind != "f":
        return
    rng = np.random.default_rng(12)
    xs = [rng.integers(0, 50, s).astype(dtype) for s in shapes]
    reference = {"Sum": lambda *xs: functools.reduce(np.add, xs),
                 "Mean": lambda *xs: functools.reduce(np.add, xs) / len(xs),
                 "Max": lambda *xs: functools.reduce(np.maximum, xs),
                 "Min": lambda *xs: functools.reduce(np.minimum, xs)}[op_type]
    (y,) = check_reference(op_type, xs, lambda *xs, **_: reference(*xs), {"numpy_broadcast": 1})
    assert y.dtype == dtype and y.shape == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize("op_type", ["Sum", "Max"])
def test_variadic_numpy_broadcast_errors(op_type):
    args = {"numpy_broadcast": 1}
    with pytest.raises(OpFailure, match=r"the broadcast of inputs 0-1 is \[2, 3\] and input 2 is \[2\]: "
                                        r"dims 3 and 2 do not broadcast \["):
        run_op(op_type, [np.ones((2, 3)), np.ones(3), np.ones(2)], args)
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is int64"):
        infer(op_type, [TensorInfo((2,)), TensorInfo((2,), "int64")], **args)
    assert infer(op_type, [(2, 1), None], **args) == [None]
    assert infer(op_type, [(2, 1), (3,)], **args) == [TensorInfo((2, 3))]
    with pytest.raises(GradientError, match="numpy_broadcast=1 has no gradient"):
        GetGradientForOp(make_op(op_type, ["A", "B"], ["Y"], args), ["Y_grad"])
