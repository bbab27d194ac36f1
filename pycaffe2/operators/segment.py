"""NumPy kernels of the segment family: Unique and the unsorted segment sum and
mean over the first axis, with the gradients of the two reductions.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.operators.training import check_floats
from pycaffe2.schema.inference.segment import index_vector, segments


def _ids(segment_ids, rows: int) -> np.ndarray:
    """The ids as int64, each checked to name one of `rows` rows."""
    ids = segment_ids.astype(np.int64)
    check_in_range(ids, rows, "segment id")
    return ids


def _reduce(data, segment_ids, num_segments, mean: bool):
    check_floats({"DATA": data})  # float only, as Caffe2 registers them
    segments(data.shape, segment_ids.shape, segment_ids.dtype, num_segments)
    rows = num_segments if num_segments >= 0 else int(segment_ids.max(initial=-1)) + 1
    ids = _ids(segment_ids, rows)
    out = np.zeros(check_alloc((rows, *data.shape[1:]), data.dtype), data.dtype)  # rows come from the ids
    np.add.at(out, ids, data)
    if mean:
        counts = np.bincount(ids, minlength=rows).reshape(-1, *[1] * (data.ndim - 1))
        out = np.divide(out, counts, out=out, where=counts > 0)
    return out


@register_cpu("Unique")
def unique(indices, *, num_outputs):
    index_vector("indices", indices.shape, indices.dtype)
    values, remapping = np.unique(indices, return_inverse=True)
    return (values, remapping.reshape(indices.shape).astype(np.int32))[:num_outputs]


@register_cpu("UnsortedSegmentSum")
def unsorted_segment_sum(data, segment_ids, *, num_segments):
    return _reduce(data, segment_ids, num_segments, mean=False)


@register_cpu("UnsortedSegmentMean")
def unsorted_segment_mean(data, segment_ids, *, num_segments):
    return _reduce(data, segment_ids, num_segments, mean=True)


@register_cpu("UnsortedSegmentSumGradient")
def unsorted_segment_sum_gradient(grad, segment_ids, *, num_segments):
    index_vector("SEGMENT_IDS", segment_ids.shape, segment_ids.dtype)
    return grad[_ids(segment_ids, grad.shape[0])]


@register_cpu("UnsortedSegmentMeanGradient")
def unsorted_segment_mean_gradient(grad, segment_ids, *, num_segments):
    index_vector("SEGMENT_IDS", segment_ids.shape, segment_ids.dtype)
    ids = _ids(segment_ids, grad.shape[0])
    counts = np.bincount(ids, minlength=grad.shape[0]).astype(grad.dtype)
    return grad[ids] / counts[ids].reshape(-1, *[1] * (grad.ndim - 1))


gradient_op("UnsortedSegmentSum", "GO0 I1")
gradient_op("UnsortedSegmentMean", "GO0 I1")
