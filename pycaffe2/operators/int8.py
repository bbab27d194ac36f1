"""Caffe2's Int8 ops (caffe2/operators/quantized, on QNNPACK): fills, Int8Quantize,
Int8Dequantize, Int8Conv(Relu), Int8ConvTranspose, Int8FC, Int8Add/Sum(Relu).

Blobs are qtensor.Int8Tensor values. The convolutions and FC sum integer products
exactly with the float kernels of conv.py on float64 arrays of (q - zero_point)
(exact below 2**53), add the int32 bias, and requantize with QNNPACK's fixed-point
arithmetic (qtensor.requantize); Add is QNNPACK's add (qtensor.add_quantized). Shape
checks are the schema's (inference.int8), so validate and run agree.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import ShapeError
from pycaffe2.operators._conv_cpu import correlate, input_gradient
from pycaffe2.operators._conv_pool import channels_back, channels_first, register_factory
from pycaffe2.operators.conv import _as_conv
from pycaffe2.operators.registry import register_cpu
from pycaffe2.qtensor import (
    QMAX,
    QMIN,
    Int8Tensor,
    add_quantized,
    conv_scale,
    quantize,
    relu_min,
    requantize,
)
from pycaffe2.schema.inference.int8 import (
    check_bias,
    check_codes,
    check_one_value,
    check_values,
    conv_geometry,
    fc_geometry,
)
from pycaffe2.schema.inference.linalg import fc_output_shape


def int8_input(value, name: str, codes: bool = True) -> Int8Tensor:
    """`value` as an Int8 blob, or a clear error naming what it is instead."""
    if not isinstance(value, Int8Tensor):
        what = f"a {value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise ShapeError(f"{name} is {what}, not an Int8 tensor (Int8Quantize makes one)")
    if codes:
        check_codes(value.data.dtype.name, name)
    return value


def output_limits(relu: bool, scale: float, zero_point: int) -> tuple[int, int]:
    return (relu_min(scale, zero_point) if relu else QMIN), QMAX


def centered(q: Int8Tensor) -> np.ndarray:
    """q - zero_point as float64 (integer values, exact)."""
    return q.data.astype(np.float64) - q.zero_point


# ---- fills, Quantize, Dequantize

@register_cpu("Int8GivenTensorFill")
def int8_given_tensor_fill(*, values, shape, Y_scale, Y_zero_point):
    raw = values.encode("utf-8") if isinstance(values, str) else bytes(values)
    check_values(len(raw), shape)
    data = np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()
    return Int8Tensor(data, float(Y_scale), int(Y_zero_point))


@register_cpu("Int8GivenIntTensorFill")
def int8_given_int_tensor_fill(*, values, shape, Y_scale, Y_zero_point):
    check_values(len(values), shape)
    return Int8Tensor(np.array(values, dtype=np.int32).reshape(shape), float(Y_scale), int(Y_zero_point))


def _one_value(blob, name: str):
    array = np.asarray(blob.data if isinstance(blob, Int8Tensor) else blob)
    check_one_value(array.shape, name)
    return array.reshape(-1)[0]


@register_cpu("Int8Quantize")
def int8_quantize(x, scale=None, zero_point=None, *, Y_scale, Y_zero_point):
    if isinstance(x, Int8Tensor) or np.asarray(x).dtype.kind != "f":
        raise ShapeError("X must be a float tensor")
    if scale is not None:
        Y_scale = float(_one_value(scale, "Scale qparam"))
    if zero_point is not None:
        Y_zero_point = int(_one_value(zero_point, "Zero-point qparam"))
    if not Y_scale > 0:
        raise ShapeError(f"the scale is {Y_scale} but must be positive")
    return quantize(np.nan_to_num(np.asarray(x, dtype=np.float32)), Y_scale, Y_zero_point)


@register_cpu("Int8Dequantize")
def int8_dequantize(x):
    return int8_input(x, "qX", codes=False).dequantize()


# ---- convolutions

def int32_bias(bias, count: int, unit: float) -> np.ndarray:
    """The bias in int32 units of `unit` (= X_scale * W_scale), as int64: an int32 Int8
    tensor (or integer array) as is, as QNNPACK reads it; a uint8 Int8 tensor or a
    float array from its real values."""
    if bias is None:
        return np.zeros(count, dtype=np.int64)
    data = bias.data if isinstance(bias, Int8Tensor) else np.asarray(bias)
    check_bias(data.shape, count)
    if data.dtype.kind in "iu" and not (isinstance(bias, Int8Tensor) and data.dtype == np.uint8):
        return data.reshape(count).astype(np.int64)
    real = bias.dequantize() if isinstance(bias, Int8Tensor) else data.astype(np.float32)
    return np.rint(real.reshape(count).astype(np.float64) / unit).astype(np.int64)


def _finish(acc: np.ndarray, args: dict, x: Int8Tensor, w: Int8Tensor, relu: bool) -> Int8Tensor:
    """Y of a convolution or FC from its int sums (bias included)."""
    y_scale, y_zero = args["Y_scale"], args["Y_zero_point"]
    qmin, qmax = output_limits(relu, y_scale, y_zero)
    data = requantize(acc, conv_scale(x.scale, w.scale, y_scale), y_zero, qmin, qmax)
    return Int8Tensor(data, float(y_scale), int(y_zero))


def _conv_factory(relu: bool, transposed: bool = False):
    def factory(**args):
        order = args["order"]
        group = 1 if transposed else args["group"]

        def run(x, w, bias=None):
            x, w = int8_input(x, "X"), int8_input(w, "filter")
            g, m = conv_geometry(args, x.shape, w.shape, transposed)
            b = int32_bias(bias, m, float(np.float32(x.scale) * np.float32(w.scale)))
            xc, wc = channels_first(centered(x), order), channels_first(centered(w), order)
            if transposed:
                acc = input_gradient(xc, wc, _as_conv(xc, g), 1, (x.shape[0], m) + g.out)
            else:
                acc = correlate(xc, wc, g, group)
            acc = np.rint(acc).astype(np.int64) + b.reshape((-1,) + (1,) * len(g.out))
            y = _finish(channels_back(acc, order), args, x, w, relu)
            return y
        return run
    return factory


register_factory("Int8Conv")(_conv_factory(relu=False))
register_factory("Int8ConvRelu")(_conv_factory(relu=True))
register_factory("Int8ConvTranspose")(_conv_factory(relu=False, transposed=True))


# ---- FC

def dynamic_quantize(x: np.ndarray) -> Int8Tensor:
    """A float X quantized over its range (0 included), DNNLOWP's dynamic quantization."""
    x = np.asarray(x, dtype=np.float32)
    low = min(float(x.min(initial=0.0)), 0.0)
    high = max(float(x.max(initial=0.0)), 0.0)
    scale = (high - low) / 255 if high > low else 1.0
    zero_point = int(np.clip(np.rint(-low / scale), QMIN, QMAX))
    return quantize(x, scale, zero_point)


@register_cpu("Int8FC")
def int8_fc(x, w, b, *, axis, axis_w, Y_scale, Y_zero_point, dequantize_output):
    if not isinstance(x, Int8Tensor) and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        x = dynamic_quantize(x)
    x, w = int8_input(x, "X"), int8_input(w, "W")
    bias_shape = (b.data if isinstance(b, Int8Tensor) else np.asarray(b)).shape
    m, k, n = fc_geometry(x.shape, w.shape, bias_shape, axis, axis_w)
    unit = float(np.float32(x.scale) * np.float32(w.scale))
    acc = centered(x).reshape(m, k) @ centered(w).reshape(n, k).T
    acc = np.rint(acc).astype(np.int64) + int32_bias(b, n, unit)
    shape = fc_output_shape(x.shape, axis, n)
    if dequantize_output:
        return (acc.astype(np.float64) * unit).astype(np.float32).reshape(shape)
    y = _finish(acc, {"Y_scale": Y_scale, "Y_zero_point": Y_zero_point}, x, w, relu=False)
    return Int8Tensor(y.data.reshape(shape), y.scale, y.zero_point)


# ---- Add and Sum

def _add_kernel(relu: bool):
    def add(a, b, *, Y_scale, Y_zero_point):
        a, b = int8_input(a, "A"), int8_input(b, "B")
        if a.shape != b.shape:
            raise ShapeError(f"A is {list(a.shape)} but B is {list(b.shape)}: they must have "
                             "the same shape")
        qmin, qmax = output_limits(relu, Y_scale, Y_zero_point)
        data = add_quantized(a, b, Y_scale, Y_zero_point, qmin, qmax)
        return Int8Tensor(data, float(Y_scale), int(Y_zero_point))
    return add


register_cpu("Int8Add", "Int8Sum")(_add_kernel(relu=False))
register_cpu("Int8AddRelu", "Int8SumRelu")(_add_kernel(relu=True))
