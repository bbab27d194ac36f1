"""Caffe2's Int8 pooling and activations (QNNPACK's arithmetic): Int8MaxPool(Relu),
Int8AveragePool(Relu), Int8Relu, Int8LeakyRelu, Int8Sigmoid, Int8Softmax.

Pooling runs channels-first on pooling.py's windows: max over the codes, and for the
average an integer sum over the padded window (padding holds the zero point)
requantized with qtensor.average_requantize. The activations are QNNPACK's 256-entry
lookup tables, built here in float32 as QNNPACK builds them (float64 for SoftArgMax).
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.errors import ShapeError
from pycaffe2.operators._conv_pool import channels_back, channels_first, register_factory
from pycaffe2.operators.int8 import int8_input, output_limits
from pycaffe2.operators.pooling import _max_pool, window_sums
from pycaffe2.operators.registry import register_cpu
from pycaffe2.qtensor import QMAX, Int8Tensor, average_requantize, multiply_by_quantized_multiplier
from pycaffe2.schema.inference.int8_nn import (
    check_alpha,
    check_probability_output,
    check_softmax_input,
    pool_geometry,
    roi_align_shape,
)


def kept_quantization(x: Int8Tensor, y_scale, y_zero_point) -> tuple[float, int]:
    """X's scale and zero point, which Y keeps; Caffe2 checks given Y args against them."""
    if y_scale is not None and np.float32(y_scale) != np.float32(x.scale):
        raise ShapeError(f"Y_scale {y_scale} must equal X's scale {x.scale}")
    if y_zero_point is not None and y_zero_point != x.zero_point:
        raise ShapeError(f"Y_zero_point {y_zero_point} must equal X's zero point {x.zero_point}")
    return float(x.scale), int(x.zero_point)




# ---- pooling

def _max_pool_factory(relu: bool):
    def factory(**args):
        def run(x):
            x = int8_input(x, "X")
            g, _ = pool_geometry(args, x.shape)
            scale, zero_point = kept_quantization(x, args["Y_scale"], args["Y_zero_point"])
            y = _max_pool(channels_first(x.data, args["order"]), g)
            qmin, qmax = output_limits(relu, scale, zero_point)
            return Int8Tensor(np.clip(channels_back(y, args["order"]), qmin, qmax), scale, zero_point)
        return run
    return factory


def _average_pool_factory(relu: bool):
    def factory(**args):
        def run(x):
            x = int8_input(x, "X")
            g, _ = pool_geometry(args, x.shape)
            scale, zero_point = float(args["Y_scale"]), int(args["Y_zero_point"])
            centered = channels_first(x.data.astype(np.int64) - x.zero_point, args["order"])
            acc = window_sums(centered, g)
            area = math.prod(g.kernel)
            ratio = np.float32(x.scale) / (np.float32(scale) * np.float32(area))
            qmin, qmax = output_limits(relu, scale, zero_point)
            y = average_requantize(acc, 0, ratio, zero_point, qmin, qmax)
            return Int8Tensor(channels_back(y, args["order"]), scale, zero_point)
        return run
    return factory


register_factory("Int8MaxPool")(_max_pool_factory(relu=False))
register_factory("Int8MaxPoolRelu")(_max_pool_factory(relu=True))
register_factory("Int8AveragePool")(_average_pool_factory(relu=False))
register_factory("Int8AveragePoolRelu")(_average_pool_factory(relu=True))


# ---- activations

@register_cpu("Int8Relu")
def int8_relu(x, *, Y_scale, Y_zero_point):
    x = int8_input(x, "X")
    scale, zero_point = kept_quantization(x, Y_scale, Y_zero_point)
    return Int8Tensor(np.maximum(x.data, np.uint8(zero_point)), scale, zero_point)


def _codes() -> np.ndarray:
    return np.arange(256, dtype=np.int32)


def leaky_relu_table(alpha: float, x: Int8Tensor, scale: float, zero_point: int) -> np.ndarray:
    """QNNPACK's Leaky ReLU table: code -> Y code."""
    ratio = np.float32(x.scale) / np.float32(scale)
    if not 2.0 ** -8 <= ratio < 2.0 ** 8:
        raise ShapeError(f"X's scale over Y_scale, {float(ratio):.7g}, must be in [2**-8, 2**8) "
                         "(QNNPACK's Leaky ReLU)")
    v = ratio * (_codes() - x.zero_point).astype(np.float32)
    v = np.where(v < 0, v * np.float32(alpha), v)
    v = np.clip(v, np.float32(-zero_point), np.float32(QMAX - zero_point))
    return (np.rint(v) + zero_point).astype(np.uint8)


@register_cpu("Int8LeakyRelu")
def int8_leaky_relu(x, *, alpha, Y_scale, Y_zero_point):
    check_alpha(alpha)
    x = int8_input(x, "X")
    scale, zero_point = float(Y_scale), int(Y_zero_point)
    return Int8Tensor(leaky_relu_table(alpha, x, scale, zero_point)[x.data], scale, zero_point)


def sigmoid_table(x: Int8Tensor) -> np.ndarray:
    """QNNPACK's Sigmoid table: 256 / (1 + exp(-x)) in float32, clamped, rounded."""
    v = np.float32(x.scale) * (_codes() - x.zero_point).astype(np.float32)
    with np.errstate(over="ignore"):
        y = np.float32(256.0) / (np.float32(1.0) + np.exp(-v))
    return np.rint(np.clip(y, 0, QMAX)).astype(np.uint8)


@register_cpu("Int8Sigmoid")
def int8_sigmoid(x, *, Y_scale, Y_zero_point):
    check_probability_output(Y_scale, Y_zero_point)
    x = int8_input(x, "X")
    return Int8Tensor(sigmoid_table(x)[x.data], float(Y_scale), int(Y_zero_point))


def softargmax(codes: np.ndarray, x_scale: float) -> np.ndarray:
    """QNNPACK's SoftArgMax of rows of codes [rows, n]: a uint32 table of
    qscale * exp((q - 255) * scale), read shifted by the row's max, normalized in fixed point."""
    n = codes.shape[1]
    qscale = min(float(np.iinfo(np.uint32).max) / n, 8388607.0)
    table = np.rint(qscale * np.exp((_codes() - 255).astype(np.float64) * float(np.float32(x_scale))))
    table = table.astype(np.int64)
    shifted = table[codes.astype(np.int64) + (255 - codes.max(axis=1, keepdims=True))]
    total = shifted.sum(axis=1, keepdims=True)
    return np.minimum(((shifted << 8) + (total >> 1)) // total, QMAX).astype(np.uint8)


@register_cpu("Int8Softmax")
def int8_softmax(x, *, Y_scale, Y_zero_point):
    check_probability_output(Y_scale, Y_zero_point)
    x = int8_input(x, "X")
    check_softmax_input(x.shape)
    rows = x.shape[0]
    if x.data.size == 0:
        return Int8Tensor(x.data.copy(), float(Y_scale), int(Y_zero_point))
    y = softargmax(x.data.reshape(rows, -1), x.scale)
    return Int8Tensor(y.reshape(x.shape), float(Y_scale), int(Y_zero_point))


# ---- RoIAlign (Caffe2's own Int8 kernel, not QNNPACK's)

SAMPLES_LIMIT = 1 << 26  # sample cells of one RoI (a bad RoI must not exhaust memory)

def _axis_samples(start, bin_size, pooled: int, grid: int, size: int):
    """Along one axis: (low, high, fraction, inside) per [pooled, grid] sample, float32
    as Caffe2 computes them."""
    offsets = (np.arange(grid, dtype=np.float32) + np.float32(0.5)) * bin_size / np.float32(grid)
    pos = start + np.arange(pooled, dtype=np.float32)[:, None] * bin_size + offsets[None, :]
    inside = (pos >= -1) & (pos <= size)
    pos = np.maximum(pos, np.float32(0))
    low = pos.astype(np.int64)
    clamped = low >= size - 1
    low = np.where(clamped, size - 1, low)
    high = np.where(clamped, size - 1, low + 1)
    fraction = np.where(clamped, np.float32(0), pos - low.astype(np.float32)).astype(np.float32)
    return low, high, fraction, inside


def _roi_bin(image: np.ndarray, roi, x: Int8Tensor, args: dict) -> np.ndarray:
    """[pooled_h, pooled_w, C] int32 sums of one RoI, and the multiplier's sample count."""
    h, w = image.shape[:2]
    ph, pw, ratio = args["pooled_h"], args["pooled_w"], args["sampling_ratio"]
    x1, y1, x2, y2 = (np.float32(v) * np.float32(args["spatial_scale"]) for v in roi)
    roi_w, roi_h = max(x2 - x1, np.float32(1)), max(y2 - y1, np.float32(1))
    bin_h, bin_w = roi_h / np.float32(ph), roi_w / np.float32(pw)
    grid_h = ratio if ratio > 0 else math.ceil(roi_h / ph)
    grid_w = ratio if ratio > 0 else math.ceil(roi_w / pw)
    if grid_h * grid_w * ph * pw * image.shape[2] > SAMPLES_LIMIT:
        raise ShapeError(f"RoI {[float(v) for v in roi]} needs {grid_h} x {grid_w} samples per bin: "
                         "too many (give sampling_ratio, or a smaller RoI)")
    ylo, yhi, ly, yin = _axis_samples(y1, bin_h, ph, grid_h, h)
    xlo, xhi, lx, xin = _axis_samples(x1, bin_w, pw, grid_w, w)
    ly, lx = ly[:, :, None, None], lx[None, None, :, :]  # [ph, gh, pw, gw]
    hy, hx = np.float32(1) - ly, np.float32(1) - lx
    inside = (yin[:, :, None, None] & xin[None, None, :, :])[..., None]
    acc = np.zeros((ph, grid_h, pw, grid_w, image.shape[2]), np.int64)
    for wy, wx, rows, cols in ((hy, hx, ylo, xlo), (hy, lx, ylo, xhi), (ly, hx, yhi, xlo), (ly, lx, yhi, xhi)):
        weight = np.rint(wy * wx * np.float32(255)).astype(np.int64)[..., None]
        cells = image[rows[:, :, None, None], cols[None, None, :, :]].astype(np.int64)
        acc += np.where(inside, weight * cells, 0)
    acc -= x.zero_point * 255  # per sample, as Caffe2 does (its weights sum to about 255)
    return acc.sum(axis=(1, 3)), grid_h * grid_w


@register_cpu("Int8RoIAlign")
def int8_roi_align(x, rois, *, Y_scale, Y_zero_point, order, spatial_scale, pooled_h, pooled_w,
                   sampling_ratio):
    x = int8_input(x, "X")
    rois = np.asarray(rois, dtype=np.float32)
    shape = roi_align_shape(x.shape, rois.shape, pooled_h, pooled_w)
    batch = rois[:, 0].astype(np.int64) if rois.shape[1] == 5 else np.zeros(len(rois), np.int64)
    if len(batch) and (batch.min() < 0 or batch.max() >= x.shape[0] or not np.isfinite(rois).all()):
        raise ShapeError(f"RoI batch indices must be in [0, {x.shape[0]}) and coordinates finite")
    args = {"pooled_h": pooled_h, "pooled_w": pooled_w, "sampling_ratio": sampling_ratio,
            "spatial_scale": spatial_scale}
    y = np.empty(shape, np.uint8)
    for r, roi in enumerate(rois[:, -4:]):
        acc, count = _roi_bin(x.data[batch[r]], roi, x, args)
        real = float(np.float32(x.scale)) / (float(np.float32(Y_scale)) * 255.0 * count)
        y[r] = np.clip(multiply_by_quantized_multiplier(acc, real) + Y_zero_point, 0, QMAX)
    return Int8Tensor(y, float(Y_scale), int(Y_zero_point))
