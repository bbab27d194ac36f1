"""Activation kernels (NumPy). Gradient kernels take Y where the forward op
can run in place, matching their schemas. All of them also run on CUDA
(activation.cu, float32), except Gelu and ReluN (CPU only)."""
from __future__ import annotations

import functools
import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.nn import constant_row
from pycaffe2.operators.registry import gradient_op, register_cpu, register_cuda
from pycaffe2.schema import get_schema
from pycaffe2.schema.inference import same_shape, same_sizes
from pycaffe2.schema.inference.activation import float_dtypes, prelu_slope

_ERF = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math's is exact to double precision
_GELU_K = math.sqrt(2 / math.pi)  # the tanh approximation's constants
_GELU_C = 0.044715


def _paired(op_type: str):
    """A gradient kernel behind the schema's check that its inputs pair element by
    element (NumPy would broadcast a wrong dY silently); each is seen in the first's shape."""
    names = [spec.name for spec in get_schema(op_type).inputs]

    def wrap(kernel):
        @functools.wraps(kernel)
        def checked(*inputs, **args):
            shape = inputs[0].shape
            if any(value.shape != shape for value in inputs[1:]):  # the common case costs one compare
                same_sizes({name: value.shape for name, value in zip(names, inputs)})
                inputs = [cuda.reshape(value, shape) for value in inputs]
            return kernel(*inputs, **args)
        return checked
    return wrap


def _slope_view(slope, x, order):
    """Slope shaped to broadcast over X's channel axis (checked by the schema's prelu_slope)."""
    channels, _ = prelu_slope(x.shape, slope.shape, order)
    if channels == 1:
        return slope.reshape(())
    shape = [1] * x.ndim
    shape[1 if order == "NCHW" else -1] = channels
    return slope.reshape(shape)


_ROW = 8192  # elements per row of the zero block Relu compares against


@register_cpu("Relu")
def relu(x):
    if x.dtype.kind != "f" or x.size < _ROW:  # small: one call costs less than the split
        return np.maximum(x, 0)
    # NumPy's maximum against a scalar runs an unvectorized loop (2.5x slower here);
    # against rows of a contiguous block of zeros it vectorizes. NaN still propagates.
    flat, y = x.reshape(-1), np.empty(x.shape, x.dtype)
    out, whole, zeros = y.reshape(-1), x.size - x.size % _ROW, constant_row(0, _ROW, x.dtype)
    np.maximum(flat[:whole].reshape(-1, _ROW), zeros, out=out[:whole].reshape(-1, _ROW))
    np.maximum(flat[whole:], zeros[:x.size - whole], out=out[whole:])
    return y


@register_cpu("ReluGradient")
@_paired("ReluGradient")
def relu_gradient(y, dy):
    # dY times the mask: 5x faster than np.where's select, the same but that an
    # infinite dY where Y <= 0 gives NaN instead of 0 (and a negative dY gives -0.0).
    return np.multiply(dy, y > 0)


@register_cpu("LeakyRelu")
def leaky_relu(x, *, alpha):
    return np.where(x >= 0, x, x * x.dtype.type(alpha))


@register_cpu("LeakyReluGradient")
@_paired("LeakyReluGradient")
def leaky_relu_gradient(y, dy, *, alpha):
    return np.where(y >= 0, dy, dy * dy.dtype.type(alpha))


@register_cpu("PRelu")
def prelu(x, slope, *, order):
    return np.where(x >= 0, x, x * _slope_view(slope, x, order)).astype(x.dtype, copy=False)


@register_cpu("PReluGradient")
def prelu_gradient(y, dy, x, slope, *, order):
    same_shape(dy.shape, x.shape, ("dY", "X"))
    dx = np.where(x >= 0, dy, dy * _slope_view(slope, x, order)).astype(x.dtype, copy=False)
    contribution = np.where(x >= 0, 0, x * dy)
    if slope.size == 1:
        dslope = np.array([contribution.sum()], dtype=slope.dtype)
    else:
        axis = 1 if order == "NCHW" else x.ndim - 1
        dslope = contribution.sum(axis=tuple(a for a in range(x.ndim) if a != axis)).astype(slope.dtype)
    return dx, dslope.reshape(slope.shape)


@register_cpu("Sigmoid")
def sigmoid(x):
    # exp of -|x| never overflows; the two halves recombine to 1/(1+exp(-x)).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@register_cpu("SigmoidGradient")
@_paired("SigmoidGradient")
def sigmoid_gradient(y, dy):
    return dy * y * (1 - y)


@register_cpu("Tanh")
def tanh(x):
    return np.tanh(x)


@register_cpu("TanhGradient")
@_paired("TanhGradient")
def tanh_gradient(y, dy):
    return dy * (1 - y * y)


@register_cpu("Elu")
def elu(x, *, alpha):
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


@register_cpu("EluGradient")
@_paired("EluGradient")
def elu_gradient(y, dy, *, alpha):
    return np.where(y > 0, dy, dy * (y + dy.dtype.type(alpha)))


@register_cpu("Selu")
def selu(x, *, alpha, scale):
    negative = x.dtype.type(alpha) * np.expm1(np.minimum(x, 0))
    return x.dtype.type(scale) * np.where(x > 0, x, negative)


@register_cpu("SeluGradient")
@_paired("SeluGradient")
def selu_gradient(y, dy, *, alpha, scale):
    scale = dy.dtype.type(scale)
    return np.where(y > 0, scale * dy, dy * (y + scale * dy.dtype.type(alpha)))


@register_cpu("Softplus")
def softplus(x):
    return np.logaddexp(x, x.dtype.type(0)).astype(x.dtype, copy=False)


@register_cpu("SoftplusGradient")
@_paired("SoftplusGradient")
def softplus_gradient(y, dy):
    return dy * -np.expm1(-y)


@register_cpu("Softsign")
def softsign(x):
    return x / (1 + np.abs(x))


@register_cpu("SoftsignGradient")
@_paired("SoftsignGradient")
def softsign_gradient(x, dy):
    return dy / np.square(1 + np.abs(x))


@register_cpu("Swish")
def swish(x, *, alpha):
    if alpha == 1.0:
        return x * sigmoid(x)
    return np.asarray(x * sigmoid(x * x.dtype.type(alpha)), dtype=x.dtype)


@register_cpu("SwishGradient")
@_paired("SwishGradient")
def swish_gradient(x, y, dy, *, alpha):
    if alpha == 1.0:
        return dy * (y + sigmoid(x) * (1 - y))
    s = sigmoid(x * x.dtype.type(alpha))
    return np.asarray(dy * (s + x.dtype.type(alpha) * y * (1 - s)), dtype=dy.dtype)


@register_cpu("HardSigmoid")
def hard_sigmoid(x, *, alpha, beta):
    float_dtypes([x.dtype.name])
    t = x.dtype.type
    return np.clip(x * t(alpha) + t(beta), t(0), t(1))


@register_cpu("HardSigmoidGradient")
@_paired("HardSigmoidGradient")
def hard_sigmoid_gradient(y, dy, *, alpha):
    float_dtypes([y.dtype.name, dy.dtype.name])
    return np.where((y > 0) & (y < 1), dy * dy.dtype.type(alpha), dy.dtype.type(0))


# Gradient makers. As in Caffe2, ops meant to run in place take Y, not X, in their
# gradients (in place, X is gone once Y is written).
gradient_op("Relu", "O0 GO0")
gradient_op("LeakyRelu", "O0 GO0")
gradient_op("Sigmoid", "O0 GO0")
gradient_op("Tanh", "O0 GO0")
gradient_op("Elu", "O0 GO0")
gradient_op("Selu", "O0 GO0")
gradient_op("Softplus", "O0 GO0")
gradient_op("HardSigmoid", "O0 GO0")
gradient_op("PRelu", "O0 GO0 I0 I1", "GI0 GI1")
gradient_op("Softsign", "I0 GO0")
gradient_op("Swish", "I0 O0 GO0")


# CUDA launchers (activation.cu): (op type, kernel, float args after the arrays).
CUDA_ELEMENTWISE = [
    ("Relu", "relu", ()), ("ReluGradient", "relu_gradient", ()),
    ("LeakyRelu", "leaky_relu", ("alpha",)), ("LeakyReluGradient", "leaky_relu_gradient", ("alpha",)),
    ("Sigmoid", "sigmoid", ()), ("SigmoidGradient", "sigmoid_gradient", ()),
    ("Tanh", "tanh_forward", ()), ("TanhGradient", "tanh_gradient", ()),
    ("Elu", "elu", ("alpha",)), ("EluGradient", "elu_gradient", ("alpha",)),
    ("Softsign", "softsign", ()), ("SoftsignGradient", "softsign_gradient", ()),
    ("HardSigmoid", "hard_sigmoid", ("alpha", "beta")),
    ("HardSigmoidGradient", "hard_sigmoid_gradient", ("alpha",)),
    ("Selu", "selu", ("alpha", "scale")), ("SeluGradient", "selu_gradient", ("alpha", "scale")),
    ("Softplus", "softplus", ()), ("SoftplusGradient", "softplus_gradient", ()),
]
for _type, _kernel, _args in CUDA_ELEMENTWISE:
    _launcher = cuda.elementwise("activation.cu", _kernel, _args)
    register_cuda(_type, args=_args)(_paired(_type)(_launcher) if _type.endswith("Gradient") else _launcher)


def _swish_cuda(kernel: str):
    """activation.cu's Swish kernels have alpha 1; other alphas run on the CPU."""
    launcher = cuda.elementwise("activation.cu", kernel, ())

    def run(*inputs, alpha):
        if alpha != 1.0:
            raise ValueError(f"the CUDA {kernel} takes alpha 1 only, got {alpha}; it runs on the CPU")
        return launcher(*inputs)
    run.__name__ = kernel
    return run


register_cuda("Swish")(_swish_cuda("swish"))
register_cuda("SwishGradient")(_paired("SwishGradient")(_swish_cuda("swish_gradient")))


@register_cuda("PRelu")
def prelu_cuda(x, slope, *, order):
    x, slope = cuda.float32_inputs(x, slope)
    channels, inner = prelu_slope(x.shape, slope.shape, order)
    y = cuda.empty_like(x)
    cuda.launch("activation.cu", "prelu", y.size, x, slope, y, np.int64(channels), np.int64(inner),
                np.int64(y.size))
    return y


@register_cuda("PReluGradient")
def prelu_gradient_cuda(y, dy, x, slope, *, order):
    dy, x, slope = cuda.float32_inputs(dy, x, slope)
    same_shape(dy.shape, x.shape, ("dY", "X"))
    channels, inner = prelu_slope(x.shape, slope.shape, order)
    dx, dslope = cuda.empty_like(x), cuda.empty_like(slope)
    cuda.launch("activation.cu", "prelu_gradient_x", dx.size, x, slope, dy, dx, np.int64(channels),
                np.int64(inner), np.int64(dx.size))
    outer = x.size // (channels * inner) if x.size else 0
    cuda.launch_rows("activation.cu", "prelu_gradient_slope", channels, x, dy, dslope,
                     np.int64(channels), np.int64(inner), np.int64(outer))
    return dx, dslope


# --- Gelu, ReluN (CPU only) ------------------------------------------------------------------

def _float(x) -> None:
    float_dtypes([x.dtype.name])


def _gelu_tanh(x):
    return np.tanh(_GELU_K * (x + _GELU_C * x * x * x))


def _phi(x):
    """The standard normal CDF, in X's dtype."""
    return (0.5 * (1 + np.asarray(_ERF(x / math.sqrt(2)), np.float64))).astype(x.dtype)


@register_cpu("Gelu")
def gelu(x, *, fast_gelu):
    _float(x)
    if fast_gelu:
        return np.asarray(0.5 * x * (1 + _gelu_tanh(x)), dtype=x.dtype)
    return np.asarray(x * _phi(x), dtype=x.dtype)


@register_cpu("GeluGradient")
@_paired("GeluGradient")
def gelu_gradient(dy, x, *, fast_gelu):
    _float(x)
    if fast_gelu:
        t = _gelu_tanh(x)
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_K * (1 + 3 * _GELU_C * x * x)
    else:
        slope = _phi(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return np.asarray(dy * slope, dtype=dy.dtype)


gradient_op("Gelu", "GO0 I0")


@register_cpu("ReluN")
def relu_n(x, *, n):
    _float(x)
    return np.asarray(np.clip(x, 0, x.dtype.type(n)))


@register_cpu("ReluNGradient")
@_paired("ReluNGradient")
def relu_n_gradient(y, dy, *, n):
    # Caffe2's rule on Y: the clipped ends (Y = 0 or n) pass no gradient.
    return np.asarray(np.where((y > 0) & (y < y.dtype.type(n)), dy, 0), dtype=dy.dtype)


gradient_op("ReluN", "O0 GO0")
