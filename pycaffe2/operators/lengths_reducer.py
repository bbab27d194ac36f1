"""Kernels of the lengths_reducer family: Lengths{Sum,Mean,Max,WeightedSum} and
SparseLengths{Sum,Mean,WeightedSum,PositionalWeightedSum} (NumPy, and CUDA for
LengthsSum, SparseLengths{Sum,Mean,WeightedSum} and their gradients), with the
gradient makers and gradient ops.

A segment is a run of consecutive slices (Lengths*) or of consecutive indices
into DATA's rows (SparseLengths*); segment k holds LENGTHS[k] of them. The
gradient of a SparseLengths op's DATA is sparse as Gather's: rows INDICES get
one values row each (SetSparse), with no op scattering them.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.lengths_reducer import (
    GRADIENT_INPUTS,
    check_forward,
    check_gradient,
    forward_inputs,
    output_dtype,
)
from pycaffe2.schema.inference.segment import index_vector


def segment_ids(lengths, count: int | None, counted: str, rows_like=None) -> tuple[np.ndarray, np.ndarray]:
    """(segment of each slice or index, LENGTHS as int64), checking that LENGTHS are
    non-negative and sum to `count` (None: any sum whose output, rows like those of
    `rows_like`, fits the blob cap)."""
    index_vector("LENGTHS", lengths.shape, lengths.dtype.name)
    lengths = lengths.astype(np.int64)
    if (lengths < 0).any():
        raise ValueError(f"LENGTHS must be non-negative, got {int(lengths[lengths < 0][0])}")
    total = int(lengths.sum(dtype=np.float64)) if lengths.size else 0  # float64: no wraparound
    if count is not None and total != count:
        raise ValueError(f"the sum of LENGTHS ({total}) must equal the number of {counted} ({count})")
    if count is None:  # the sum sizes the output (and the ids below): it comes from the file
        check_alloc((total,), "int64", "the segment ids")
        check_alloc((total, *rows_like.shape[1:]), rows_like.dtype)
    return np.repeat(np.arange(lengths.size), lengths), lengths


def checked_indices(indices, rows: int) -> np.ndarray:
    """INDICES as int64, each checked to name one of DATA's `rows` rows."""
    index_vector("INDICES", indices.shape, indices.dtype.name)
    bad = (indices < 0) | (indices >= rows)
    if bad.any():
        at = int(np.argmax(bad))
        raise ValueError(f"INDICES[{at}] = {int(indices[at])} is out of range for DATA with {rows} rows")
    return indices.astype(np.int64)


def column(values, ndim: int) -> np.ndarray:
    """A per-row vector shaped to broadcast over rows of rank `ndim`."""
    return values.reshape(-1, *[1] * (ndim - 1))


CHUNK_ELEMENTS = 1 << 22  # rows gathered at a time: bounded memory whatever the number of indices


class Rows:
    """The rows a reduction reads, made `CHUNK_ELEMENTS` at a time: `take(start, stop)`
    gives the rows of entries start..stop (a gather, a de-quantization) of `shape[1:]`."""

    def __init__(self, take, count: int, row_shape: tuple):
        self.take, self.count, self.row_shape = take, count, tuple(row_shape)

    def chunks(self):
        step = max(1, CHUNK_ELEMENTS // max(1, int(np.prod(self.row_shape, dtype=np.int64))))
        for start in range(0, self.count, step):
            stop = min(self.count, start + step)
            yield start, stop, self.take(start, stop)


def reduce_segments(rows: Rows, seg, lengths, weights=None, mean=False, dtype=np.float32) -> np.ndarray:
    """Sum (or mean) of the rows of each segment, weighted by `weights` when given."""
    out = np.zeros((lengths.size, *rows.row_shape), dtype)
    for start, stop, chunk in rows.chunks():
        chunk = chunk.astype(dtype, copy=False)
        if weights is not None:
            chunk = chunk * column(weights[start:stop].astype(dtype, copy=False), chunk.ndim)
        np.add.at(out, seg[start:stop], chunk)
    if mean:
        out /= column(np.maximum(lengths, 1).astype(dtype), out.ndim)
    return out


def _forward(op_type: str, inputs, positional: bool = False):
    names = forward_inputs(op_type)
    named = dict(zip(names, inputs))
    check_forward(op_type, {k: info_of(v) for k, v in named.items()})
    data, lengths = named["DATA"], named["LENGTHS"]
    weights = named.get("W")
    if "INDICES" in named:
        indices = checked_indices(named["INDICES"], data.shape[0])
        seg, lengths = segment_ids(lengths, indices.size, "INDICES")
        rows = Rows(lambda start, stop: data[indices[start:stop]], indices.size, data.shape[1:])
    else:
        seg, lengths = segment_ids(lengths, data.shape[0], "slices of DATA")
        rows = Rows(lambda start, stop: data[start:stop], data.shape[0], data.shape[1:])
    if positional:
        positions = np.arange(seg.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        if lengths.size and int(lengths.max()) > weights.shape[0]:
            raise ValueError(f"WEIGHT has {weights.shape[0]} entries, fewer than the longest segment "
                             f"({int(lengths.max())})")
        weights = weights[positions]
    return rows, seg, lengths, weights, output_dtype(data.dtype)


@register_cpu("LengthsSum")
def lengths_sum(data, lengths):
    rows, seg, lengths, _, dtype = _forward("LengthsSum", [data, lengths])
    return reduce_segments(rows, seg, lengths, dtype=dtype)


@register_cpu("LengthsMean")
def lengths_mean(data, lengths):
    rows, seg, lengths, _, dtype = _forward("LengthsMean", [data, lengths])
    return reduce_segments(rows, seg, lengths, mean=True, dtype=dtype)


@register_cpu("LengthsMax")
def lengths_max(data, lengths):
    _, seg, lengths, _, dtype = _forward("LengthsMax", [data, lengths])
    out = np.full((lengths.size, *data.shape[1:]), -np.inf, dtype)
    np.maximum.at(out, seg, data)
    out[lengths == 0] = 0  # as Caffe2: an empty segment gives zeros
    return out


@register_cpu("LengthsWeightedSum")
def lengths_weighted_sum(data, scalars, lengths, *, grad_on_weights):
    rows, seg, lengths, weights, dtype = _forward("LengthsWeightedSum", [data, scalars, lengths])
    return reduce_segments(rows, seg, lengths, weights, dtype=dtype)


@register_cpu("SparseLengthsSum")
def sparse_lengths_sum(data, indices, lengths):
    rows, seg, lengths, _, dtype = _forward("SparseLengthsSum", [data, indices, lengths])
    return reduce_segments(rows, seg, lengths, dtype=dtype)


@register_cpu("SparseLengthsMean")
def sparse_lengths_mean(data, indices, lengths):
    rows, seg, lengths, _, dtype = _forward("SparseLengthsMean", [data, indices, lengths])
    return reduce_segments(rows, seg, lengths, mean=True, dtype=dtype)


@register_cpu("SparseLengthsWeightedSum")
def sparse_lengths_weighted_sum(data, weights, indices, lengths, *, grad_on_weights):
    rows, seg, lengths, weights, dtype = _forward("SparseLengthsWeightedSum", [data, weights, indices, lengths])
    return reduce_segments(rows, seg, lengths, weights, dtype=dtype)


@register_cpu("SparseLengthsPositionalWeightedSum")
def sparse_lengths_positional_weighted_sum(data, weight, indices, lengths):
    rows, seg, lengths, weights, dtype = _forward("SparseLengthsPositionalWeightedSum",
                                                  [data, weight, indices, lengths], positional=True)
    return reduce_segments(rows, seg, lengths, weights, dtype=dtype)


# -- gradients ---------------------------------------------------------------------------------------

def _gradient_args(op_type: str, inputs):
    named = dict(zip(GRADIENT_INPUTS[op_type], inputs))
    check_gradient(op_type, {k: info_of(v) for k, v in named.items()})
    if "INDICES" in named:
        count, counted = named["INDICES"].size, "INDICES"
    elif "DATA" in named:
        count, counted = named["DATA"].shape[0], "slices of DATA"
    elif "W" in named:
        count, counted = named["W"].shape[0], "weights"
    else:
        count, counted = None, ""
    seg, lengths = segment_ids(named["LENGTHS"], count, counted, named["GO"])
    return named, seg, lengths


def lengths_gradient(op_type: str, inputs, num_outputs: int):
    """dDATA (or the values of its sparse gradient), and dW for the WithMainInput ops."""
    named, seg, lengths = _gradient_args(op_type, inputs)
    go = named["GO"]
    rows = go[seg]
    if "Mean" in op_type:
        rows = rows / column(lengths[seg].astype(go.dtype), rows.ndim)
    if "Max" in op_type:
        data, out = named["DATA"], named["OUT"]
        rows = np.where(data == out[seg], rows, np.zeros((), go.dtype))
    if "W" in named:
        weights = named["W"]
        d_data = rows * column(weights.astype(go.dtype), rows.ndim)
        if num_outputs < 2:
            return d_data
        data = named["DATA"]
        if "INDICES" in named:
            data = data[checked_indices(named["INDICES"], data.shape[0])]
        d_weights = (rows * data).sum(axis=tuple(range(1, rows.ndim))).astype(weights.dtype)
        return d_data, d_weights
    return rows


def _register_gradient_kernel(op_type: str) -> None:
    @register_cpu(op_type)
    def kernel(*inputs, num_outputs):
        return lengths_gradient(op_type, inputs, num_outputs)


for _type in GRADIENT_INPUTS:
    _register_gradient_kernel(_type)


@register_gradient("LengthsSum", "LengthsMean")
def _make_lengths_gradient(g):
    reducer = g.op.type[len("Lengths"):]
    return [g.Op(f"LengthsIndicesInGradient{reducer}Gradient", [g.GO(0), g.I(1), g.I(0)], [g.GI(0)])]


@register_gradient("LengthsMax")
def _make_lengths_max_gradient(g):
    return [g.Op("LengthsMaxWithMainInputAndForwardOutputGradient", [g.O(0), g.GO(0), g.I(1), g.I(0)],
                 [g.GI(0)])]


@register_gradient("LengthsWeightedSum")
def _make_lengths_weighted_sum_gradient(g):
    if g.arg("grad_on_weights"):
        return [g.Op("LengthsWeightedSumWithMainInputGradient", [g.I(1), g.GO(0), g.I(2), g.I(0)],
                     [g.GI(0), g.GI(1)])]
    return [g.Op("LengthsWeightedSumGradient", [g.I(1), g.GO(0), g.I(2)], [g.GI(0)])]


@register_gradient("SparseLengthsSum", "SparseLengthsMean")
def _make_sparse_lengths_gradient(g):
    reducer = g.op.type[len("SparseLengths"):]
    ops = [g.Op(f"SparseLengthsIndicesInGradient{reducer}Gradient", [g.GO(0), g.I(2), g.I(1)], [g.GI_V(0)])]
    g.SetSparse(0, g.I(1), g.GI_V(0))
    return ops


@register_gradient("SparseLengthsWeightedSum")
def _make_sparse_lengths_weighted_sum_gradient(g):
    if g.arg("grad_on_weights"):
        ops = [g.Op("SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient",
                    [g.I(1), g.GO(0), g.I(3), g.I(0), g.I(2)], [g.GI_V(0), g.GI(1)])]
    else:
        ops = [g.Op("SparseLengthsIndicesInGradientWeightedSumGradient", [g.I(1), g.GO(0), g.I(3), g.I(2)],
                    [g.GI_V(0)])]
    g.SetSparse(0, g.I(2), g.GI_V(0))
    return ops


# -- CUDA --------------------------------------------------------------------------------------------

def _cuda_reduce(op_type: str, inputs, mean: bool):
    """One launch of lengths_reducer.cu's reduce over the segments (float32 only)."""
    host = [cuda.copy_to_cpu(v) if name != "DATA" and name != "W" else v
            for name, v in zip(forward_inputs(op_type), inputs)]
    named = dict(zip(forward_inputs(op_type), host))
    data = cuda.as_gpu(named["DATA"])
    cuda.require_float32(data)
    weights = cuda.as_gpu(named["W"]) if "W" in named else None
    if weights is not None:
        cuda.require_float32(weights)
    check_forward(op_type, {k: info_of(v) for k, v in named.items()})
    if "INDICES" in named:
        indices = checked_indices(named["INDICES"], data.shape[0])
        _, lengths = segment_ids(named["LENGTHS"], indices.size, "INDICES")
    else:
        indices = None
        _, lengths = segment_ids(named["LENGTHS"], data.shape[0], "slices of DATA")
    inner = int(np.prod(data.shape[1:], dtype=np.int64))
    out = cuda.empty((lengths.size, *data.shape[1:]), np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if out.size:
        cuda.launch("lengths_reducer.cu", "lengths_reduce", out.size, data if data.size else cuda.NULL,
                    cuda.as_gpu(indices) if indices is not None and indices.size else cuda.NULL,
                    weights if weights is not None and weights.size else cuda.NULL,
                    cuda.as_gpu(offsets), out, np.int64(inner), np.int32(mean), np.int64(out.size))
    return out


@register_cuda("LengthsSum")
def lengths_sum_cuda(data, lengths):
    return _cuda_reduce("LengthsSum", [data, lengths], mean=False)


@register_cuda("SparseLengthsSum")
def sparse_lengths_sum_cuda(data, indices, lengths):
    return _cuda_reduce("SparseLengthsSum", [data, indices, lengths], mean=False)


@register_cuda("SparseLengthsMean")
def sparse_lengths_mean_cuda(data, indices, lengths):
    return _cuda_reduce("SparseLengthsMean", [data, indices, lengths], mean=True)


@register_cuda("SparseLengthsWeightedSum")
def sparse_lengths_weighted_sum_cuda(data, weights, indices, lengths, *, grad_on_weights):
    return _cuda_reduce("SparseLengthsWeightedSum", [data, weights, indices, lengths], mean=False)


def _cuda_gradient(op_type: str, inputs):
    """dOUTPUT[seg] (scaled): the values rows of a SparseLengthsIndicesInGradient*Gradient, or
    LengthsSum's dense dDATA."""
    names = GRADIENT_INPUTS[op_type]
    named = {name: (cuda.copy_to_cpu(v) if name in ("LENGTHS", "INDICES") else cuda.as_gpu(v))
             for name, v in zip(names, inputs)}
    go = named["GO"]
    cuda.require_float32(go, *([named["W"]] if "W" in named else []))
    check_gradient(op_type, {k: info_of(v) for k, v in named.items()})
    if "INDICES" in named:
        seg, lengths = segment_ids(named["LENGTHS"], named["INDICES"].size, "INDICES")
    else:
        seg, lengths = segment_ids(named["LENGTHS"], named["DATA"].shape[0], "slices of DATA")
    inner = int(np.prod(go.shape[1:], dtype=np.int64))
    out = cuda.empty((seg.size, *go.shape[1:]), np.float32)
    if out.size:
        scale = (1.0 / np.maximum(lengths, 1))[seg].astype(np.float32) if "Mean" in op_type else None
        cuda.launch("lengths_reducer.cu", "lengths_expand", out.size, go, cuda.as_gpu(seg.astype(np.int64)),
                    named.get("W", cuda.NULL),
                    cuda.as_gpu(scale) if scale is not None else cuda.NULL, out, np.int64(inner),
                    np.int64(out.size))
    return out


def _register_cuda_gradient(op_type: str) -> None:
    @register_cuda(op_type)
    def kernel(*inputs):
        return _cuda_gradient(op_type, inputs)


for _type in ("SparseLengthsIndicesInGradientSumGradient", "SparseLengthsIndicesInGradientMeanGradient",
              "SparseLengthsIndicesInGradientWeightedSumGradient", "LengthsIndicesInGradientSumGradient"):
    _register_cuda_gradient(_type)

