"""Feature transform kernels (NumPy): Bucketize, BatchBucketize, BatchBoxCox,
Percentile and BisectPercentile. The checks are schema.inference.math_bucket's,
shared with the rules; the kernels add the checks on index and length values.
Loops run over features (columns), never over elements.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.math_bucket import (
    box_cox_columns,
    check_batch_bucketize,
    check_bisect_args,
    check_bisect_input,
    check_bucketize_data,
    check_indices,
    check_lengths,
    check_percentile,
    check_sorted,
)

BOX_COX_EPS = 1e-6



def _starts(lengths) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


@register_cpu("Bucketize", specialize=True)
def bucketize(*, boundaries):
    check_sorted(boundaries, "boundaries")
    bounds = np.asarray(boundaries, np.float32)

    def kernel(data):
        check_bucketize_data(info_of(data))
        # The first boundary >= x (std::lower_bound); a NaN compares false, so it lands in bucket 0.
        index = np.searchsorted(bounds, data, side="left")
        return np.where(np.isnan(data), 0, index).astype(np.int32)
    return kernel


@register_cpu("BatchBucketize")
def batch_bucketize(features, indices, boundaries, lengths):
    check_batch_bucketize(*[info_of(v) for v in (features, indices, boundaries, lengths)])
    check_indices(indices, features.shape[1])
    check_lengths(lengths, boundaries.size, "boundaries")
    starts = _starts(lengths)
    out = np.empty((features.shape[0], indices.size), np.int32)
    for j, column in enumerate(indices.tolist()):
        bounds = boundaries[starts[j]:starts[j + 1]]
        if bounds.size == 0:
            out[:, j] = 0
            continue
        # The first k with x <= bounds[k] (the list's length when there is none).
        below = features[:, column, None] <= bounds[None, :]
        out[:, j] = np.where(below.any(axis=1), below.argmax(axis=1), bounds.size)
    return out


@register_cpu("BatchBoxCox")
def batch_box_cox(data, lambda1, lambda2, *, min_block_size):
    box_cox_columns(info_of(data), info_of(lambda1), info_of(lambda2))
    if data.size == 0:
        return data.copy()
    rows = data.reshape(data.shape[0], -1)
    l1, l2 = lambda1.reshape(-1), lambda2.reshape(-1)
    z = np.maximum(rows + l2, data.dtype.type(BOX_COX_EPS))
    zero = l1 == 0
    safe = np.where(zero, data.dtype.type(1), l1)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.where(zero, np.log(z), (np.power(z, safe) - 1) / safe)
    return out.astype(data.dtype).reshape(data.shape)


@register_cpu("Percentile")
def percentile(values, pairs, lengths):
    check_percentile(info_of(values), info_of(pairs), info_of(lengths))
    check_lengths(lengths, pairs.shape[0], "value_to_pct")
    starts = _starts(lengths)
    out = np.empty(values.shape, np.float32)
    for j in range(values.shape[1]):
        samples, pcts = pairs[starts[j]:starts[j + 1], 0], pairs[starts[j]:starts[j + 1], 1]
        out[:, j] = _percentile_column(values[:, j], samples, pcts)
    return out


def _percentile_column(x, samples, pcts) -> np.ndarray:
    """Caffe2's Percentile for one distribution: lower_bound, exact match, interpolation."""
    n = samples.size
    k = np.searchsorted(samples, x, side="left")
    at = np.minimum(k, max(n - 1, 0))
    before = np.maximum(k - 1, 0)
    if n == 0:
        return np.ones(x.shape, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = (x - samples[before]) / (samples[at] - samples[before])
        blended = pcts[before] + weight * (pcts[at] - pcts[before])
    result = np.where(x == samples[at], pcts[at], np.where(k == 0, 0.0, blended))
    return np.where(k == n, 1.0, result).astype(np.float32)


@register_cpu("BisectPercentile", specialize=True)
def bisect_percentile(*, percentile_raw, percentile_mapping, percentile_lower, percentile_upper, lengths):
    check_bisect_args(percentile_raw, percentile_mapping, percentile_lower, percentile_upper, lengths)
    raw, mapping, lower, upper = (np.asarray(v, np.float32) for v in
                                  (percentile_raw, percentile_mapping, percentile_lower, percentile_upper))
    starts = _starts(lengths)

    def kernel(raw_data):
        check_bisect_input(info_of(raw_data), len(lengths))
        out = np.empty(raw_data.shape, np.float32)
        for j in range(raw_data.shape[1]):
            s = slice(starts[j], starts[j + 1])
            out[:, j] = _bisect_column(raw_data[:, j], raw[s], mapping[s], lower[s], upper[s])
        return out
    return kernel


def _bisect_column(x, raw, mapping, lower, upper) -> np.ndarray:
    """One feature: 0 below the samples, 1 above, the mapping on a match, else a blend."""
    n = raw.size
    k = np.searchsorted(raw, x, side="left")
    exact = np.minimum(k, n - 1)
    left = np.clip(k - 1, 0, max(n - 2, 0))
    right = np.minimum(left + 1, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (x - raw[left]) / (raw[right] - raw[left] + np.float32(1e-10))
        blend = (1 - w) * upper[left] + w * lower[right]
    result = np.where(raw[exact] == x, mapping[exact], blend)
    result = np.where(x < raw[0], 0.0, np.where(x > raw[-1], 1.0, result))
    return result.astype(np.float32)
