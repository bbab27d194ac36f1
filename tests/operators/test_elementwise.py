"""Elementwise family: each op against a NumPy reference (on the CPU, and on CUDA where a
row takes `device`), gradient ops against numeric differentiation of their forward ops,
dtypes, broadcasting and errors (on both devices), the shape inference rules against
NumPy's shapes, and the CUDA kernels (elementwise.cu) against their CPU twins."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetBackwardPass, GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import CUDA, check_devices, check_gradient_op, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

RNG = np.random.default_rng(0)

FLOAT32_MAX = float(np.finfo(np.float32).max)

arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                    elements=st.floats(-3, 3, width=32))


def positive(x):
    return np.abs(x) + np.float32(0.1)


# (type, args, reference(x, **args), input transform): float-only unary ops.
UNARY = [
    ("Exp", {}, np.exp, None),
    ("Log", {}, np.log, positive),
    ("Sqrt", {}, np.sqrt, positive),
    ("Abs", {}, np.abs, None),
    ("Negative", {}, lambda x: -x, None),
    ("Neg", {}, lambda x: -x, None),
    ("Sqr", {}, lambda x: x * x, None),
    ("Scale", {}, lambda x: x, None),
    ("Scale", {"scale": -2.5}, lambda x, scale: scale * x, None),
    ("Scale", {"scale": 0.0}, lambda x, scale: 0 * x, None),
    ("Clip", {"min": -1.0, "max": 0.5}, lambda x, min, max: np.minimum(np.maximum(x, min), max), None),
    ("Clip", {"min": 0.0}, lambda x, min: np.maximum(x, 0), None),
    ("Clip", {}, lambda x: x, None),
    ("Pow", {"exponent": 2.0}, lambda x, exponent: x.astype(np.float64) ** 2, None),
    ("Pow", {"exponent": -1.5}, lambda x, exponent: x.astype(np.float64) ** -1.5, positive),
    ("Pow", {"exponent": 0.0}, lambda x, exponent: np.ones_like(x), None),
    ("Sinh", {}, np.sinh, None),
    ("Cosh", {}, np.cosh, None),
    ("Cbrt", {}, lambda x: np.sign(x) * np.abs(x.astype(np.float64)) ** (1 / 3), None),
    ("Cube", {}, lambda x: x.astype(np.float64) ** 3, None),
    ("Reciprocal", {}, lambda x: 1 / x.astype(np.float64), positive),
    ("Rsqrt", {}, lambda x: x.astype(np.float64) ** -0.5, positive),
    ("Sign", {}, np.sign, None),
]
UNARY_IDS = [f"{t}-{'-'.join(map(str, a.values())) or 'default'}" for t, a, _, _ in UNARY]


@pytest.mark.parametrize("op_type, args, reference, transform", UNARY, ids=UNARY_IDS)
@settings(max_examples=10, deadline=None)
@given(x=arrays)
def test_unary_matches_reference(op_type, args, reference, transform, x):
    x = transform(x) if transform else x
    (y,) = check_reference(op_type, [x], reference, args)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type, args, reference, transform", UNARY, ids=UNARY_IDS)
def test_unary_keeps_float64_and_0d(op_type, args, reference, transform):
    x = np.linspace(0.2, 2.0, 6).reshape(2, 3)
    (y,) = check_reference(op_type, [x], reference, args, rtol=1e-10, atol=1e-12)
    assert y.dtype == np.float64
    (y0,) = run_op(op_type, [np.array(0.7, np.float32)], args)
    assert isinstance(y0, np.ndarray) and y0.shape == () and y0.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_negative_takes_integers(dtype):
    x = np.array([[3, -4, 0]], dtype=dtype)
    (y,) = check_reference("Negative", [x], lambda x: -x)
    assert y.dtype == dtype


@pytest.mark.parametrize("op_type, args", [("Exp", {}), ("Sqr", {}), ("Scale", {"scale": 2.0}),
                                           ("Clip", {}), ("Pow", {"exponent": 2.0})])
@pytest.mark.parametrize("device", DEVICES)
def test_float_ops_reject_integers(op_type, args, device):
    with pytest.raises(OpFailure, match=rf"\({op_type}\) failed: X is int32 \[3\], must be a float tensor"):
        check_reference(op_type, [np.arange(3, dtype=np.int32)], None, args, device=device)


def test_clip_defaults_are_the_float32_range():
    x = np.array([-np.inf, -1e30, 0.0, 1e30, np.inf], np.float32)
    (y,) = run_op("Clip", [x])
    np.testing.assert_array_equal(y, np.array([-FLOAT32_MAX, -1e30, 0.0, 1e30, FLOAT32_MAX], np.float32))


# --- gradient ops ---------------------------------------------------------------------------

def away_from(x, points, margin=0.05):
    """x with values near any of `points` moved past them (off the kinks)."""
    for p in points:
        x = np.where(np.abs(x - p) < margin, p + 2 * margin, x)
    return x.astype(np.float32)


@settings(max_examples=10, deadline=None)
@given(x=arrays, seed=st.integers(0, 2**16))
def test_abs_gradient_matches_reference(x, seed):
    dy = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    (dx,) = check_reference("AbsGradient", [x, dy], lambda x, dy: np.where(x > 0, dy, -dy) * (x != 0))
    assert dx.dtype == np.float32


@settings(max_examples=10, deadline=None)
@given(x=arrays, seed=st.integers(0, 2**16))
def test_clip_gradient_matches_reference(x, seed):
    dy = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    y = np.clip(x, -1, 0.5)
    reference = lambda y, dy, **_: np.where((x > -1) & (x < 0.5), dy, 0)
    check_reference("ClipGradient", [y, dy], reference, {"min": -1.0, "max": 0.5})


def test_abs_gradient_is_numeric():
    rng = np.random.default_rng(1)
    x = away_from(rng.uniform(-2, 2, (2, 3)), [0.0])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    check_gradient_op("Abs", [x], "AbsGradient", [x, dy], {0: 0}, [dy])
    assert run_op("AbsGradient", [np.zeros(2, np.float32), np.ones(2, np.float32)])[0].tolist() == [0, 0]


@pytest.mark.parametrize("args", [{"min": -0.5, "max": 0.8}, {"max": 0.0}, {}])
def test_clip_gradient_is_numeric(args):
    rng = np.random.default_rng(2)
    x = away_from(rng.uniform(-2, 2, (3, 3)), [args.get("min", -9), args.get("max", 9)])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    (y,) = run_op("Clip", [x], args)
    check_gradient_op("Clip", [x], "ClipGradient", [y, dy], {0: 0}, [dy], args)


@pytest.mark.parametrize("op_type, inputs", [("AbsGradient", ["X", "dY"]), ("ClipGradient", ["Y", "dY"])])
@pytest.mark.parametrize("device", DEVICES)
def test_gradient_shape_mismatch(op_type, inputs, device):
    pattern = f"{inputs[0]} is \\[2, 3\\] but {inputs[1]} is \\[3\\]: they must have the same shape"
    with pytest.raises((OpFailure, NetError), match=pattern):
        check_reference(op_type, [np.ones((2, 3), np.float32), np.ones(3, np.float32)], None, device=device)


# --- Pow with an exponent tensor ------------------------------------------------------------

def legacy_view(b, a_ndim, axis):
    """Reference for legacy broadcasting: B padded with 1s to sit at `axis` of A."""
    if b.size == 1:
        return b.reshape(())
    start = a_ndim - b.ndim if axis == -1 else axis
    return b.reshape((1,) * start + b.shape + (1,) * (a_ndim - start - b.ndim))


# (X shape, exponent shape, args, axis used by the reference)
POW_CASES = [
    ((2, 3), (2, 3), {}, -1),
    ((2, 3, 4), (4,), {"broadcast": 1}, -1),
    ((2, 3, 4), (3, 4), {"broadcast": 1}, -1),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis": 1}, 1),
    ((2, 3, 4, 5), (3, 1), {"broadcast": 1, "axis": 1}, 1),
    ((2, 3, 4, 5), (4,), {"broadcast": 1, "axis_str": "H"}, 2),
    ((2, 3, 4, 5), (5,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}, 3),
    ((2, 3), (1,), {"broadcast": 1}, -1),
]


@pytest.mark.parametrize("x_shape, e_shape, args, axis", POW_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_exponent_tensor(x_shape, e_shape, args, axis, dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 2, x_shape).astype(dtype)
    e = rng.uniform(-2, 2, e_shape).astype(dtype)
    reference = lambda x, e, **_: np.power(x, legacy_view(e, x.ndim, axis))
    (y,) = check_reference("Pow", [x, e], reference, args, rtol=1e-5)
    assert y.dtype == dtype and y.shape == x_shape


@pytest.mark.parametrize("inputs, args, pattern", [
    ([(2, 3)], {}, "got neither"),
    ([(2, 3), (2, 3)], {"exponent": 2.0}, "got both"),
    ([(2, 3), (3,)], {}, r"X is \[2, 3\] and exponent is \[3\]: without broadcast=1 the shapes must be"),
    ([(2, 3), (2,)], {"broadcast": 1}, r"exponent's dim 0 \(2\) must equal X's dim 1 \(3\)"),
    ([(2, 3), (3, 2)], {"broadcast": 1, "axis": 0}, r"exponent's dim 0 \(3\) must equal X's dim 0"),
])
@pytest.mark.parametrize("device", DEVICES)
def test_pow_errors(inputs, args, pattern, device):
    with pytest.raises((OpFailure, NetError), match=pattern):
        check_reference("Pow", [np.ones(s, np.float32) for s in inputs], None, args, device=device)


def test_pow_exponent_of_another_type():
    with pytest.raises((OpFailure, NetError), match="X is float32 but exponent is float64"):
        run_op("Pow", [np.ones(2, np.float32), np.ones(2)])


# --- comparisons and logic ------------------------------------------------------------------

COMPARISONS = [("EQ", np.equal), ("LT", np.less), ("GT", np.greater),
               ("LE", np.less_equal), ("GE", np.greater_equal)]
LOGICAL = [("And", np.logical_and), ("Or", np.logical_or), ("Xor", np.logical_xor)]

# (A shape, B shape, args, legacy axis or None for NumPy-style)
BINARY_SHAPES = [
    ((3, 4), (3, 4), {}, None),
    ((2, 3, 4), (4,), {}, None),
    ((4, 1), (1, 5), {}, None),
    ((), (2, 3), {}, None),
    ((2, 3, 4), (3,), {"broadcast": 1, "axis": 1}, 1),
    ((2, 3, 4), (3, 4), {"broadcast": 1}, -1),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis_str": "C"}, 1),
    ((2, 3), (1, 1), {"broadcast": 1}, -1),
]


def binary_reference(ufunc, axis):
    def reference(a, b, **_):
        return ufunc(a, b if axis is None else legacy_view(b, a.ndim, axis))
    return reference


def small_ints(shape, dtype, rng):
    """Values from a small range, so that equal pairs are common."""
    return rng.integers(-2, 3, shape).astype(dtype)


@pytest.mark.parametrize("op_type, ufunc", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("a_shape, b_shape, args, axis", BINARY_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_comparisons(op_type, ufunc, a_shape, b_shape, args, axis, dtype):
    rng = np.random.default_rng(4)
    a, b = small_ints(a_shape, dtype, rng), small_ints(b_shape, dtype, rng)
    (c,) = check_reference(op_type, [a, b], binary_reference(ufunc, axis), args)
    assert c.dtype == np.bool_


@pytest.mark.parametrize("op_type, ufunc", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("dtype", [np.int32, np.float64, np.bool_])
def test_comparison_dtypes(op_type, ufunc, dtype):
    rng = np.random.default_rng(5)
    a, b = small_ints((4, 3), dtype, rng), small_ints((4, 3), dtype, rng)
    (c,) = check_reference(op_type, [a, b], ufunc)
    assert c.dtype == np.bool_


@pytest.mark.parametrize("op_type, ufunc", LOGICAL, ids=[c[0] for c in LOGICAL])
@pytest.mark.parametrize("a_shape, b_shape, args, axis", BINARY_SHAPES)
def test_logical_ops(op_type, ufunc, a_shape, b_shape, args, axis):
    rng = np.random.default_rng(6)
    a, b = rng.random(a_shape) > 0.5, rng.random(b_shape) > 0.5
    (c,) = check_reference(op_type, [a, b], binary_reference(ufunc, axis), args)
    assert c.dtype == np.bool_


@settings(max_examples=10, deadline=None)
@given(x=hnp.arrays(np.bool_, hnp.array_shapes(min_dims=0, max_dims=3)))
def test_not(x):
    (y,) = check_reference("Not", [x], np.logical_not)
    assert y.dtype == np.bool_ and isinstance(y, np.ndarray)


@pytest.mark.parametrize("op_type", ["Not", "And", "Or"])
@pytest.mark.parametrize("device", DEVICES)
def test_logic_ops_need_bool(op_type, device):
    inputs = [np.ones(3, np.float32)] * (1 if op_type == "Not" else 2)
    name = "X" if op_type == "Not" else "A"
    with pytest.raises(OpFailure, match=rf"\({op_type}\) failed: {name} is float32 \[3\], must be bool"):
        check_reference(op_type, inputs, None, device=device)


@pytest.mark.parametrize("op_type", ["EQ", "And"])
@pytest.mark.parametrize("device", DEVICES)
def test_binary_shape_errors(op_type, device):
    dtype = np.bool_ if op_type == "And" else np.float32
    with pytest.raises((OpFailure, NetError), match=r"A is \[2, 3\] and B is \[4\]: dims 3 and 4 do not"):
        check_reference(op_type, [np.ones((2, 3), dtype), np.ones(4, dtype)], None, device=device)
    with pytest.raises((OpFailure, NetError), match=r"B's dim 0 \(2\) must equal A's dim 1 \(3\)"):
        check_reference(op_type, [np.ones((2, 3), dtype), np.ones(2, dtype)], None, {"broadcast": 1},
                        device=device)


def test_comparison_type_mismatch_and_bad_axis_str():
    with pytest.raises((OpFailure, NetError), match="A is float32 but B is int64"):
        run_op("LT", [np.ones(2, np.float32), np.ones(2, np.int64)])
    with pytest.raises((OpFailure, NetError), match="axis_str 'Q' is not a letter of order NCHW"):
        run_op("LT", [np.ones((2, 3)), np.ones(3)], {"broadcast": 1, "axis_str": "Q"})


# --- Where ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_where(dtype):
    rng = np.random.default_rng(7)
    c = rng.random((3, 4)) > 0.5
    x, y = small_ints((3, 4), dtype, rng), small_ints((3, 4), dtype, rng)
    (z,) = check_reference("Where", [c, x, y], lambda c, x, y: np.where(c, x, y))
    assert z.dtype == dtype


@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 2, 3)])
def test_where_on_rows(shape):
    rng = np.random.default_rng(8)
    c = rng.random(4) > 0.5
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    reference = lambda c, x, y, **_: np.where(c.reshape((4,) + (1,) * (x.ndim - 1)), x, y)
    check_reference("Where", [c, x, y], reference, {"broadcast_on_rows": 1})


def test_where_on_strings():
    c = np.array([True, False, True])
    x, y = np.array(["a", "b", "c"], dtype=object), np.array(["x", "y", "z"], dtype=object)
    (z,) = run_op("Where", [c, x, y])
    assert z.tolist() == ["a", "y", "c"]


@pytest.mark.parametrize("c, x, y, args, pattern", [
    ((2, 3), (2, 3), (3, 2), {}, r"X is \[2, 3\] float32 but Y is \[3, 2\] float32"),
    ((3,), (2, 3), (2, 3), {}, r"C is \[3\] but X and Y are \[2, 3\]"),
    ((3,), (2, 3), (2, 3), {"broadcast_on_rows": 1}, r"one entry per row of X and Y \(\[2, 3\]\), got \[3\]"),
])
@pytest.mark.parametrize("device", DEVICES)
def test_where_errors(c, x, y, args, pattern, device):
    inputs = [np.ones(c, bool), np.ones(x, np.float32), np.ones(y, np.float32)]
    with pytest.raises((OpFailure, NetError), match=pattern):
        check_reference("Where", inputs, None, args, device=device)
    with pytest.raises((OpFailure, NetError), match="C is float32 \\[2\\], must be bool"):
        check_reference("Where", [np.ones(2, np.float32)] * 3, None, device=device)


# --- gradient makers ------------------------------------------------------------------------

def well_positive(x):
    return np.abs(x) + np.float32(0.5)


# (type, args, input transform): each registered gradient against central differences.
MAKERS = [
    ("Exp", {}, None),
    ("Log", {}, positive),
    ("Sqrt", {}, positive),
    ("Abs", {}, lambda x: away_from(x, [0.0])),
    ("Negative", {}, None),
    ("Neg", {}, None),
    ("Sqr", {}, None),
    ("Scale", {}, None),
    ("Scale", {"scale": -2.5}, None),
    ("Scale", {"scale": 0.0}, None),
    ("Clip", {"min": -1.0, "max": 0.5}, lambda x: away_from(x, [-1.0, 0.5])),
    ("Clip", {"min": 0.0}, lambda x: away_from(x, [0.0])),
    ("Clip", {}, None),
    ("Pow", {"exponent": 2.0}, None),
    ("Pow", {"exponent": 3.0}, None),
    ("Pow", {"exponent": 0.0}, None),
    ("Pow", {"exponent": -1.5}, well_positive),
    ("Pow", {"exponent": 0.5}, well_positive),
    ("Sinh", {}, None),
    ("Cosh", {}, None),
    ("Cbrt", {}, lambda x: np.where(x < 0, x - 0.5, x + 0.5).astype(np.float32)),  # off the cusp at 0
    ("Cube", {}, None),
    ("Reciprocal", {}, well_positive),
    ("Rsqrt", {}, well_positive),
]
MAKER_IDS = [f"{t}-{'-'.join(map(str, a.values())) or 'default'}" for t, a, _ in MAKERS]
small_arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=3),
                          elements=st.floats(-3, 3, width=32))


@pytest.mark.parametrize("op_type, args, transform", MAKERS, ids=MAKER_IDS)
@settings(max_examples=5, deadline=None)
@given(x=small_arrays)
def test_registered_gradient_matches_numeric(op_type, args, transform, x):
    x = transform(x) if transform else x
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


# In place the gradient reads Y (or, for Pow, recovers X^(e-1) from Y, exact for X > 0).
IN_PLACE = [("Exp", {}), ("Sqrt", {}), ("Negative", {}), ("Scale", {"scale": 1.5}),
            ("Clip", {"min": 0.7, "max": 1.6}), ("Pow", {"exponent": 2.5}), ("Pow", {"exponent": -1.5}),
            ("Pow", {"exponent": 1.0}), ("Pow", {"exponent": 0.0})]


@pytest.mark.parametrize("op_type, args", IN_PLACE, ids=[f"{t}-{a}" for t, a in IN_PLACE])
def test_in_place_gradient_matches_numeric(op_type, args):
    x = away_from(np.random.default_rng(9).uniform(0.5, 2, (2, 3)), [0.7, 1.6])
    report = check_op_gradient(make_op(op_type, ["X"], ["X"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("inputs, args, pattern", [
    (["X"], {"op": "Log"}, r"op 0 \(Log\).*needs input 0 'X' at version 0"),
    (["X"], {"op": "Sqr"}, r"op 0 \(Sqr\).*needs input 0 'X' at version 0"),
    (["X", "E"], {"op": "Pow"}, "exponent tensor cannot be differentiated in place"),
    (["E", "X"], {"op": "Pow"}, "exponent tensor cannot be differentiated in place"),
])
def test_in_place_gradients_that_need_x_are_refused(inputs, args, pattern):
    op_type = args.pop("op")
    op = make_op(op_type, inputs, ["X"], args)
    with pytest.raises(GradientError, match=pattern):
        GetBackwardPass([op], ["X"])


@pytest.mark.parametrize("x_shape, e_shape, args, axis", POW_CASES)
@pytest.mark.parametrize("input_to_check", [0, 1])
def test_pow_exponent_tensor_gradient(x_shape, e_shape, args, axis, input_to_check):
    rng = np.random.default_rng(10)
    x, e = rng.uniform(0.5, 2, x_shape), rng.uniform(-2, 2, e_shape)
    report = check_op_gradient(make_op("Pow", ["X", "E"], ["Y"], args), [x, e], input_to_check)
    assert report.ok, report


def test_pow_exponent_tensor_gradient_keeps_float32():
    rng = np.random.default_rng(11)
    x, e = rng.uniform(0.5, 2, (2, 3, 4)).astype(np.float32), rng.uniform(-2, 2, 3).astype(np.float32)
    args = {"broadcast": 1, "axis": 1}
    op = make_op("Pow", ["X", "E"], ["Y"], args)
    (y,) = run_op("Pow", [x, e], args)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    workspace = Workspace("_pow_float32")
    for name, value in [("X", x), ("E", e), ("Y", y), ("Y_grad", dy)]:
        workspace.FeedBlob(name, value)
    grad_ops, (dx_name, de_name) = GetGradientForOp(op, ["Y_grad"])
    workspace.RunOperatorsOnce(grad_ops)
    dx, de = workspace.FetchBlob(dx_name), workspace.FetchBlob(de_name)
    e_view = e.reshape(1, 3, 1)
    assert dx.dtype == de.dtype == np.float32
    np.testing.assert_allclose(dx, e_view * x ** (e_view - 1) * dy, rtol=1e-4)
    np.testing.assert_allclose(de, (np.log(x) * y * dy).sum(axis=(0, 2)), rtol=1e-4)


# --- Sinh, Cosh, Cbrt, Cube, Reciprocal, Rsqrt (CPU only): gradient ops as Caffe2 wires them --

# (forward type, gradient type, its inputs from (x, y, dy), input transform)
UNARY_GRADIENT_OPS = [
    ("Sinh", "SinhGradient", lambda x, y, dy: [dy, x], None),
    ("Cosh", "CoshGradient", lambda x, y, dy: [dy, x], None),
    ("Cbrt", "CbrtGradient", lambda x, y, dy: [dy, y], well_positive),
    ("Cube", "CubeGradient", lambda x, y, dy: [dy, x], None),
    ("Reciprocal", "ReciprocalGradient", lambda x, y, dy: [y, dy], well_positive),
    ("Rsqrt", "RsqrtGradient", lambda x, y, dy: [dy, y], well_positive),
]


@pytest.mark.parametrize("op_type, gradient_type, wire, transform", UNARY_GRADIENT_OPS,
                         ids=[g[1] for g in UNARY_GRADIENT_OPS])
def test_unary_gradient_ops_match_numeric(op_type, gradient_type, wire, transform):
    rng = np.random.default_rng(11)
    x = rng.uniform(-2, 2, (2, 3)).astype(np.float32)
    x = transform(x) if transform else x
    (y,) = run_op(op_type, [x])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    check_gradient_op(op_type, [x], gradient_type, wire(x, y, dy), {0: 0}, [dy])
    (grad,), _ = GetGradientForOp(make_op(op_type, ["X"], ["Y"]), ["Y_grad"])
    assert (grad.type, list(grad.input)) == (gradient_type, wire("X", "Y", "Y_grad"))


@pytest.mark.parametrize("op_type, gradient_type, wire, transform", UNARY_GRADIENT_OPS,
                         ids=[g[1] for g in UNARY_GRADIENT_OPS])
def test_unary_gradient_ops_check_their_inputs(op_type, gradient_type, wire, transform):
    x, dy = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(OpFailure, match=r"\[2, 3\] .*\[3, 2\]|\[3, 2\] .*\[2, 3\]"):
        run_op(gradient_type, wire(x, x, dy))
    value = next(n for n in wire("X", "Y", "dY") if n != "dY")
    with pytest.raises(OpFailure, match=rf"{value} is int32 \[2, 3\], must be a float tensor"):
        run_op(gradient_type, wire(x.astype(np.int32), x.astype(np.int32), x))
    assert infer(gradient_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    assert infer(gradient_type, [None, (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"\[2, 3\].*\[3\]"):
        infer(gradient_type, [(2, 3), (3,)])


def test_sign_has_no_gradient():
    x = np.array([-2.0, 0.0, 3.5], np.float32)
    (y,) = check_reference("Sign", [x], np.sign)
    np.testing.assert_array_equal(y, [-1, 0, 1])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("Sign", ["X"], ["Y"]), ["Y_grad"])


BITWISE = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor}


@pytest.mark.parametrize("op_type", BITWISE)
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("a_shape, b_shape, args, axis", [
    ((2, 3), (2, 3), {}, None), ((2, 3, 4), (4,), {}, None), ((2, 1), (1, 5), {}, None),
    ((2, 3, 4), (3,), {"broadcast": 1, "axis": 1}, 1),
])
def test_bitwise_ops(op_type, dtype, a_shape, b_shape, args, axis):
    rng = np.random.default_rng(12)
    a, b = (rng.integers(0, 100, s).astype(dtype) for s in (a_shape, b_shape))
    b_view = b if axis is None else b.reshape(b.shape + (1,) * (len(a_shape) - axis - len(b_shape)))
    (c,) = check_reference(op_type, [a, b], lambda a, b, **_: BITWISE[op_type](a, b_view), args)
    assert c.dtype == dtype


@pytest.mark.parametrize("op_type", BITWISE)
def test_bitwise_errors_and_inference(op_type):
    with pytest.raises(OpFailure, match=r"A is float32 \[3\], must be an integer or bool tensor"):
        run_op(op_type, [np.ones(3, np.float32), np.ones(3, np.float32)])
    with pytest.raises(OpFailure, match="int32.*int64|int64.*int32"):
        run_op(op_type, [np.ones(3, np.int32), np.ones(3, np.int64)])
    assert infer(op_type, [(2, 3), (3,)], dtype="int64") == [TensorInfo((2, 3), "int64")]
    assert infer(op_type, [(2, 3), None], dtype="int32", broadcast=1) == [TensorInfo((2, 3), "int32")]
    assert infer(op_type, [None, (3,)], dtype="int32") == [None]
    with pytest.raises(ShapeError, match="must be an integer or bool tensor"):
        infer(op_type, [(2,), (2,)])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op(op_type, ["A", "B"], ["C"]), ["C_grad"])


# --- shape inference ---------------------------------------------------------------------------

def test_every_op_of_the_family_has_a_rule():
    family = [name for name, schema in all_schemas().items()
              if schema.family in ("elementwise", "arithmetic")]
    assert len({all_schemas()[name].type for name in family}) == 53
    assert all_schemas()["Neg"] is all_schemas()["Negative"]
    assert [name for name in family if all_schemas()[name].inference == "none"] == []


@pytest.mark.parametrize("op_type", ["Exp", "Log", "Sqrt", "Abs", "Sqr", "Clip", "Scale", "Sinh", "Cosh",
                                     "Cbrt", "Cube", "Reciprocal", "Rsqrt", "Sign"])
def test_float_unary_ops(op_type):
    assert infer(op_type, [(2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None]) == [None]
    with pytest.raises(ShapeError, match="int32"):
        infer(op_type, [(2, 3)], dtype="int32")


@pytest.mark.parametrize("op_type", ["Negative", "Neg"])
def test_numeric_unary_ops(op_type):
    assert infer(op_type, [(4,)], dtype="int64") == [TensorInfo((4,), "int64")]


@pytest.mark.parametrize("op_type", ["AbsGradient", "ClipGradient"])
def test_unary_gradients(op_type):
    assert infer(op_type, [(2, 5), (2, 5)]) == [TensorInfo((2, 5))]


def test_pow_with_exponent_arg():
    (out,) = infer("Pow", [(2, 3)], exponent=2.0)
    assert out == TensorInfo(np.power(np.zeros((2, 3), np.float32), 2.0).shape)
    with pytest.raises(ShapeError, match="int32"):
        infer("Pow", [(2, 3)], dtype="int32", exponent=2.0)


@pytest.mark.parametrize("x, e, args", [((2, 3), (2, 3), {}), ((2, 3, 4), (4,), {"broadcast": 1}),
                                         ((2, 3, 4), (3, 1), {"broadcast": 1, "axis": 1}),
                                         ((2, 3), (1,), {"broadcast": 1})])
def test_pow_with_exponent_tensor(x, e, args):
    (out,) = infer("Pow", [x, e], **args)
    assert out == TensorInfo(x)
    assert infer("Pow", [None, e]) == [TensorInfo(e)]


def test_infer_pow_errors():
    with pytest.raises(ShapeError, match="got neither"):
        infer("Pow", [(2, 3)])
    with pytest.raises(ShapeError, match="got both"):
        infer("Pow", [(2, 3), (3,)], exponent=2.0)
    with pytest.raises(ShapeError, match=r"X is \[2, 3\] and exponent is \[4\]"):
        infer("Pow", [(2, 3), (4,)])
    # Caffe2's Pow has no NumPy-style broadcasting: shapes that broadcast still differ.
    with pytest.raises(ShapeError, match=r"without broadcast=1 the shapes must be equal"):
        infer("Pow", [(2, 3), (3,)])
    with pytest.raises(ShapeError, match=r"exponent's dim 0 \(2\) must equal X's dim 1 \(3\)"):
        infer("Pow", [(2, 3), (2,)], broadcast=1)
    assert infer("Pow", [(2, 3), (2,)], broadcast=1, axis=0) == [TensorInfo((2, 3))]


def test_infer_not():
    assert infer("Not", [(3, 2)], dtype="bool") == [TensorInfo((3, 2), "bool")]
    assert infer("Not", [None]) == [None]
    with pytest.raises(ShapeError, match=r"X is float32 \[3, 2\], must be bool"):
        infer("Not", [(3, 2)])


@pytest.mark.parametrize("op_type, reference", LOGICAL, ids=[c[0] for c in LOGICAL])
@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 5))])
def test_logical_ops_broadcast(op_type, reference, a, b):
    expected = reference(np.zeros(a, bool), np.zeros(b, bool))
    assert infer(op_type, [a, b], dtype="bool") == [TensorInfo(expected.shape, expected.dtype.name)]


@pytest.mark.parametrize("op_type", ["And", "Or", "Xor"])
def test_logical_ops_errors(op_type):
    with pytest.raises(ShapeError, match=r"B is int32 \[2\], must be bool"):
        infer(op_type, [TensorInfo((2,), "bool"), TensorInfo((2,), "int32")])
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer(op_type, [(2, 3), (2,)], dtype="bool")
    assert infer(op_type, [(2, 3), (2,)], dtype="bool", broadcast=1, axis=0) == [
        TensorInfo((2, 3), "bool")]


@pytest.mark.parametrize("op_type, reference", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), ((5, 1, 3), (4, 1)), ((), (2,))])
def test_comparisons_give_bool(op_type, reference, a, b):
    expected = reference(np.zeros(a, np.int64), np.zeros(b, np.int64))
    (out,) = infer(op_type, [a, b], dtype="int64")
    assert out == TensorInfo(np.shape(expected), np.asarray(expected).dtype.name)


@pytest.mark.parametrize("op_type", [name for name, _ in COMPARISONS])
def test_comparison_errors(op_type):
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer(op_type, [(2, 3), (4,)])
    with pytest.raises(ShapeError, match="A is float32 but B is int64"):
        infer(op_type, [TensorInfo((2,)), TensorInfo((2,), "int64")])
    with pytest.raises(ShapeError, match="must equal A's dim"):
        infer(op_type, [(2, 3), (2,)], broadcast=1)
    assert infer(op_type, [(2, 3), None]) == [None]


def test_infer_where():
    c, x = TensorInfo((2, 3), "bool"), TensorInfo((2, 3), "int32")
    expected = np.where(np.zeros(c.shape, bool), np.zeros(x.shape, np.int32),
                        np.zeros(x.shape, np.int32))
    assert infer("Where", [c, x, x]) == [TensorInfo(expected.shape, expected.dtype.name)]
    assert infer("Where", [None, None, x]) == [x]
    assert infer("Where", [c, None, None]) == [None]


def test_infer_where_on_rows():
    c, x = TensorInfo((4,), "bool"), TensorInfo((4, 5))
    expected = np.where(np.zeros(4, bool)[:, None], np.zeros(x.shape), np.zeros(x.shape))
    assert infer("Where", [c, x, x], broadcast_on_rows=1) == [TensorInfo(expected.shape)]
    with pytest.raises(ShapeError, match=r"1-D with one entry per row of X and Y \(\[4, 5\]\)"):
        infer("Where", [TensorInfo((5,), "bool"), x, x], broadcast_on_rows=1)
    with pytest.raises(ShapeError, match="C is \\[4\\] but X and Y are \\[4, 5\\]"):
        infer("Where", [c, x, x])


def test_infer_where_errors():
    c = TensorInfo((2, 3), "bool")
    with pytest.raises(ShapeError, match=r"X is \[2, 3\] float32 but Y is \[2, 3\] float64"):
        infer("Where", [c, TensorInfo((2, 3)), TensorInfo((2, 3), "float64")])
    with pytest.raises(ShapeError, match=r"C is float32 \[2, 3\], must be bool"):
        infer("Where", [(2, 3), (2, 3), (2, 3)])


# --- CUDA against the CPU twin (gpu) ------------------------------------------------------------

SHAPES = [(1,), (7,), (3, 5, 4), (2, 3, 7, 11), (1 << 20,), (1000, 1025)]
CLIP = {"min": -0.5, "max": 0.7}


def normal(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def positive_values(shape):
    return RNG.uniform(0.01, 10, shape).astype(np.float32)


def away_from_zero(shape):
    x = normal(shape)
    return np.where(np.abs(x) < 1e-3, 0.5, x).astype(np.float32)


def clip_gradient_inputs(shape):
    y = run_op("Clip", [normal(shape)], CLIP)[0]  # many entries sit exactly on a bound
    return [y, normal(shape)]


# op type -> (inputs for a shape, args)
CASES = {
    "Exp": (lambda s: [normal(s) * 3], {}),
    "Log": (lambda s: [positive_values(s)], {}),
    "Sqrt": (lambda s: [positive_values(s)], {}),
    "Abs": (lambda s: [normal(s)], {}),
    "AbsGradient": (lambda s: [away_from_zero(s), normal(s)], {}),
    "Negative": (lambda s: [normal(s)], {}),
    "Neg": (lambda s: [normal(s)], {}),
    "Sqr": (lambda s: [normal(s)], {}),
    "Scale": (lambda s: [normal(s)], {"scale": -2.5}),
    "Clip": (lambda s: [normal(s)], CLIP),
    "ClipGradient": (clip_gradient_inputs, CLIP),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["Clip", "AbsGradient", "Exp", "Log", "Sqrt"])
def test_special_values_match_cpu(op_type):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -2.0, 3.0], np.float32)
    inputs = [x, normal(x.shape)] if op_type == "AbsGradient" else [x]
    with np.errstate(all="ignore"):
        check_devices(op_type, inputs, CLIP if op_type == "Clip" else {})


@pytest.mark.gpu
@pytest.mark.slow
def test_clip_defaults_leave_every_float_alone():
    check_devices("Clip", [normal((5, 7)) * 1e30], {})


@pytest.mark.gpu
@pytest.mark.slow
def test_integer_input_is_refused_clearly():
    from pycaffe2.devices import cuda
    from pycaffe2.operators import CUDA_KERNELS, load_kernels
    load_kernels()
    with pytest.raises(ShapeError, match="^the CUDA kernel takes float32, got int32$"):
        CUDA_KERNELS["Negative"].function(np.arange(4, dtype=np.int32))
    assert cuda.unavailable_reason() is None


# --- comparisons, logic, Pow, Not and Where: broadcast strided kernels, bool outputs ----------

# (A shape, B shape, args): NumPy-style, legacy, 0-d, empty, and more elements than the
# emulator's 64-block grid covers in one pass.
CUDA_BINARY_SHAPES = [
    ((3, 4), (3, 4), {}),
    ((2, 3, 5), (5,), {}),
    ((4, 1), (1, 5), {}),
    ((), (2, 3), {}),
    ((), (), {}),
    ((0, 3), (3,), {}),
    ((2, 3, 4), (3,), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4), (3, 4), {"broadcast": 1}),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis_str": "C"}),
    ((2, 3, 4, 5), (5,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3), (1, 1), {"broadcast": 1}),
    ((300, 257), (300, 257), {}),
    ((300, 7, 9), (7, 1), {}),
]
COMPARE_TYPES = ["EQ", "LT", "GT", "LE", "GE"]


def small_values(shape, dtype):
    """Values from a small range, so equal pairs are common (bools: random)."""
    return (RNG.integers(-2, 3, shape) if dtype != np.bool_ else RNG.random(shape) > 0.5).astype(dtype)


def check_bool_output(op_type, inputs, args):
    (out,) = check_devices(op_type, inputs, args)
    assert out.dtype == np.bool_


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", CUDA_BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_match_cpu(op_type, a_shape, b_shape, args):
    a, b = small_values(a_shape, np.float32), small_values(b_shape, np.float32)
    check_bool_output(op_type, [a, b], args)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_of_other_types_match_cpu(op_type, dtype):
    a, b = small_values((3, 5, 4), dtype), small_values((5, 1), dtype)
    check_bool_output(op_type, [a, b], {})
    check_bool_output(op_type, [a, b[:, 0]], {"broadcast": 1, "axis": 1})


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_of_special_values_match_cpu(op_type):
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    check_bool_output(op_type, [values[:, None], values], {})  # every pair


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("a_shape, b_shape, args", CUDA_BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op_type", ["And", "Or"])
def test_logic_ops_match_cpu(op_type, a_shape, b_shape, args):
    a, b = small_values(a_shape, np.bool_), small_values(b_shape, np.bool_)
    check_bool_output(op_type, [a, b], args)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5, 4), (300, 257)], ids=str)
def test_not_matches_cpu(shape):
    check_bool_output("Not", [small_values(shape, np.bool_)], {})


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [(), (0, 3), (7,), (3, 5, 4), (300, 257)], ids=str)
@pytest.mark.parametrize("exponent", [2.0, -1.5, 0.0, 0.5, 3.0])
def test_pow_with_the_arg_matches_cpu(exponent, shape):
    x = positive_values(shape) if exponent % 1 else normal(shape)
    check_devices("Pow", [x], {"exponent": exponent}, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("x_shape, e_shape, args", [
    ((), (), {}), ((0, 3), (0, 3), {}), ((2, 3), (2, 3), {}), ((300, 257), (300, 257), {}),
    ((2, 3, 4), (4,), {"broadcast": 1}),
    ((2, 3, 4), (3, 4), {"broadcast": 1}),
    ((2, 3, 4, 5), (3, 1), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4, 5), (4,), {"broadcast": 1, "axis_str": "H"}),
    ((2, 3, 4, 5), (5,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3), (1,), {"broadcast": 1}),
    ((300, 7, 9), (7,), {"broadcast": 1, "axis": 1}),
], ids=str)
def test_pow_with_an_exponent_tensor_matches_cpu(x_shape, e_shape, args):
    x, e = positive_values(x_shape), normal(e_shape)
    check_devices("Pow", [x, e], args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.slow
def test_pow_special_values_match_cpu():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -2.0, 2.0, 1.0], np.float32)
    with np.errstate(all="ignore"):
        for exponent in [0.0, -1.0, 0.5, 3.0, np.nan]:
            check_devices("Pow", [x], {"exponent": float(exponent)})
        check_devices("Pow", [x, x[::-1].copy()], {})
        for exponent in [0.5, 2.0, -1.0]:  # one exponent for all: NumPy's fast paths
            check_devices("Pow", [x, np.array([exponent], np.float32)], {"broadcast": 1})
        check_devices("Pow", [x, np.full(x.shape, 0.5, np.float32)], {})


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [(), (0, 2), (7,), (3, 5, 4), (300, 257)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_])
def test_where_matches_cpu(dtype, shape):
    c = small_values(shape, np.bool_)
    (z,) = check_devices("Where", [c, small_values(shape, dtype), small_values(shape, dtype)], {})
    assert z.dtype == dtype


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 0), (4, 2, 3), (300, 57)], ids=str)
def test_where_on_rows_matches_cpu(shape):
    c = small_values(shape[:1], np.bool_)
    check_devices("Where", [c, normal(shape), normal(shape)], {"broadcast_on_rows": 1})


DEVICE_CHECKED.update(COMPARE_TYPES + ["And", "Or", "Not", "Pow", "Where"])


def run_on_cuda(op_type, inputs, args):
    return run_op(op_type, inputs, args, device_option=CUDA)


# Errors the device-parametrized tests above do not cover; the rest get the CPU's error on CUDA too.
@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args, pattern", [
    ("LT", [np.ones(2, np.float32), np.ones(2, np.int64)], {}, "A is float32 but B is int64"),
    ("Not", [np.ones(3, np.int32)], {}, r"\(Not\) failed: X is int32 \[3\], must be bool"),
    ("GE", [np.ones(3, np.uint8)] * 2, {}, r"\(GE\) failed: .*the CUDA kernel takes float32, int32, int64 or bool, got uint8"),
    ("Where", [np.ones(2, bool), np.ones(2, np.float32), np.ones(2, np.int32)], {},
     "X is \\[2\\] float32 but Y is \\[2\\] int32"),
])
def test_bad_inputs_get_the_cpu_error_on_cuda(op_type, inputs, args, pattern):
    runs = [run_on_cuda] if "CUDA kernel" in pattern else [run_op, run_on_cuda]
    for run in runs:
        with pytest.raises((OpFailure, NetError), match=pattern):
            run(op_type, inputs, args)


# --- ONNX's forms: Pow, Where with numpy_broadcast=1, Clip with bound tensors ----------------

@pytest.mark.parametrize("x, e", [
    (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.0, 2.0, 0.5], np.float32)),
    (np.arange(3, dtype=np.float32), np.array(2.0, np.float32)),
    (np.arange(4, dtype=np.int64), np.array([1.5, 2.0, 3.0, 0.5], np.float32)),
    (np.arange(1, 4, dtype=np.float32), np.array([4, 5, 6], np.uint64)),
    (np.arange(1, 4, dtype=np.int32), np.array([[4], [5]], np.int64)),
    (np.array([-3, 2], np.int8), np.array([3, 7], np.int8)),
])
def test_pow_numpy_broadcast(x, e):
    def reference(x, e, **_):  # in float64 (exact for these values), then X's type
        return (x.astype(np.float64) ** e.astype(np.float64)).astype(x.dtype)
    (y,) = check_reference("Pow", [x, e], reference, {"numpy_broadcast": 1})
    assert y.dtype == x.dtype


def test_pow_numpy_broadcast_errors():
    args = {"numpy_broadcast": 1}
    with pytest.raises(OpFailure, match=r"X is \[2\] and exponent is \[3\]: dims 2 and 3 do not broadcast"):
        run_op("Pow", [np.ones(2, np.float32), np.ones(3, np.float32)], args)
    with pytest.raises(OpFailure, match="no negative integer exponent"):
        run_op("Pow", [np.ones(2, np.int32), np.array([1, -1], np.int32)], args)
    with pytest.raises(OpFailure, match=r"exponent is bool \[2\], must be a numeric tensor"):
        run_op("Pow", [np.ones(2, np.int32), np.ones(2, bool)], args)
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("Pow", [(2,), (3,)], **args)
    assert infer("Pow", [TensorInfo((2, 1), "int32"), TensorInfo((3,), "float32")], **args) == [
        TensorInfo((2, 3), "int32")]
    assert infer("Pow", [None, (3,)], **args) == [None]
    with pytest.raises(GradientError, match="numpy_broadcast=1 has no gradient"):
        GetGradientForOp(make_op("Pow", ["X", "E"], ["Y"], args), ["Y_grad"])


@pytest.mark.parametrize("c, x, y", [((2, 3), (2, 3), (2, 3)), ((3,), (2, 1), ()), ((2, 1), (1,), (1, 4))])
def test_where_numpy_broadcast(c, x, y):
    rng = np.random.default_rng(11)
    inputs = [rng.random(c) > 0.5, rng.standard_normal(x).astype(np.float32),
              rng.standard_normal(y).astype(np.float32)]
    (z,) = check_reference("Where", inputs, lambda c, x, y, **_: np.where(c, x, y), {"numpy_broadcast": 1})
    assert z.dtype == np.float32
    assert infer("Where", [TensorInfo(c, "bool"), x, y], numpy_broadcast=1) == [TensorInfo(z.shape)]


def test_where_numpy_broadcast_errors():
    args = {"numpy_broadcast": 1}
    with pytest.raises(OpFailure, match=r"C and X is \[2, 3\] and Y is \[2\]: dims 3 and 2 do not broadcast"):
        run_op("Where", [np.ones((2, 3), bool), np.ones(3), np.ones(2)], args)
    with pytest.raises(ShapeError, match="X is float32 but Y is int64"):
        infer("Where", [TensorInfo((2,), "bool"), TensorInfo((2,)), TensorInfo((2,), "int64")], **args)
    assert infer("Where", [None, (2,), (2,)], **args) == [None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int64, np.uint16])
@pytest.mark.parametrize("bounds", [(2, 6), (3,), (5, 1)])
def test_clip_with_bound_tensors(dtype, bounds):
    x = np.arange(8).astype(dtype)
    tensors = [np.array(b, dtype) for b in bounds]

    def reference(x, *b, **_):  # min first, then max (which wins when min > max)
        y = np.where(x < b[0], b[0], x)
        return y if len(b) == 1 else np.where(y > b[1], b[1], y)
    (y,) = check_reference("Clip", [x, *tensors], reference)
    assert y.dtype == dtype


def test_clip_with_bound_tensors_errors():
    with pytest.raises(OpFailure, match="X is float32 but min is float64"):
        run_op("Clip", [np.ones(2, np.float32), np.array(0.0)])
    with pytest.raises(OpFailure, match=r"max is \[2\]: a bound has one element"):
        run_op("Clip", [np.ones(2, np.float32), np.float32(0), np.ones(2, np.float32)])
    with pytest.raises(ShapeError, match=r"X is bool \[2\], must be a numeric tensor"):
        infer("Clip", [(2,), ()], dtype="bool")
    assert infer("Clip", [(2, 3), (), (1,)], dtype="int8") == [TensorInfo((2, 3), "int8")]
    with pytest.raises(GradientError, match="bound tensors has no gradient"):
        GetGradientForOp(make_op("Clip", ["X", "lo"], ["Y"]), ["Y_grad"])


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args", [
    ("Pow", [np.ones(2, np.float32), np.ones(2, np.float32)], {"numpy_broadcast": 1}),
    ("Where", [np.ones(2, bool), np.ones(2, np.float32), np.ones(2, np.float32)], {"numpy_broadcast": 1}),
    ("Clip", [np.ones(2, np.float32), np.float32(0)], {}),
])
def test_cuda_refuses_the_onnx_forms(op_type, inputs, args):
    with pytest.raises((OpFailure, NetError), match="run(s)? on the CPU"):
        check_reference(op_type, inputs, None, args, device="cuda")
