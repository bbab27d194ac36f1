"""NumPy kernels of the optimizer_util family: Lars, LearningRateAdaption,
ClipTensorByScaling, EnsureClipped, RowWiseCounter, SparseDropoutWithReplacement,
WeightScale, SparseNormalize (and its float16 form) and SparseLpRegularizer.
Like every kernel they return new arrays, even where the schema makes an output
overwrite its input.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.sparse_update import index_rounds
from pycaffe2.operators.training import _scalar, check_floats, read_counter
from pycaffe2.schema.inference import ShapeError, same_sizes
from pycaffe2.schema.inference.optimizer_util import (
    ensure_clipped_inputs,
    index_dtype,
    lp_norm,
    not_empty,
    positive_threshold,
    row_param,
    row_wise_counter,
    sparse_dropout,
)
from pycaffe2.schema.inference.sparse_update import index_range, sparse_rows


def _norm(x) -> float:
    flat = x.reshape(-1).astype(np.float64)
    return math.sqrt(float(np.dot(flat, flat)))


@register_cpu("Lars")
def lars(x, dx, wd, trust, lr_max, *, offset, lr_min):
    check_floats({"X": x, "dX": dx})
    same_sizes({"X": x.shape, "dX": dx.shape})
    wd, trust, lr_max = (float(_scalar(name, value, np.float64))
                         for name, value in (("wd", wd), ("trust", trust), ("lr_max", lr_max)))
    x_norm = _norm(x)
    value = trust / (_norm(dx) / x_norm + wd + offset) if x_norm > 0 else 1.0
    return np.array([max(min(value, lr_max), lr_min)], x.dtype)


@register_cpu("LearningRateAdaption")
def learning_rate_adaption(lr, grad, effgrad, *, lr_alpha, normalized_lr_adaption):
    check_floats({"lr": lr, "grad": grad, "effgrad": effgrad})
    same_sizes({"grad": grad.shape, "effgrad": effgrad.shape})
    rate = float(_scalar("lr", lr, np.float64))
    g, e = grad.reshape(-1).astype(np.float64), effgrad.reshape(-1).astype(np.float64)
    x = float(np.dot(g, e))
    if normalized_lr_adaption:
        eps = 1e-12
        new = rate * (1 - lr_alpha * x / (max(_norm(g), eps) * max(_norm(e), eps)))
    else:
        new = rate - lr_alpha * x
    return np.full(lr.shape, new, lr.dtype)


@register_cpu("ClipTensorByScaling")
def clip_tensor_by_scaling(tensor, val, *additional, threshold):
    positive_threshold(threshold)
    check_floats({"input_tensor": tensor})
    not_empty(tensor.shape, "input_tensor")
    value = float(_scalar("val", val, np.float64))
    if additional:
        threshold = threshold * float(_scalar("additional_threshold", additional[0], np.float64))
    if value > threshold:
        return tensor * tensor.dtype.type(threshold / value)
    return tensor.copy()


def _clip(values, low, high):
    return np.clip(values, -np.inf if low is None else low, np.inf if high is None else high).astype(
        values.dtype, copy=False)


@register_cpu("EnsureClipped")
def ensure_clipped(param, *sparse, min, max, input_names, output_names):
    ensure_clipped_inputs(1 + len(sparse))
    check_floats({"param": param})
    if not sparse:
        return _clip(param, min, max)
    if output_names[0] != input_names[0]:
        raise ShapeError("the sparse form (with indices and grad) must write param in place: "
                         f"output {output_names[0]!r} is not param {input_names[0]!r}")
    indices, grad = np.asarray(sparse[0]), np.asarray(sparse[1])
    row = sparse_rows(param.shape, indices.shape, indices.dtype, grad.shape)
    flat = indices.reshape(-1)
    index_range(flat, param.shape[0])
    out = param.reshape(param.shape[0], row).copy()
    out[flat] = _clip(out[flat], min, max)
    return out.reshape(param.shape)


@register_cpu("RowWiseCounter")
def row_wise_counter_kernel(prev_iter, update_counter, indices, counter, *, counter_halflife):
    row_wise_counter(prev_iter.shape, prev_iter.dtype, update_counter.shape, update_counter.dtype)
    indices = np.asarray(indices)
    index_dtype(indices.dtype)
    current = read_counter(counter)
    prev, count = prev_iter.reshape(-1).copy(), update_counter.reshape(-1).copy()
    flat = indices.reshape(-1)
    index_range(flat, prev.size)
    if flat.size and counter_halflife > 0:
        rows, times = np.unique(flat, return_counts=True)
        # A row named m times: the first update decays its count, the later ones (no time
        # has passed) add 1 each, as Caffe2's loop does.
        delta = np.maximum(0, current - prev[rows]).astype(np.float64)
        decay = np.exp(-delta * (math.log(2.0) / counter_halflife))
        count[rows] = (times + decay * count[rows]).astype(count.dtype)
        prev[rows] = np.maximum(prev[rows], current)
    return prev.reshape(prev_iter.shape), count.reshape(update_counter.shape)


@register_cpu("SparseDropoutWithReplacement")
def sparse_dropout_with_replacement(x, lengths, *, ratio, replacement_value, rng):
    sparse_dropout(np.shape(x), np.asarray(x).dtype, np.shape(lengths), np.asarray(lengths).dtype)
    lengths64 = lengths.astype(np.int64)
    if lengths64.size and lengths64.min() < 0:
        raise ShapeError(f"Lengths must not be negative, got {int(lengths64.min())}")
    if int(lengths64.sum()) != x.size:
        raise ShapeError(f"Lengths sum to {int(lengths64.sum())} but X holds {x.size} values")
    keep = rng.random(lengths.size) < 1.0 - ratio
    out_lengths = np.where(keep, lengths64, 1)
    out_starts = np.cumsum(out_lengths) - out_lengths
    in_starts = np.cumsum(lengths64) - lengths64
    y = np.empty(int(out_lengths.sum()), np.int64)
    segment = np.repeat(np.arange(lengths.size), lengths64)
    kept = keep[segment]
    y[(out_starts[segment] + np.arange(x.size) - in_starts[segment])[kept]] = x[kept]
    y[out_starts[~keep]] = replacement_value
    return y, out_lengths.astype(np.int32)


@register_cpu("WeightScale")
def weight_scale(w, counter, *, stepsize, upper_bound_iter, scale):
    check_floats({"w": w})
    step_number = read_counter(counter) + 1
    if step_number % stepsize != 0 or step_number >= upper_bound_iter:
        return w.copy()
    return w * w.dtype.type(scale)


def _named_rows(param, indices, float16: bool):
    """(param as float rows (a copy), flat indices), checked."""
    row_param(np.shape(param), np.asarray(param).dtype, float16)
    indices = np.asarray(indices)
    index_dtype(indices.dtype)
    flat = indices.reshape(-1)
    index_range(flat, param.shape[0])
    rows = param.reshape(param.shape[0], -1).astype(np.float32 if float16 else param.dtype)
    return rows, flat


def _sparse_normalize(param, indices, use_max_norm, norm, float16):
    rows, flat = _named_rows(param, indices, float16)
    t = rows.dtype.type
    for positions in index_rounds(flat):  # a repeated row is scaled again, as Caffe2's loop does
        k = flat[positions]
        norms = np.sqrt(np.sum(rows[k] * rows[k], axis=1))
        factor = norms > t(norm) if use_max_norm else np.ones(norms.shape, bool)
        scale = t(norm) / (norms + t(1e-12))
        rows[k] = np.where(np.reshape(factor, (-1, 1)), rows[k] * scale[:, None], rows[k])
    return rows.astype(param.dtype).reshape(param.shape)


@register_cpu("SparseNormalize")
def sparse_normalize(param, indices, *grad, use_max_norm, norm):
    return _sparse_normalize(param, indices, use_max_norm, norm, float16=False)


@register_cpu("Float16SparseNormalize")
def float16_sparse_normalize(param, indices, *grad, use_max_norm, norm):
    return _sparse_normalize(param, indices, use_max_norm, norm, float16=True)


@register_cpu("SparseLpRegularizer")
def sparse_lp_regularizer(param, indices, *grad, p, reg_lambda):
    lp_norm(p)
    rows, flat = _named_rows(param, indices, False)
    t = rows.dtype.type
    for positions in index_rounds(flat):
        k = flat[positions]
        if p == 2.0:
            rows[k] = rows[k] * (t(1) - t(reg_lambda))
        else:  # soft thresholding
            values = rows[k]
            rows[k] = np.where(values < -t(reg_lambda), values + t(reg_lambda),
                               np.where(values > t(reg_lambda), values - t(reg_lambda), t(0)))
    return rows.reshape(param.shape)
