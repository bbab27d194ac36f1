"""Kernels of the segment_reducer family (NumPy): reductions of DATA's slices
(or of its rows INDICES, the Sparse* ops: a Gather fused in) grouped by
SEGMENT_IDS, sorted (ids 0, 0, 1, 2, 2, ...: no gaps) or unsorted, and the
SortedSegmentRange reductions, with their gradient makers and gradient ops.

As Caffe2's makers do, a Sparse* op's gradient op is the SortedSegment*/
UnsortedSegment* one and DATA's gradient is sparse: one values row per entry of
INDICES (SetSparse), as the SparseLengths ops' (operators/lengths_reducer.py,
whose gathering and summing this module reuses).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import GradientError
from pycaffe2.files import check_alloc
from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.lengths_reducer import Rows, checked_indices, column, reduce_segments
from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.segment_reducer import (
    check_forward,
    check_gradient,
    forward_inputs,
    gradient_inputs,
    reduce_front_gradient_shape,
    reduce_front_shapes,
)

SUM_MEAN_WEIGHTED = ("Sum", "Mean", "WeightedSum")
RANGE_REDUCERS = ("Sum", "Mean", "Max", "LogSumExp", "LogMeanExp")

FORWARD_TYPES = ([f"{prefix}{r}" for prefix in ("SortedSegment", "SparseSortedSegment", "SparseUnsortedSegment")
                  for r in SUM_MEAN_WEIGHTED] + ["UnsortedSegmentWeightedSum"]
                 + [f"SortedSegmentRange{r}" for r in RANGE_REDUCERS])
# Caffe2 registers a gradient op under each forward op's name + "Gradient" (the Sparse* ones
# too, though its makers emit the SortedSegment*/UnsortedSegment* ones).
GRADIENT_TYPES = [f"{t}Gradient" for t in FORWARD_TYPES]



def sorted_ids(segment_ids, segments: int | None = None) -> np.ndarray:
    """SEGMENT_IDS as int64, checked to be sorted from 0 without gaps (and to end at
    `segments` - 1 when given)."""
    ids = segment_ids.astype(np.int64)
    if ids.size:
        steps = np.diff(ids)
        if ids[0] != 0 or ((steps != 0) & (steps != 1)).any():
            raise ValueError("SEGMENT_IDS must be sorted, start at 0 and not have gaps")
        if segments is not None and int(ids[-1]) != segments - 1:
            raise ValueError(f"the last segment id ({int(ids[-1])}) must be dOUTPUT's rows ({segments}) - 1")
    return ids


def unsorted_ids(segment_ids, num_segments: int, rows_like=None) -> tuple[np.ndarray, int]:
    """SEGMENT_IDS as int64 and the number of segments (num_segments, or the largest id + 1),
    each id checked to be in range and the output (rows like those of `rows_like`) to fit
    the blob cap."""
    ids = segment_ids.astype(np.int64)
    segments = num_segments if num_segments != -1 else int(ids.max(initial=-1)) + 1
    check_in_range(ids, segments, "segment id")
    if rows_like is not None:
        check_alloc((segments, *rows_like.shape[1:]), rows_like.dtype, f"the output of {segments} segments")
    return ids, segments


def _forward(op_type: str, inputs, num_segments: int = -1):
    """The rows to reduce, each one's segment, the counts per segment and the weights."""
    named = dict(zip(forward_inputs(op_type), inputs))
    check_forward(op_type, {k: info_of(v) for k, v in named.items()}, num_segments)
    data = named["DATA"]
    if "INDICES" in named:
        indices = checked_indices(named["INDICES"], data.shape[0])
        rows = Rows(lambda start, stop: data[indices[start:stop]], indices.size, data.shape[1:])
    else:
        rows = Rows(lambda start, stop: data[start:stop], data.shape[0], data.shape[1:])
    if "Unsorted" in op_type:
        ids, segments = unsorted_ids(named["SEGMENT_IDS"], num_segments, data)
    else:
        ids = sorted_ids(named["SEGMENT_IDS"])
        segments = int(ids[-1]) + 1 if ids.size else 0
    counts = np.bincount(ids, minlength=segments)
    return rows, ids, counts, named.get("SCALARS"), data.dtype


def segment_reduce(op_type: str, inputs, num_segments: int = -1) -> np.ndarray:
    rows, ids, counts, weights, dtype = _forward(op_type, inputs, num_segments)
    return reduce_segments(rows, ids, counts, weights, mean=op_type.endswith("Mean"), dtype=dtype)


def _register_forward(op_type: str) -> None:
    if "Unsorted" in op_type:
        if "WeightedSum" in op_type:
            @register_cpu(op_type)
            def kernel(*inputs, num_segments, grad_on_weights):
                return segment_reduce(op_type, inputs, num_segments)
        else:
            @register_cpu(op_type)
            def kernel(*inputs, num_segments):
                return segment_reduce(op_type, inputs, num_segments)
    elif "WeightedSum" in op_type:
        @register_cpu(op_type)
        def kernel(*inputs, grad_on_weights):
            return segment_reduce(op_type, inputs)
    else:
        @register_cpu(op_type)
        def kernel(*inputs):
            return segment_reduce(op_type, inputs)


for _type in FORWARD_TYPES:
    if not _type.startswith("SortedSegmentRange"):
        _register_forward(_type)


# -- SortedSegmentRange ------------------------------------------------------------------------------

def _segment_max(data, ids, segments: int) -> np.ndarray:
    out = np.full((segments, *data.shape[1:]), -np.inf, data.dtype)
    np.maximum.at(out, ids, data)
    return out


def segment_range(reducer: str, data, segment_ids) -> np.ndarray:
    """OUTPUT of SortedSegmentRange<reducer> (every segment holds a slice: no gaps)."""
    op_type = f"SortedSegmentRange{reducer}"
    rows, ids, counts, _, _ = _forward(op_type, [data, segment_ids])
    if reducer in ("Sum", "Mean"):
        return reduce_segments(rows, ids, counts, mean=reducer == "Mean", dtype=data.dtype)
    top = _segment_max(data, ids, counts.size)
    if reducer == "Max":
        return top
    shift = np.where(np.isfinite(top), top, np.zeros((), data.dtype))  # all -inf: log(0) = -inf
    sums = np.zeros_like(top)
    with np.errstate(over="ignore", invalid="ignore"):
        np.add.at(sums, ids, np.exp(data - shift[ids]))
        if reducer == "LogMeanExp":
            sums /= column(counts.astype(data.dtype), sums.ndim)
    with np.errstate(divide="ignore"):
        return (np.log(sums) + shift).astype(data.dtype)


def _register_range(reducer: str) -> None:
    @register_cpu(f"SortedSegmentRange{reducer}")
    def kernel(data, segment_ids):
        return segment_range(reducer, data, segment_ids)


for _reducer in RANGE_REDUCERS:
    _register_range(_reducer)


# -- gradients ---------------------------------------------------------------------------------------

def segment_gradient(op_type: str, inputs, num_segments: int = -1) -> np.ndarray:
    """dDATA (the values of the sparse one for the Sparse* ops): dOUTPUT[SEGMENT_IDS[i]],
    scaled as the reducer says."""
    named = dict(zip(gradient_inputs(op_type), inputs))
    check_gradient(op_type, {k: info_of(v) for k, v in named.items()})
    go = named["GO"]
    segments = go.shape[0]
    if "Unsorted" in op_type:
        ids, _ = unsorted_ids(named["SEGMENT_IDS"], segments)
    else:
        ids = sorted_ids(named["SEGMENT_IDS"], segments)
    rows = go[ids]
    reducer = op_type[:-len("Gradient")]
    if reducer.endswith("Mean"):
        counts = np.bincount(ids, minlength=segments).astype(go.dtype)
        rows = rows / column(counts[ids], rows.ndim)
    elif reducer.endswith("WeightedSum"):
        rows = rows * column(named["SCALARS"].astype(go.dtype), rows.ndim)
    elif reducer.endswith("Max"):
        data, out = named["DATA"], named["OUTPUT"]
        rows = np.where(data == out[ids], rows, np.zeros((), go.dtype))
    elif reducer.endswith("Exp"):
        data, out = named["DATA"], named["OUTPUT"]
        with np.errstate(over="ignore", invalid="ignore"):
            rows = rows * np.exp(data - out[ids])
        if reducer.endswith("LogMeanExp"):
            counts = np.bincount(ids, minlength=segments).astype(go.dtype)
            rows = rows / column(counts[ids], rows.ndim)
    return rows.astype(go.dtype, copy=False)


def _register_gradient_kernel(op_type: str) -> None:
    if "Unsorted" in op_type:
        if "WeightedSum" in op_type:
            @register_cpu(op_type)
            def kernel(*inputs, num_segments, grad_on_weights):
                return segment_gradient(op_type, inputs)
        else:
            @register_cpu(op_type)
            def kernel(*inputs, num_segments):
                return segment_gradient(op_type, inputs)
    elif "WeightedSum" in op_type:
        @register_cpu(op_type)
        def kernel(*inputs, grad_on_weights):
            return segment_gradient(op_type, inputs)
    else:
        @register_cpu(op_type)
        def kernel(*inputs):
            return segment_gradient(op_type, inputs)


for _type in GRADIENT_TYPES:
    _register_gradient_kernel(_type)


def _make_segment_gradient(g):
    """Caffe2's SegmentOpGetGradient: [(SCALARS), dOUTPUT, SEGMENT_IDS] -> dDATA, sparse for
    the Sparse* ops; no gradient for SCALARS (grad_on_weights is refused)."""
    op_type = g.op.type
    sparse = op_type.startswith("Sparse")
    base = op_type[len("Sparse"):] if sparse else op_type
    weighted = "WeightedSum" in op_type
    if weighted and g.arg("grad_on_weights"):
        raise GradientError("grad_on_weights is not implemented for the segment ops (as in Caffe2)")
    ids = g.I(len(forward_inputs(op_type)) - 1)
    inputs = ([g.I(1)] if weighted else []) + [g.GO(0), ids]
    if not sparse:
        return [g.Op(f"{base}Gradient", inputs, [g.GI(0)])]
    ops = [g.Op(f"{base}Gradient", inputs, [g.GI_V(0)])]
    g.SetSparse(0, g.I(len(forward_inputs(op_type)) - 2), g.GI_V(0))
    return ops


for _type in FORWARD_TYPES:
    if not _type.startswith("SortedSegmentRange"):
        register_gradient(_type)(_make_segment_gradient)


@register_gradient(*[f"SortedSegmentRange{r}" for r in RANGE_REDUCERS])
def _make_range_gradient(g):
    return [g.Op(f"{g.op.type}Gradient", [g.I(0), g.O(0), g.GO(0), g.I(1)], [g.GI(0)])]


# -- ReduceFrontWeightedSum --------------------------------------------------------------------------

@register_cpu("ReduceFrontWeightedSum")
def reduce_front_weighted_sum(data, scalars, *, num_reduce_dim, grad_on_weights):
    reduce_front_shapes(info_of(data), info_of(scalars), num_reduce_dim)
    inner = int(np.prod(data.shape[num_reduce_dim:], dtype=np.int64))
    blocks = data.reshape(int(np.prod(data.shape[:num_reduce_dim], dtype=np.int64)), inner)
    out = scalars.reshape(-1).astype(data.dtype) @ blocks
    return out.reshape(data.shape[num_reduce_dim:]).astype(data.dtype, copy=False)


@register_cpu("ReduceFrontWeightedSumGradient")
def reduce_front_weighted_sum_gradient(scalars, d_out, shape, *, num_reduce_dim, grad_on_weights):
    dims = reduce_front_gradient_shape(info_of(scalars), info_of(d_out), shape, num_reduce_dim)
    grads = scalars.reshape(-1, 1).astype(d_out.dtype) * d_out.reshape(1, -1)
    return grads.reshape(dims)


@register_gradient("ReduceFrontWeightedSum")
def _make_reduce_front_weighted_sum_gradient(g):
    """As Caffe2's: Shape(DATA) into a scratch blob, then the gradient op on (SCALARS, dOUTPUT, shape)."""
    if g.arg("grad_on_weights"):
        raise GradientError("grad_on_weights is not implemented for ReduceFrontWeightedSum (as in Caffe2)")
    dims = f"_{g.O(0)}_dims"
    return [g.Op("Shape", [g.I(0)], [dims], inherit_args=False),
            g.Op("ReduceFrontWeightedSumGradient", [g.I(1), g.GO(0), dims], [g.GI(0)])]
