"""Indexing kernels (NumPy): Slice and SliceGradient, Gather and SparseToDense,
each the other's gradient. Shape and arg checks are the family's inference
module's (schema/inference/indexing.py), called with the arrays' shapes; only
the checks of index values live here. The CUDA launchers (at the end) move
slices with tensor.cu's `move` and gather and scatter with indexing.cu; starts,
ends and indices are read on the host.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import (
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.operators.tensor import element_code, int_values, move, split_gradient, strides, sum_code, zeros
from pycaffe2.schema.inference.indexing import (
    dense_rows,
    gather_axis,
    gather_gradient_axis,
    gathered_dims,
    index_type,
    lengths_input,
    slice_gradient_dims,
    slice_index,
    slice_ranges,
    sliced_dims,
    split_by_lengths_axis,
)

# -- slices -------------------------------------------------------------------------


def _bounds(start_tensor, end_tensor, starts, ends):
    """starts and ends: from the inputs when given, else the args."""
    if start_tensor is None:
        return starts, ends
    return int_values(start_tensor, "starts"), int_values(end_tensor, "ends")


def _index(ranges) -> tuple:
    return tuple(slice(start, end) for start, end in ranges)


def slice_(data, start_tensor=None, end_tensor=None, *, starts, ends):
    """Caffe2's Slice (Int8Slice's too)."""
    starts, ends = _bounds(start_tensor, end_tensor, starts, ends)
    return data[_index(slice_ranges(data.shape, starts, ends))]


def _slice_spec(bound_tensors, starts, ends, axes, steps) -> tuple:
    """(starts, ends, axes, steps) from the inputs [starts, ends, [axes, [steps]]] when
    given, else the args."""
    if not bound_tensors:
        return starts, ends, axes, steps
    values = [int_values(t, name) for t, name in zip(bound_tensors, ("starts", "ends", "axes", "steps"))]
    return tuple(values) + (None,) * (4 - len(values))


@register_cpu("Slice")
def slice_op(data, *bound_tensors, starts, ends, axes, steps, bounds):
    spec = _slice_spec(bound_tensors, starts, ends, axes, steps)
    return np.ascontiguousarray(data[slice_index(data.shape, *spec, bounds)[0]])


@register_gradient("Slice")
def _slice_gradient(g):
    inputs = [g.I(i) for i in range(len(g.op.input))]
    return [g.Op("SliceGradient", [*inputs, g.GO(0)], [g.GI(0)])]  # the bound inputs get none


@register_cpu("SliceGradient")
def slice_gradient(data, *rest, starts, ends, axes, steps, bounds):
    """rest: [starts, ends, [axes, [steps,]]] dY."""
    dy = rest[-1]
    spec = _slice_spec(rest[:-1], starts, ends, axes, steps)
    dx = np.zeros(data.shape, dtype=dy.dtype)
    dx[slice_gradient_dims(data.shape, dy.shape, *spec, bounds)] = dy
    return dx


# -- gathers and scatters -------------------------------------------------------------

def _in_range(indices: np.ndarray, dim: int, where: str, wrap: bool) -> np.ndarray:
    """Indices (values) into a dim of size `dim`; with `wrap`, negatives count from the end
    (Caffe2's Gather does that; SparseToDense does not)."""
    bad = (indices < (-dim if wrap else 0)) | (indices >= dim)
    if bad.any():
        raise ValueError(f"index {int(indices[bad][0])} is out of range for {where} of size {dim}")
    return np.where(indices < 0, indices + dim, indices) if wrap else indices


def _gather_indices(data, indices: np.ndarray, axis, match_outer) -> tuple:
    """Gather's axis and its indices wrapped into [0, dim)."""
    index_type(indices.shape, indices.dtype.name)
    axis = gather_axis(data.shape, indices.shape, axis, match_outer)
    return axis, _in_range(indices, data.shape[axis], f"DATA axis {axis}", wrap=True)


@register_cpu("Gather", "BatchGather")
def gather(data, indices, *, axis, match_outer):
    axis, indices = _gather_indices(data, indices, axis, match_outer)
    if not match_outer:
        return np.take(data, indices, axis=axis)
    outer = int(np.prod(data.shape[:axis]))
    flat_data = data.reshape(outer, data.shape[axis], -1)
    flat_indices = indices.reshape(outer, -1, 1)
    out = np.take_along_axis(flat_data, flat_indices, axis=1)
    return out.reshape(gathered_dims(data.shape, indices.shape, axis, match_outer))


@register_gradient("Gather")
def _gather_gradient(g):
    # As Caffe2: along axis 0 DATA's gradient is sparse, rows INDICES with values dY
    # and no op, unless dense_gradient=1 asks SparseToDense for it. Other axes and
    # match_outer scatter densely with BatchGatherGradient.
    if g.arg("axis") != 0 or g.arg("match_outer"):
        return [g.Op("BatchGatherGradient", [g.I(0), g.I(1), g.GO(0)], [g.GI(0)], inherit_args=False,
                     axis=g.arg("axis"), match_outer=g.arg("match_outer"))]
    if g.arg("dense_gradient"):
        return [g.Op("SparseToDense", [g.I(1), g.GO(0), g.I(0)], [g.GI(0)], inherit_args=False)]
    g.SetSparse(0, g.I(1), g.GO(0))
    return []


gradient_op("BatchGather", "I0 I1 GO0")


@register_cpu("BatchGatherGradient")
def batch_gather_gradient(data, indices, dy, *, axis, match_outer):
    index_type(indices.shape, indices.dtype.name)
    axis = gather_gradient_axis(data.shape, indices.shape, dy.shape, axis, match_outer)
    indices = _in_range(indices, data.shape[axis], f"DATA axis {axis}", wrap=True)
    outer, inner = math.prod(data.shape[:axis]), math.prod(data.shape[axis + 1:])
    dx = np.zeros((outer, data.shape[axis], inner), dtype=dy.dtype)
    if dx.size and indices.size:
        # rows[o, k]: the index the k-th gathered entry of outer slice o read
        rows = indices.reshape(outer, -1) if match_outer else np.broadcast_to(indices.reshape(1, -1),
                                                                              (outer, indices.size))
        np.add.at(dx, (np.arange(outer)[:, None], rows), dy.reshape(outer, rows.shape[1], inner))
    return dx.reshape(data.shape)


def _dense_first_dim(indices: np.ndarray, values, like, output_first_dim) -> int:
    """SparseToDense's output first dim; without a shape for it, the largest index + 1."""
    index_type(indices.shape, indices.dtype.name)
    first = dense_rows(indices.shape, values.shape, None if like is None else like.shape,
                       like is not None, output_first_dim)
    if first is None:
        first = int(indices.max(initial=-1)) + 1
    _in_range(indices, first, "the output's first dim", wrap=False)
    return first


def _rows(indices, values):
    """Indices flattened and values as one row per index (N-D indices: a Gather's gradient)."""
    return indices.reshape(-1), values.reshape((indices.size,) + values.shape[indices.ndim:])


@register_cpu("SparseToDense")
def sparse_to_dense(indices, values, like=None, *, output_first_dim):
    first = _dense_first_dim(indices, values, like, output_first_dim)
    indices, values = _rows(indices, values)
    out = np.zeros((first,) + values.shape[1:], dtype=values.dtype)
    np.add.at(out, indices, values)  # repeated indices add up
    return out


# Gather dY at the indices: the gradient of values (indices and the shape input get none).
gradient_op("SparseToDense", "GO0 I0", "GI1", gradient_type="Gather")


# -- segments given by lengths ------------------------------------------------------

def segment_offsets(lengths, total: int, what: str) -> np.ndarray:
    """Offsets [0, l0, l0 + l1, ...] of nonnegative lengths adding up to `total`."""
    lengths_input(lengths.shape, lengths.dtype.name)
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {int(lengths.min())}")
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    if offsets[-1] != total:
        raise ValueError(f"lengths add up to {int(offsets[-1])}, but {what} has size {total}")
    return offsets


@register_cpu("LengthsGather")
def lengths_gather(items, lengths, indices):
    index_type(indices.shape, indices.dtype.name)
    if not items.shape:
        raise ValueError("ITEMS must have rank >= 1")
    offsets = segment_offsets(lengths, items.shape[0], "ITEMS' first dim")
    picked = _in_range(indices.ravel(), len(lengths), "LENGTHS", wrap=False)
    rows = [np.arange(offsets[i], offsets[i + 1]) for i in picked]
    return items[np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)]


@register_cpu("LengthsToRanges")
def lengths_to_ranges(lengths):
    lengths_input(lengths.shape, lengths.dtype.name)
    offsets = np.cumsum(lengths) - lengths
    return np.stack([offsets, lengths], axis=1).astype(np.int32).reshape(len(lengths), 2)


@register_cpu("SplitByLengths")
def split_by_lengths(data, lengths, *, axis, num_outputs):
    lengths_input(lengths.shape, lengths.dtype.name)
    axis = split_by_lengths_axis(data.shape, axis, len(lengths), num_outputs)
    offsets = segment_offsets(lengths, data.shape[axis], f"axis {axis}")
    group = len(lengths) // num_outputs
    bounds = offsets[::group] if group else np.zeros(num_outputs + 1, np.int64)
    return tuple(np.take(data, np.arange(bounds[k], bounds[k + 1]), axis=axis) for k in range(num_outputs))


@register_gradient("SplitByLengths")
def _split_by_lengths_gradient(g):
    # Split's: Concat the parts' gradients (zeros where none), along this op's axis.
    return split_gradient(g, axis=g.arg("axis"))


# -- CUDA launchers (tensor.cu's move and zero, indexing.cu) ------------------------------

def _offset(ranges, dims) -> int:
    return sum(start * stride for (start, _), stride in zip(ranges, strides(dims)))


def _caffe2_bounds_only(bound_tensors, axes, steps, bounds) -> None:
    """The CUDA kernels slice under Caffe2's rule only."""
    if bounds != "caffe2" or axes is not None or steps is not None or len(bound_tensors) > 2:
        raise ValueError("the CUDA Slice takes Caffe2's bounds only (no axes, steps or bounds 'onnx'); "
                         "run it on the CPU")


@register_cuda("Slice")
def slice_cuda(data, *bound_tensors, starts, ends, axes, steps, bounds):
    _caffe2_bounds_only(bound_tensors, axes, steps, bounds)
    data = cuda.as_gpu(data)
    starts, ends = _bounds(*(bound_tensors or (None, None)), starts, ends)
    ranges = slice_ranges(data.shape, starts, ends)
    y = cuda.empty(sliced_dims(data.shape, ranges), data.dtype)
    move(data, y, y.shape, strides(data.shape), strides(y.shape), x_base=_offset(ranges, data.shape))
    return y


@register_cuda("SliceGradient")
def slice_gradient_cuda(data, *rest, starts, ends, axes, steps, bounds):
    _caffe2_bounds_only(rest[:-1], axes, steps, bounds)
    dy = cuda.as_gpu(rest[-1])
    starts, ends = _bounds(*(rest[:-1] or (None, None)), starts, ends)
    slice_gradient_dims(data.shape, dy.shape, starts, ends)
    ranges = slice_ranges(data.shape, starts, ends)
    dx = zeros(data.shape, dy.dtype)
    move(dy, dx, dy.shape, strides(dy.shape), strides(data.shape), y_base=_offset(ranges, data.shape))
    return dx


@register_cuda("Gather", "BatchGather")
def gather_cuda(data, indices, *, axis, match_outer):
    data = cuda.as_gpu(data)
    axis, indices = _gather_indices(data, cuda.copy_to_cpu(indices), axis, match_outer)
    kept = indices.shape[axis if match_outer else 0:]  # match_outer: INDICES' outer dims are DATA's
    y = cuda.empty(gathered_dims(data.shape, indices.shape, axis, match_outer), data.dtype)
    count = math.prod(kept)
    if y.size:
        cuda.launch("indexing.cu", f"gather_{element_code(data)}", y.size, data,
                    cuda.as_gpu(indices.astype(np.int64)), y, np.int64(count), np.int64(data.shape[axis]),
                    np.int64(math.prod(data.shape[axis + 1:])), np.int64(count if match_outer else 0),
                    np.int64(y.size))
    return y


@register_cuda("SparseToDense")
def sparse_to_dense_cuda(indices, values, like=None, *, output_first_dim):
    values, indices = cuda.as_gpu(values), cuda.copy_to_cpu(indices)
    first = _dense_first_dim(indices, values, like, output_first_dim)
    rows = values.shape[indices.ndim:]  # values stay as they are: the kernel reads them flat
    indices = indices.reshape(-1)
    out = cuda.empty((first,) + rows, values.dtype)
    # Each output row sums its values rows in input order: no atomics, as np.add.at.
    order = np.argsort(indices, kind="stable").astype(np.int64)
    row_start = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=first))]).astype(np.int64)
    if out.size:
        cuda.launch("indexing.cu", f"sparse_to_dense_{sum_code(values)}", out.size,
                    values if values.size else cuda.NULL, cuda.as_gpu(order) if order.size else cuda.NULL,
                    cuda.as_gpu(row_start), out, np.int64(math.prod(rows)), np.int64(out.size))
    return out
