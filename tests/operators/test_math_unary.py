"""Math family: each float op against a NumPy reference (on the CPU, and on CUDA where a
row takes `device`), each gradient op against numeric differentiation of its forward op
and the maker's wiring, Mod and Glu, inference and error rows, and the CUDA kernels
(math_unary.cu) against their CPU twins."""
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.operators.math_unary import erf
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

RNG = np.random.default_rng(0)


def uniform(low, high, shape=(3, 4), dtype=np.float32):
    return RNG.uniform(low, high, shape).astype(dtype)


def logit_reference(x, eps=1e-6):
    t, eps = x.dtype.type, np.float32(eps)  # an Argument's f is a float32
    z = np.clip(x, t(eps), t(1) - t(eps)).astype(np.float64)  # bounds of X's type, as in Caffe2
    return np.log(z / (1 - z))


# (type, args, reference, input range)
FLOAT_OPS = [
    ("Log1p", {}, np.log1p, (-0.9, 3)),
    ("Sin", {}, np.sin, (-4, 4)),
    ("Cos", {}, np.cos, (-4, 4)),
    ("Tan", {}, np.tan, (-1.2, 1.2)),
    ("Asin", {}, np.arcsin, (-0.95, 0.95)),
    ("Acos", {}, np.arccos, (-0.95, 0.95)),
    ("Atan", {}, np.arctan, (-5, 5)),
    ("Erf", {}, np.vectorize(math.erf), (-3, 3)),
    ("Floor", {}, np.floor, (-5, 5)),
    ("Ceil", {}, np.ceil, (-5, 5)),
    ("Logit", {}, logit_reference, (-0.2, 1.2)),
    ("Logit", {"eps": 0.1}, lambda x, eps: logit_reference(x, eps), (-0.2, 1.2)),
    ("ThresholdedRelu", {}, lambda x: np.where(x > 1, x, 0), (-3, 3)),
    ("ThresholdedRelu", {"alpha": -0.5}, lambda x, alpha: np.where(x > alpha, x, 0), (-3, 3)),
]
FLOAT_IDS = [f"{t}-{'-'.join(map(str, a.values())) or 'default'}" for t, a, _, _ in FLOAT_OPS]


@pytest.mark.parametrize("op_type, args, reference, bounds", FLOAT_OPS, ids=FLOAT_IDS)
@pytest.mark.parametrize("device", DEVICES)
def test_float_op_matches_reference(op_type, args, reference, bounds, device):
    x = uniform(*bounds)
    (y,) = check_reference(op_type, [x], reference, args, device=device)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type, args, reference, bounds", FLOAT_OPS, ids=FLOAT_IDS)
def test_float_op_keeps_float64_and_0d(op_type, args, reference, bounds):
    x = uniform(*bounds, dtype=np.float64)
    (y,) = check_reference(op_type, [x], reference, args, rtol=1e-10, atol=1e-12)
    assert y.dtype == np.float64
    (y0,) = run_op(op_type, [np.array(0.25, np.float32)], args)
    assert y0.shape == () and y0.dtype == np.float32


@pytest.mark.parametrize("op_type", ["Sin", "Erf", "Floor", "Logit", "ThresholdedRelu"])
@pytest.mark.parametrize("device", DEVICES)
def test_float_ops_reject_integers(op_type, device):
    with pytest.raises(OpFailure, match=rf"\({op_type}\) failed: X is int32 \[3\], must be a float tensor"):
        check_reference(op_type, [np.arange(3, dtype=np.int32)], None, device=device)


def test_erf_matches_math_erf_to_float64():
    x = np.concatenate([np.linspace(-7, 7, 1401), [0.0, 1.9999999, 2.0, 30.0, np.inf, -np.inf]])
    np.testing.assert_allclose(erf(x), [math.erf(v) for v in x], rtol=1e-14, atol=1e-15)
    assert np.isnan(erf(np.array([np.nan]))).all()


def test_asin_outside_its_domain_is_nan():
    (y,) = run_op("Asin", [np.array([2.0, -1.5], np.float32)])
    assert np.isnan(y).all()


# --- gradient ops -------------------------------------------------------------------------------

# (forward type, args, input range); each gradient op takes (X, dY), ThresholdedRelu's (Y, dY).
GRADIENT_CASES = [
    ("Log1p", {}, (-0.5, 2)), ("Sin", {}, (-3, 3)), ("Cos", {}, (-3, 3)), ("Tan", {}, (-1, 1)),
    ("Asin", {}, (-0.8, 0.8)), ("Acos", {}, (-0.8, 0.8)), ("Atan", {}, (-3, 3)), ("Erf", {}, (-2, 2)),
    ("Logit", {}, (0.05, 0.95)), ("Logit", {"eps": 0.2}, (0.05, 0.95)),
    ("ThresholdedRelu", {}, (-3, 3)), ("ThresholdedRelu", {"alpha": 0.5}, (-3, 3)),
]
GRADIENT_IDS = [f"{t}-{'-'.join(map(str, a.values())) or 'default'}" for t, a, _ in GRADIENT_CASES]


def off_kinks(x, op_type, args):
    """x moved away from the points where the op is not differentiable."""
    kinks = {"Logit": [args.get("eps", 1e-6), 1 - args.get("eps", 1e-6)],
             "ThresholdedRelu": [args.get("alpha", 1.0)]}.get(op_type, [])
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.05, k + 0.1, x)
    return x.astype(np.float32)


@pytest.mark.parametrize("op_type, args, bounds", GRADIENT_CASES, ids=GRADIENT_IDS)
def test_gradient_op_matches_numeric(op_type, args, bounds):
    x = off_kinks(uniform(*bounds, shape=(2, 3)), op_type, args)
    dy = RNG.standard_normal(x.shape).astype(np.float32)
    (y,) = run_op(op_type, [x], args)
    first = y if op_type == "ThresholdedRelu" else x
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [first, dy], {0: 0}, [dy], args)
    (grad,), _ = GetGradientForOp(make_op(op_type, ["X"], ["Y"], args), ["Y_grad"])
    wired = ["Y" if op_type == "ThresholdedRelu" else "X", "Y_grad"]
    assert (grad.type, list(grad.input), list(grad.output)) == (f"{op_type}Gradient", wired, ["X_grad"])


@pytest.mark.parametrize("op_type, args, bounds", GRADIENT_CASES, ids=GRADIENT_IDS)
def test_registered_gradient_matches_numeric(op_type, args, bounds):
    x = off_kinks(uniform(*bounds, shape=(3,), dtype=np.float64), op_type, args).astype(np.float64)
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


def test_logit_gradient_is_zero_where_the_forward_op_clamped():
    x = np.array([-0.5, 0.05, 0.5, 0.95, 1.5], np.float32)
    (dx,) = run_op("LogitGradient", [x, np.ones(5, np.float32)], {"eps": 0.1})
    np.testing.assert_allclose(dx, [0, 0, 4, 0, 0])


def test_thresholded_relu_gradient_follows_the_sign_of_y():
    y = np.array([-2.0, 0.0, 3.0], np.float32)
    (dx,) = check_reference("ThresholdedReluGradient", [y, np.full(3, 2.0, np.float32)],
                            lambda y, dy: dy * np.sign(y))
    np.testing.assert_array_equal(dx, [-2, 0, 2])


@pytest.mark.parametrize("op_type", ["Floor", "Ceil", "Glu"])
def test_ops_without_a_gradient(op_type):
    with pytest.raises(GradientError):
        GetGradientForOp(make_op(op_type, ["X"], ["Y"]), ["Y_grad"])
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("Mod", ["X"], ["Y"], {"divisor": 2}), ["Y_grad"])


@pytest.mark.parametrize("gradient_type", ["SinGradient", "LogitGradient", "ThresholdedReluGradient"])
@pytest.mark.parametrize("device", DEVICES)
def test_gradient_shape_mismatch(gradient_type, device):
    with pytest.raises((OpFailure, NetError), match=r"\[2, 3\] but dY is \[3\]: they must have the same shape"):
        check_reference(gradient_type, [np.ones((2, 3), np.float32), np.ones(3, np.float32)], None,
                        device=device)


# --- Mod, Glu -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("divisor", [3, -3, 1, 7])
@pytest.mark.parametrize("sign_follow_divisor", [0, 1])
def test_mod(dtype, divisor, sign_follow_divisor):
    data = RNG.integers(-20, 20, (3, 5)).astype(dtype)
    reference = (lambda d, **_: np.mod(d, divisor)) if sign_follow_divisor else (lambda d, **_: np.fmod(d, divisor))
    (y,) = check_reference("Mod", [data], reference,
                           {"divisor": divisor, "sign_follow_divisor": sign_follow_divisor})
    assert y.dtype == dtype


def test_mod_with_int64_extremes():
    big = np.iinfo(np.int64)
    data = np.array([big.min, big.max, -1, 0], np.int64)
    (y,) = run_op("Mod", [data], {"divisor": int(big.max), "sign_follow_divisor": 1})
    np.testing.assert_array_equal(y, np.mod(data, big.max))


@pytest.mark.parametrize("inputs, args, pattern", [
    ([np.ones(3, np.float32)], {"divisor": 2}, r"data is float32 \[3\], must be an int32 or int64 tensor"),
    ([np.ones(3, np.int32)], {}, "divisor must not be 0"),
])
def test_mod_errors(inputs, args, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Mod", inputs, args)
    with pytest.raises(ShapeError, match=pattern):
        infer("Mod", [inputs[0].shape], dtype=inputs[0].dtype.name, **args)


def glu_reference(x, dim=-1):
    a, b = np.split(x, 2, axis=dim)
    return a / (1 + np.exp(-b))


@pytest.mark.parametrize("shape, dim", [((2, 4), -1), ((4, 3), 0), ((2, 6, 3), 1), ((6,), 0)])
def test_glu(shape, dim):
    x = uniform(-4, 4, shape)
    (y,) = check_reference("Glu", [x], lambda x, **_: glu_reference(x, dim), {"dim": dim})
    assert y.dtype == np.float32


@pytest.mark.parametrize("shape, dim, pattern", [
    ((2, 3), -1, r"X's dim 1 \(3\) must be even"),
    ((2, 4), 2, r"dim 2 is out of range for X of rank 2"),
    ((), -1, r"dim -1 is out of range for X of rank 0"),
])
def test_glu_errors(shape, dim, pattern):
    with pytest.raises(OpFailure, match=pattern):
        run_op("Glu", [np.ones(shape, np.float32)], {"dim": dim})
    with pytest.raises(ShapeError, match=pattern):
        infer("Glu", [shape], dim=dim)


# --- inference ------------------------------------------------------------------------------------

@pytest.mark.parametrize("op_type", ["Log1p", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Erf",
                                     "Floor", "Ceil", "Logit", "ThresholdedRelu"])
def test_infer_float_ops(op_type):
    assert infer(op_type, [(2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None]) == [None]
    with pytest.raises(ShapeError, match="int64"):
        infer(op_type, [(2, 3)], dtype="int64")


@pytest.mark.parametrize("op_type", ["Log1pGradient", "SinGradient", "CosGradient", "TanGradient",
                                     "AsinGradient", "AcosGradient", "AtanGradient", "ErfGradient",
                                     "LogitGradient", "ThresholdedReluGradient"])
def test_infer_gradient_ops(op_type):
    assert infer(op_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    assert infer(op_type, [None, (4,)]) == [TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"\[2, 3\].*\[3\]"):
        infer(op_type, [(2, 3), (3,)])


@pytest.mark.parametrize("eps", [0.5, 0.7])
def test_logit_eps_out_of_range(eps):
    with pytest.raises(ShapeError, match=r"eps must lie in \(0, 0.5\)"):
        infer("Logit", [(2,)], eps=eps)
    with pytest.raises((OpFailure, NetError), match=r"eps must lie in \(0, 0.5\)"):
        run_op("Logit", [np.ones(2, np.float32)], {"eps": eps})


def test_infer_mod_and_glu():
    assert infer("Mod", [(2, 3)], dtype="int64", divisor=4) == [TensorInfo((2, 3), "int64")]
    assert infer("Glu", [(2, 6, 3)], dim=1) == [TensorInfo((2, 3, 3))]
    assert infer("Glu", [None]) == [None]


# --- CUDA against the CPU twin (gpu) --------------------------------------------------------------

SHAPES = [(), (0, 3), (7,), (3, 5, 4), (300, 257)]


def cuda_inputs(op_type, shape, args):
    """Inputs for a CUDA row: forward ops get X, gradient ops (X or Y, dY)."""
    forward = op_type.removesuffix("Gradient")
    bounds = {"Asin": (-0.9, 0.9), "Acos": (-0.9, 0.9), "Log1p": (-0.9, 3), "Tan": (-1.2, 1.2),
              "Logit": (-0.1, 1.1)}.get(forward, (-3, 3))
    x = uniform(*bounds, shape=shape)
    if op_type == forward:
        return [x]
    first = run_op(forward, [x], args)[0] if forward == "ThresholdedRelu" else x
    return [first, uniform(-2, 2, shape=shape)]


CUDA_CASES = {op: {} for op in ["Log1p", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Erf", "Floor", "Ceil"]}
CUDA_CASES.update({f"{op}Gradient": {} for op in list(CUDA_CASES) if op not in ("Floor", "Ceil")})
CUDA_CASES.update({"Logit": {"eps": 0.01}, "LogitGradient": {"eps": 0.01},
                   "ThresholdedRelu": {"alpha": 0.3}, "ThresholdedReluGradient": {"alpha": 0.3}})
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(CUDA_CASES)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CUDA_CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    args = CUDA_CASES[op_type]
    check_devices(op_type, cuda_inputs(op_type, shape, args), args, atol=2e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type", ["Log1p", "Sin", "Erf", "Floor", "Ceil", "Logit", "ThresholdedRelu"])
def test_special_values_match_cpu(op_type):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -2.0, 3.0, 0.5], np.float32)
    with np.errstate(all="ignore"):
        check_devices(op_type, [x], CUDA_CASES[op_type])


# --- ONNX's Round, Asinh, Acosh, Atanh, IsInf, IsNaN and Mod with a divisor tensor (CPU) ------

def round_half_even(x):
    """Rounding with ties to even, from floor (independent of np.round)."""
    low = np.floor(x)
    frac = x - low
    even_low = np.fmod(low, 2) == 0
    return np.where(frac > 0.5, low + 1, np.where(frac < 0.5, low, np.where(even_low, low, low + 1)))


CPU_FLOAT_OPS = [
    ("Round", round_half_even, (-5, 5)),
    ("Asinh", lambda x: np.log(x + np.sqrt(x * x + 1)), (-4, 4)),
    ("Acosh", lambda x: np.log(x + np.sqrt(x * x - 1)), (1, 6)),
    ("Atanh", lambda x: 0.5 * np.log((1 + x) / (1 - x)), (-0.9, 0.9)),
]


@pytest.mark.parametrize("op_type, reference, bounds", CPU_FLOAT_OPS, ids=[c[0] for c in CPU_FLOAT_OPS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_float_op_matches_reference(op_type, reference, bounds, dtype):
    x = uniform(*bounds, dtype=dtype)
    (y,) = check_reference(op_type, [x], lambda x: reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    assert y.dtype == dtype


def test_round_ties_go_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 2.50001], np.float32)
    (y,) = run_op("Round", [x])
    np.testing.assert_array_equal(y, [0, 2, 2, -0.0, -2, -2, 0, 3])


@pytest.mark.parametrize("op_type, bounds", [("Asinh", (-3, 3)), ("Acosh", (1.2, 4)), ("Atanh", (-0.8, 0.8))])
def test_cpu_gradient_ops_match_numeric(op_type, bounds):
    x = uniform(*bounds, shape=(2, 3))
    dy = RNG.standard_normal(x.shape).astype(np.float32)
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [x, dy], {0: 0}, [dy])
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"]), [x.astype(np.float64)], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type", ["AsinhGradient", "AcoshGradient", "AtanhGradient"])
def test_infer_cpu_gradient_ops(op_type):
    assert infer(op_type, [(2, 3), (2, 3)]) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match=r"\[2, 3\].*\[3\]"):
        infer(op_type, [(2, 3), (3,)])


@pytest.mark.parametrize("op_type", ["Round", "Asinh", "Acosh", "Atanh", "IsInf", "IsNaN"])
def test_cpu_float_ops_reject_integers(op_type):
    with pytest.raises(OpFailure, match=r"X is int32 \[3\], must be a float tensor"):
        run_op(op_type, [np.arange(3, dtype=np.int32)])
    with pytest.raises(ShapeError, match=r"X is int32 \[3\], must be a float tensor"):
        infer(op_type, [(3,)], dtype="int32")


SPECIAL = np.array([-1.5, np.nan, np.inf, 0.0, -np.inf, np.inf])


@pytest.mark.parametrize("positive, negative", [(1, 1), (1, 0), (0, 1), (0, 0)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_is_inf(positive, negative, dtype):
    x = SPECIAL.astype(dtype)
    expected = (positive & (x == np.inf)) | (negative & (x == -np.inf))
    (y,) = check_reference("IsInf", [x], lambda x, **_: expected,
                           {"detect_positive": positive, "detect_negative": negative})
    assert y.dtype == np.bool_
    assert infer("IsInf", [(6,)], dtype=np.dtype(dtype).name) == [TensorInfo((6,), "bool")]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_is_nan(dtype):
    x = SPECIAL.astype(dtype)
    (y,) = check_reference("IsNaN", [x], lambda x: np.array([v != v for v in x.tolist()]))  # noqa: PLR0124
    assert y.dtype == np.bool_
    assert infer("IsNaN", [None]) == [None]


def test_predicates_have_no_gradient():
    for op_type in ("IsInf", "IsNaN", "Round"):
        with pytest.raises(GradientError):
            GetGradientForOp(make_op(op_type, ["X"], ["Y"]), ["Y_grad"])


def mod_reference(sign_follow_divisor):
    """Remainders from truncated or floored quotients, in float64 (exact for these values)."""
    def reference(a, b, **_):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        quotient = np.floor(a64 / b64) if sign_follow_divisor else np.trunc(a64 / b64)
        return (a64 - quotient * b64).astype(a.dtype)
    return reference


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64])
@pytest.mark.parametrize("sign_follow_divisor", [0, 1])
@pytest.mark.parametrize("shapes", [((6,), (6,)), ((3, 2, 5), (1,)), ((2, 1), (3,))], ids=str)
def test_mod_with_a_divisor_tensor(dtype, sign_follow_divisor, shapes):
    rng = np.random.default_rng(8)
    low = 0 if np.dtype(dtype).kind == "u" else -20
    data = rng.integers(low, 20, shapes[0]).astype(dtype)
    divisor = rng.integers(1, 7, shapes[1]).astype(dtype) * (1 if low == 0 else rng.choice([-1, 1], shapes[1]))
    divisor = divisor.astype(dtype)
    (y,) = check_reference("Mod", [data, divisor], mod_reference(sign_follow_divisor),
                           {"sign_follow_divisor": sign_follow_divisor})
    assert y.dtype == dtype and y.shape == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_mod_of_floats(dtype):
    a = np.array([-4.25, 7.5, 5.0, 4.25, -7.5, 8.0], dtype)
    b = np.array([2.0, -3.5, 8.0, -2.0, 3.5, 5.0], dtype)
    check_reference("Mod", [a, b], mod_reference(0), rtol=1e-3)
    check_reference("Mod", [a, b], mod_reference(1), {"sign_follow_divisor": 1}, rtol=1e-3)


def test_mod_divisor_tensor_errors():
    with pytest.raises(OpFailure, match="data is int32 but divisor is int64"):
        run_op("Mod", [np.ones(2, np.int32), np.ones(2, np.int64)])
    with pytest.raises(OpFailure, match=r"data is \[2\] and divisor is \[3\]: dims 2 and 3 do not broadcast"):
        run_op("Mod", [np.ones(2, np.int32), np.ones(3, np.int32)])
    with pytest.raises(ShapeError, match=r"data is bool \[2\], must be a numeric tensor"):
        infer("Mod", [(2,), (2,)], dtype="bool")
    assert infer("Mod", [(2, 1), (3,)], dtype="uint16") == [TensorInfo((2, 3), "uint16")]
    (y,) = run_op("Mod", [np.array([3, -3], np.int32), np.array([0, 0], np.int32)])
    np.testing.assert_array_equal(y, [0, 0])
