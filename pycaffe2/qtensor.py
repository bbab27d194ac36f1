"""Caffe2's quantized tensor (Int8TensorCPU) as a blob value.

An Int8 blob holds `data` (uint8 for activations and weights, int32 for biases)
with the affine map real = scale * (q - zero_point). Caffe2's Python API shows
it the same way (`workspace.FetchInt8Blob` gives `Int8Tensor(data, scale,
zero_point)`), so fetching an Int8 blob gives this tuple.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

QMIN, QMAX = 0, 255  # uint8, as Caffe2's Int8 ops (QNNPACK) use


class Int8Tensor(NamedTuple):
    data: np.ndarray
    scale: float
    zero_point: int

    def copy(self) -> Int8Tensor:
        return Int8Tensor(np.array(self.data, copy=True), float(self.scale), int(self.zero_point))

    def checked_copy(self) -> Int8Tensor:
        """A private copy of a value a user feeds, or TypeError / ValueError when it is not
        what Caffe2's Int8TensorCPU holds: uint8 or int32 data, a finite positive float
        scale, an int32 zero point."""
        data = self.data
        if not isinstance(data, (np.ndarray, np.generic)) or data.dtype not in (np.uint8, np.int32):
            what = f"{data.dtype} array" if isinstance(data, (np.ndarray, np.generic)) else type(data).__name__
            raise TypeError(f"Int8Tensor data must be a uint8 (codes) or int32 (bias) array, not a {what}")
        try:
            scale, zero_point = float(self.scale), self.zero_point
        except (TypeError, ValueError):
            raise TypeError(f"Int8Tensor scale must be a float, not {self.scale!r:.40}") from None
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Int8Tensor scale must be finite and positive, not {scale}")
        if isinstance(zero_point, bool) or not isinstance(zero_point, (int, np.integer)) \
                or not -2 ** 31 <= int(zero_point) < 2 ** 31:
            raise TypeError(f"Int8Tensor zero_point must be an int32 integer, not {zero_point!r:.40}")
        return Int8Tensor(np.array(data, copy=True), scale, int(zero_point))

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The data's dtype (uint8 codes, int32 for biases): what shape inference shows."""
        return self.data.dtype

    def dequantize(self) -> np.ndarray:
        """The real values, float32."""
        return (np.float32(self.scale) * (self.data.astype(np.int32) - self.zero_point)).astype(np.float32)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> Int8Tensor:
    """uint8 codes of float `x`: round half to even of x / scale, plus zero_point, clamped to [0, 255]."""
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return Int8Tensor(np.clip(q, QMIN, QMAX).astype(np.uint8), float(scale), int(zero_point))


# QNNPACK's fixed-point arithmetic, element for element (its scalar reference code;
# the SIMD kernels are written to give the same bytes). Sums are int64 arrays; the
# scale of each formula is a float32, as QNNPACK takes it.

def _float_bits(value: float) -> int:
    return int(np.array(value, dtype=np.float32).view(np.uint32))


def _as_int32(acc) -> np.ndarray:
    """int64 values wrapped to int32, as QNNPACK's int32 accumulators hold them."""
    acc = np.asarray(acc, dtype=np.int64)
    return ((acc + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _rounding_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """x / 2**shift rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT)."""
    mask = (1 << shift) - 1
    remainder = (x & mask) - (x < 0)
    return (x >> shift) + (remainder > (mask >> 1))


def _clamped(n: np.ndarray, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    return (np.clip(n, qmin - zero_point, qmax - zero_point) + zero_point).astype(np.uint8)


def conv_scale(x_scale: float, w_scale: float, y_scale: float) -> np.float32:
    """The requantization scale of a convolution or FC, x_scale * w_scale / y_scale in float32."""
    return np.float32(np.float32(x_scale) * np.float32(w_scale)) / np.float32(y_scale)


def requantize(acc, scale: float, zero_point: int, qmin: int = QMIN, qmax: int = QMAX) -> np.ndarray:
    """uint8 of int32 sums `acc` times `scale`, plus zero_point, clamped to [qmin, qmax].
    For 2**-32 <= scale < 1 this is QNNPACK's q31 requantization of Conv and FC:
    multiplier = the 24-bit mantissa of scale << 7, a Q31 product rounding ties up,
    then a right shift rounding ties away from zero. QNNPACK refuses other scales;
    here they give the float64 product rounded half away from zero."""
    bits = _float_bits(scale)
    shift = 127 + 31 - 32 - (bits >> 23)
    acc = _as_int32(acc)
    if not 0 < float(scale) < 1 or not 0 <= shift < 32:
        return _clamped(_round_away(acc * np.float64(np.float32(scale))), zero_point, qmin, qmax)
    multiplier = ((bits & 0x007FFFFF) | 0x00800000) << 7
    q31 = (acc * multiplier + (1 << 30)) >> 31
    mask = (1 << shift) - 1
    remainder = (q31 & mask) - (acc < 0)
    n = (q31 >> shift) + (remainder > (mask >> 1))
    return _clamped(n, zero_point, qmin, qmax)


def _round_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero, to int64 (saturating far outside uint8)."""
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), -(1 << 40), 1 << 40).astype(np.int64)


def average_requantize(acc, bias: int, scale: float, zero_point: int, qmin: int = QMIN,
                       qmax: int = QMAX) -> np.ndarray:
    """uint8 of (acc + bias) * scale, QNNPACK's average-pooling requantization: the
    24-bit mantissa of scale times the sum, shifted right rounding ties away from zero
    (scales QNNPACK refuses, outside [2**-32, 256): the float64 product, ties away)."""
    bits = _float_bits(scale)
    shift = 127 + 23 - (bits >> 23)
    n = _as_int32(np.asarray(acc, dtype=np.int64) + bias)
    if not 16 <= shift < 64 or not float(scale) > 0:  # outside QNNPACK's range: float64
        return _clamped(_round_away(n * np.float64(np.float32(scale))), zero_point, qmin, qmax)
    multiplier = (bits & 0x007FFFFF) | 0x00800000
    product = n * multiplier - (n < 0)
    return _clamped((product + (1 << (shift - 1))) >> shift, zero_point, qmin, qmax)


def add_quantized(a: Int8Tensor, b: Int8Tensor, scale: float, zero_point: int, qmin: int = QMIN,
                  qmax: int = QMAX) -> np.ndarray:
    """uint8 of a + b at (scale, zero_point), QNNPACK's add: each input's scale over the
    output's as a multiplier below 2**22 (the larger in [2**21, 2**22)), one integer sum,
    one rounding right shift (ties away from zero). QNNPACK takes ratios in [2**-14,
    2**8) only; others give the float64 sum rounded half away from zero."""
    a_out = np.float32(a.scale) / np.float32(scale)
    b_out = np.float32(b.scale) / np.float32(scale)
    if not all(2.0 ** -14 <= ratio < 2.0 ** 8 for ratio in (a_out, b_out)):
        # QNNPACK refuses these ratios; the float64 sum rounded half away from zero
        real = ((a.data.astype(np.float64) - a.zero_point) * np.float64(a_out)
                + (b.data.astype(np.float64) - b.zero_point) * np.float64(b_out))
        return np.clip(_round_away(real) + zero_point, qmin, qmax).astype(np.uint8)
    exponent = (_float_bits(max(a_out, b_out)) >> 23) - 127
    shift = 21 - exponent
    a_mult = int(np.rint(a_out * np.float32(2.0 ** shift)))
    b_mult = int(np.rint(b_out * np.float32(2.0 ** shift)))
    acc = (-(a_mult * int(a.zero_point) + b_mult * int(b.zero_point))
           + a.data.astype(np.int64) * a_mult + b.data.astype(np.int64) * b_mult)
    y = _rounding_shift(_as_int32(acc), shift) + zero_point
    return np.clip(y, qmin, qmax).astype(np.uint8)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(Q31 multiplier, right shift) of 0 <= real < 1, gemmlowp's
    QuantizeMultiplierSmallerThanOne (Caffe2's int8_utils.h)."""
    if real == 0:
        return 0, 0
    mantissa, exponent = math.frexp(real)
    fixed, shift = int(np.rint(mantissa * (1 << 31))), -exponent
    if fixed == 1 << 31:
        fixed, shift = fixed // 2, shift - 1
    return fixed, shift


def multiply_by_quantized_multiplier(x, real: float) -> np.ndarray:
    """int32 x times real (0 <= real < 1) as gemmlowp does it: a saturating rounding
    doubling high multiply by the Q31 multiplier, then a rounding divide by 2**shift
    (ties away from zero). Outside [0, 1) (where Caffe2 aborts): the float64 product,
    rounded half away from zero."""
    x = _as_int32(x)
    if not 0 <= real < 1:
        return _round_away(x * np.float64(real))
    multiplier, shift = quantize_multiplier(real)
    product = x * multiplier
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division: toward zero
    mask = (1 << shift) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> shift) + (remainder > threshold)


def relu_min(scale: float, zero_point: int) -> int:
    """The smallest code a fused Relu lets through: 0.0 quantized (Caffe2's activationLimits)."""
    return int(np.clip(zero_point + np.rint(np.float32(0.0) / np.float32(scale)), QMIN, QMAX))
