"""Weighted sampling kernels (NumPy): WeightedSample (one index per row of
weights) and WeightedMultiSampling (indices from a cumulative distribution).
The draws come from the op's `rng`; an index is the first one whose cumulative
weight reaches the draw (Caffe2's lower_bound), found for every draw at once."""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.weighted_sample import check_cdf, check_weights, sample_shape


@register_cpu("WeightedSample")
def weighted_sample(weights, values=None, *, num_outputs, rng):
    check_weights(weights.shape, weights.dtype.name, None if values is None else values.shape,
                  None if values is None else values.dtype.name, 1 + (values is not None), num_outputs)
    shape = sample_shape(weights.shape)
    if shape == (0,):
        empty = (np.zeros(0, np.int32), np.zeros(0, np.float32))
        return empty[:num_outputs]
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise ShapeError("sampling_weights must be finite and non-negative")
    cum = np.cumsum(weights, axis=1, dtype=np.float32)
    draws = rng.random(weights.shape[0], dtype=np.float32) * cum[:, -1]
    cum[:, -1] += np.float32(0.01)  # as Caffe2, so a draw rounding up to the sum still finds the last index
    index = (cum < draws[:, None]).sum(axis=1)
    outputs = [index.astype(np.int32).reshape(shape)]
    if values is not None:
        outputs.append(values[np.arange(weights.shape[0]), index].reshape(shape))
    return tuple(outputs)


@register_cpu("WeightedMultiSampling")
def weighted_multi_sampling(cdf, shape_tensor=None, *, num_samples, rng):
    check_cdf(cdf.shape, cdf.dtype.name, num_samples, shape_tensor is not None)
    if cdf.shape[0] == 0:
        return np.zeros(0, np.int32)
    shape = shape_tensor.shape if shape_tensor is not None else (num_samples or 0,)
    check_alloc(shape, np.int32)
    if (cdf < 0).any() or (np.diff(cdf) < 0).any() or not np.isfinite(cdf).all():
        raise ShapeError("sampling_cdf must be finite, non-negative and non-decreasing")
    draws = rng.random(shape, dtype=np.float32) * cdf[-1]
    return np.searchsorted(cdf, draws, side="left").astype(np.int32)
