"""Math kernels (NumPy): Log1p, Sin, Cos, Tan, Asin, Acos, Atan, Erf, Logit,
Floor, Ceil and ThresholdedRelu with their gradient ops as Caffe2 wires them,
Mod (integer modulo; ONNX's Mod by a divisor tensor, any numeric type) and Glu,
and, CPU only, ONNX's Round, Asinh, Acosh, Atanh (with gradient ops), IsInf and
IsNaN. The float ops take float tensors only, as
Caffe2's typed dispatch does, and Caffe2's also run on CUDA (math_unary.cu, float32). NumPy
has no erf, so Erf sums its Maclaurin series near 0 and a continued fraction
for erfc further out, in float64. The checks are schema.inference.math_unary's and
schema.inference.elementwise's, shared with the rules.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.elementwise import (
    FLOAT,
    INTEGER,
    check_unary_gradient,
    require_dtype,
)
from pycaffe2.schema.inference.math_unary import (
    check_divisor,
    check_logit_eps,
    check_mod_tensors,
    glu_shape,
)

CU = "math_unary.cu"



# --- erf --------------------------------------------------------------------------------------

_SERIES_TERMS = 40    # |x| < 2: the largest term is ~11, the 40th below 1e-22
_FRACTION_DEPTH = 60  # |x| >= 2: the continued fraction has converged to float64 by then


def erf(x: np.ndarray) -> np.ndarray:
    """The Gauss error function, elementwise, to about float64 precision."""
    z = np.asarray(x, dtype=np.float64)
    a = np.abs(z)
    near = np.minimum(a, 2.0)  # every element through both branches, each on its safe range
    far = np.maximum(a, 2.0)
    # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    term, total, square = near.copy(), near.copy(), near * near
    for n in range(1, _SERIES_TERMS):
        term = -term * square / n
        total = total + term / (2 * n + 1)
    series = total * (2.0 / np.sqrt(np.pi))
    # erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))
    fraction = far.copy()
    for k in range(_FRACTION_DEPTH, 0, -1):
        fraction = far + (k / 2.0) / fraction
    complement = np.exp(-far * far) / (np.sqrt(np.pi) * fraction)
    with np.errstate(invalid="ignore"):
        magnitude = np.where(a < 2.0, series, 1.0 - complement)
    return np.where(np.isnan(z), z, np.copysign(magnitude, z))


# --- unary float ops and their gradient ops ---------------------------------------------------

def _logit(x, eps):
    t, eps = x.dtype.type, np.float32(eps)  # Caffe2 holds eps as a float
    z = np.maximum(np.minimum(x, t(1) - t(eps)), t(eps))
    return np.log(z / (t(1) - z))


UNARY = {
    "Log1p": np.log1p, "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Asin": np.arcsin,
    "Acos": np.arccos, "Atan": np.arctan, "Floor": np.floor, "Ceil": np.ceil,
    "Erf": lambda x: erf(x).astype(x.dtype),
}

# gradient op -> dX from (X, dY); every one takes the forward op's X first, as Caffe2's.
GRADIENTS = {
    "Log1p": lambda x, dy: dy / (1 + x),
    "Sin": lambda x, dy: dy * np.cos(x),
    "Cos": lambda x, dy: -dy * np.sin(x),
    "Tan": lambda x, dy: dy / np.square(np.cos(x)),
    "Asin": lambda x, dy: dy / np.sqrt(1 - x * x),
    "Acos": lambda x, dy: -dy / np.sqrt(1 - x * x),
    "Atan": lambda x, dy: dy / (1 + x * x),
    "Erf": lambda x, dy: x.dtype.type(2 / np.sqrt(np.pi)) * np.exp(-x * x) * dy,
}


def _register_unary(op_type: str, function) -> None:
    def kernel(x):
        require_dtype(x, FLOAT)
        with np.errstate(invalid="ignore", divide="ignore"):  # arcsin(2) is NaN, as in C
            return np.asarray(function(x))
    kernel.__name__ = op_type.lower()
    register_cpu(op_type)(kernel)


def _register_gradient(op_type: str, names: tuple, function) -> None:
    def kernel(first, second):
        check_unary_gradient(names, info_of(first), info_of(second))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(function(first, second), dtype=first.dtype)
    kernel.__name__ = f"{op_type.lower()}_gradient"
    register_cpu(f"{op_type}Gradient")(kernel)


for _type, _function in UNARY.items():
    _register_unary(_type, _function)
for _type, _function in GRADIENTS.items():
    _register_gradient(_type, ("X", "dY"), _function)
    gradient_op(_type, "I0 GO0")


@register_cpu("Logit")
def logit(x, *, eps):
    check_logit_eps(eps)
    require_dtype(x, FLOAT)
    return np.asarray(_logit(x, eps))


@register_cpu("LogitGradient")
def logit_gradient(x, dy, *, eps):
    check_unary_gradient(("X", "dY"), info_of(x), info_of(dy))
    t, eps = x.dtype.type, np.float32(eps)
    inside = (x >= t(eps)) & (x <= t(1) - t(eps))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(inside, dy / ((1 - x) * x), t(0)), dtype=x.dtype)


gradient_op("Logit", "I0 GO0")


@register_cpu("ThresholdedRelu")
def thresholded_relu(x, *, alpha):
    require_dtype(x, FLOAT)
    return np.asarray(np.where(x > x.dtype.type(alpha), x, x.dtype.type(0)))


@register_cpu("ThresholdedReluGradient")
def thresholded_relu_gradient(y, dy):
    check_unary_gradient(("Y", "dY"), info_of(y), info_of(dy))
    return np.asarray(dy * np.sign(y), dtype=y.dtype)


gradient_op("ThresholdedRelu", "O0 GO0")


# --- Mod, Glu ---------------------------------------------------------------------------------

@register_cpu("Mod", specialize=True)
def mod(*, divisor, sign_follow_divisor):
    remainder = np.mod if sign_follow_divisor else np.fmod

    def by_tensor(data, tensor):
        check_mod_tensors(info_of(data), info_of(tensor))
        with np.errstate(all="ignore"):  # x mod 0: NaN for floats, 0 for integers
            return np.asarray(remainder(data, tensor))

    def kernel(data, tensor=None):
        if tensor is not None:
            return by_tensor(data, tensor)
        check_divisor(divisor)
        require_dtype(data, INTEGER, "data")
        # In int64 as Caffe2 computes it, then back to data's type.
        with np.errstate(all="ignore"):
            return np.asarray(remainder(data.astype(np.int64), np.int64(divisor))).astype(data.dtype)
    return kernel


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


@register_cpu("Glu")
def glu(x, *, dim):
    require_dtype(x, FLOAT)
    shape = glu_shape(tuple(x.shape), dim)
    axis = dim % x.ndim
    half = shape[axis]
    first = np.take(x, np.arange(half), axis=axis)
    second = np.take(x, np.arange(half, 2 * half), axis=axis)
    return np.asarray(first * _sigmoid(second), dtype=x.dtype)


# --- ONNX's Round, Asinh, Acosh, Atanh, IsInf, IsNaN (CPU only) ------------------------------

CPU_UNARY = {"Round": np.round, "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh}
CPU_GRADIENTS = {
    "Asinh": lambda x, dy: dy / np.sqrt(x * x + 1),
    "Acosh": lambda x, dy: dy / np.sqrt(x * x - 1),
    "Atanh": lambda x, dy: dy / (1 - x * x),
}
for _type, _function in CPU_UNARY.items():
    _register_unary(_type, _function)
for _type, _function in CPU_GRADIENTS.items():
    _register_gradient(_type, ("X", "dY"), _function)
    gradient_op(_type, "I0 GO0")


@register_cpu("IsInf")
def is_inf(x, *, detect_positive, detect_negative):
    require_dtype(x, FLOAT)
    if detect_positive and detect_negative:
        return np.asarray(np.isinf(x))
    if detect_positive:
        return np.asarray(np.isposinf(x))
    if detect_negative:
        return np.asarray(np.isneginf(x))
    return np.zeros(x.shape, bool)


@register_cpu("IsNaN")
def is_nan(x):
    require_dtype(x, FLOAT)
    return np.asarray(np.isnan(x))


# --- CUDA launchers (math_unary.cu): (op type, kernel, float args after the arrays, CPU check) ------

def _checked(check, launcher):
    def run(*inputs, **args):
        check(*inputs, **args)
        return launcher(*inputs, **args)
    run.__name__ = launcher.__name__
    return run


def _float_check(x, **_):
    require_dtype(x, FLOAT)


def _gradient_check(names):
    def check(first, second, **_):
        check_unary_gradient(names, info_of(first), info_of(second))
    return check


def _logit_check(x, *, eps):
    check_logit_eps(eps)
    require_dtype(x, FLOAT)


CUDA_MATH = [(op, f"{op.lower()}_forward", (), _float_check) for op in UNARY] + [
    (f"{op}Gradient", f"{op.lower()}_gradient", (), _gradient_check(("X", "dY"))) for op in GRADIENTS
] + [
    ("Logit", "logit_forward", ("eps",), _logit_check),
    ("LogitGradient", "logit_gradient", ("eps",), _gradient_check(("X", "dY"))),
    ("ThresholdedRelu", "thresholded_relu", ("alpha",), _float_check),
    ("ThresholdedReluGradient", "thresholded_relu_gradient", (), _gradient_check(("Y", "dY"))),
]
for _type, _kernel, _args, _check in CUDA_MATH:
    _launcher = cuda.elementwise(CU, _kernel, _args)
    register_cuda(_type, args=_args)(_checked(_check, _launcher))
