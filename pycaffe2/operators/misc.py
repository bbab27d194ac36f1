"""NumPy kernels of the misc family: AliasWithName, HasElements, IsEmpty,
SinusoidPositionEncoding, PiecewiseLinearTransform, Quantile, KeySplit and
AccumulateHistogram, DataCouple and Assert. The checks are
the family's inference module's (schema/inference/misc.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.misc import (
    assert_type,
    check_couple,
    encoding_size,
    histogram_input,
    key_split,
    key_type,
    piecewise_groups,
    piecewise_params_from_args,
    piecewise_predictions,
    positions_matrix,
    quantile_args,
    quantile_inputs,
)


@register_cpu("AliasWithName")
def alias_with_name(x, *, name, is_backward):
    return x


@register_cpu("HasElements")
def has_elements(*tensors):
    return np.array(any(np.size(t) > 0 for t in tensors))


@register_cpu("IsEmpty")
def is_empty(tensor):
    return np.array(np.size(tensor) == 0)


@register_cpu("SinusoidPositionEncoding")
def sinusoid_position_encoding(positions, *, embedding_size, alpha, amplitude):
    positions_matrix(positions.shape, positions.dtype.name)
    if embedding_size < 0:
        raise ValueError(f"embedding_size must be >= 0, got {embedding_size}")
    encoding_size(positions.shape, embedding_size)
    pos = positions[:, :1].astype(np.float64)[..., None]  # [M, 1, 1]: column 0 stands for the row
    dims = np.arange(embedding_size)
    angle = pos / np.power(float(alpha), dims / max(embedding_size, 1)) + np.where(dims % 2, np.pi / 2, 0.0)
    out = (amplitude * np.sin(angle)).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(out, (*positions.shape, embedding_size)))


def _piecewise(x, bounds, slopes, intercepts):
    """y of one group's pieces (n slopes, n + 1 sorted bounds) for the values x."""
    n = slopes.size
    piece = np.clip(np.searchsorted(bounds, x, side="left") - 1, 0, n - 1)
    clamped = np.clip(x, bounds[0], bounds[n])
    last = x >= bounds[n]
    piece = np.where(x <= bounds[0], 0, np.where(last, n - 1, piece))
    return (slopes[piece] * clamped + intercepts[piece]).astype(x.dtype)


@register_cpu("PiecewiseLinearTransform")
def piecewise_linear_transform(x, *params, bounds, slopes, intercepts, binary, pieces):
    from_args = piecewise_params_from_args({"bounds": bounds, "slopes": slopes, "intercepts": intercepts},
                                           1 + len(params))
    if from_args:
        b, s, c = (np.asarray(v, x.dtype) for v in (bounds, slopes, intercepts))
    else:
        b, s, c = (np.asarray(v, x.dtype).ravel() for v in params)
    groups, n = piecewise_groups(b.size, s.size, c.size, binary)
    piecewise_predictions(x.shape, x.dtype.name, binary, groups)
    b, s, c = b.reshape(groups, n + 1), s.reshape(groups, n), c.reshape(groups, n)
    if np.any(np.diff(b, axis=1) < 0):
        raise ValueError("bounds must be sorted within each group")
    if binary:
        if x.ndim == 1 or x.shape[1] == 1:
            return _piecewise(x, b[0], s[0], c[0])
        y = np.empty_like(x)
        y[:, 1] = _piecewise(x[:, 1], b[0], s[0], c[0])
        y[:, 0] = 1 - y[:, 1]
        return y
    return np.stack([_piecewise(x[:, j], b[j], s[j], c[j]) for j in range(groups)], 1).reshape(x.shape)


@register_cpu("Quantile")
def quantile(*tensors, quantile, abs, tol):
    quantile_args(quantile, tol)
    quantile_inputs([t.dtype.name for t in tensors])
    dtype = tensors[0].dtype.type
    values = np.concatenate([t.ravel() for t in tensors])
    if values.size == 0:
        raise ValueError("the inputs hold no element")
    values = np.sort(np.abs(values) if abs else values)
    target = int(np.ceil(values.size * np.float32(quantile)))
    lo, hi = values[0], values[-1]
    if target == 0:
        return np.array([lo], dtype)
    if target == values.size:
        return np.array([hi], dtype)

    def count(threshold):
        return int(np.searchsorted(values, threshold, side="right"))
    if count(lo) >= target:
        return np.array([lo], dtype)
    tol = dtype(np.float32(tol))
    while np.abs(hi - lo) > tol * (np.abs(hi) + np.abs(lo)):  # at most ~2100 halvings of a double range
        mid = dtype(lo + (hi - lo) / dtype(2))
        found = count(mid)
        if found == target:
            return np.array([mid], dtype)
        if (found > target and hi == mid) or (found < target and lo == mid):
            raise ValueError("numeric precision at limit, unable to continue bisect")
        hi, lo = (mid, lo) if found > target else (hi, mid)
    return np.array([hi], dtype)


@register_cpu("KeySplit")
def key_split_op(keys, *, categorical_limit, num_outputs):
    key_split(categorical_limit, num_outputs)
    key_type(keys.dtype.name)
    flat = keys.ravel()
    bad = flat[(flat < 0) | (flat >= categorical_limit)]
    if bad.size:
        raise ValueError(f"key {int(bad[0])} is out of range [0, {categorical_limit})")
    order = np.argsort(flat, kind="stable").astype(np.int32)
    bounds = np.searchsorted(flat[order], np.arange(categorical_limit + 1))
    return tuple(order[bounds[k]:bounds[k + 1]] for k in range(categorical_limit))


@register_cpu("AccumulateHistogram", specialize=True)
def accumulate_histogram(*, lower_bound, upper_bound, num_buckets):
    """The accumulated histogram is this op's state, kept from CreateNet on."""
    if num_buckets <= 0:
        raise ValueError(f"num_buckets must be > 0, got {num_buckets}")
    accumulated = np.zeros(num_buckets + 2, np.int64)
    low, high = np.float32(lower_bound), np.float32(upper_bound)
    segment = np.float32((high - low) / np.float32(num_buckets))

    def run(x):
        histogram_input(x.dtype.name)
        values = x.ravel()
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            inner = np.floor((values - low) / segment)
        inside = (values >= low) & (values < high)
        index = np.where(values < low, 0, num_buckets + 1)
        index[inside] = np.clip(inner[inside], 0, num_buckets).astype(np.int64) + 1  # C truncation, as Caffe2
        current = np.bincount(index, minlength=num_buckets + 2).astype(np.int64)
        accumulated[:] += current
        return current, accumulated.copy()
    return run


@register_cpu("DataCouple")
def data_couple(*tensors, input_names, output_names):
    check_couple(input_names, output_names)
    return tuple(tensors[:len(output_names)])


@register_cpu("Assert")
def assert_op(x, *, error_msg):
    assert_type(x.shape, x.dtype.name)
    if not np.all(x):
        raise ValueError(f"Assert failed for input X: {error_msg}" if error_msg else "Assert failed for input X")
    return ()
