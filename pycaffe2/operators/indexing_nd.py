"""NumPy kernels of the indexing_nd family: ONNX's element-wise and N-D gathers and
scatters (GatherElements, GatherND, ScatterElements, ScatterND, TensorScatter) and the
gathers' gradients, which scatter-add dY into zeros. Shape checks are the family's
inference module's; the checks of index values (in range, negatives counting from the
end) are here.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.errors import GradientError
from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference.indexing import index_type
from pycaffe2.schema.inference.indexing_nd import (
    differentiable_reduction,
    elements_axis,
    gather_elements_gradient_check,
    gather_nd_dims,
    gather_nd_gradient_check,
    same_type,
    scatter_elements_check,
    scatter_nd_check,
    tensor_scatter_check,
)

# reduction name -> the ufunc whose .at applies it (repeated indices combine)
REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def wrapped(indices: np.ndarray, dim, what: str) -> np.ndarray:
    """Indices into a dim of size `dim` (an int, or an array broadcasting with them), as
    int64; negatives count from the end, as ONNX's do."""
    indices = indices.astype(np.int64)
    bad = (indices < -dim) | (indices >= dim)
    if np.any(bad):
        first = np.argwhere(bad)[0]
        size = dim if np.isscalar(dim) else np.broadcast_to(dim, indices.shape)[tuple(first)]
        raise ValueError(f"index {int(indices[tuple(first)])} is out of range for {what} of size {int(size)}")
    return np.where(indices < 0, indices + dim, indices)


def _element_index(data_shape, indices: np.ndarray, axis: int) -> tuple:
    """The full index tuple of GatherElements/ScatterElements: INDICES along axis, each
    entry's own position along the other dims."""
    index = list(np.indices(indices.shape, sparse=True))
    index[axis] = wrapped(indices, data_shape[axis], f"DATA axis {axis}")
    return tuple(index)


@register_cpu("GatherElements")
def gather_elements(data, indices, *, axis):
    index_type(indices.shape, indices.dtype.name)
    axis = elements_axis(data.shape, indices.shape, axis)
    return data[_element_index(data.shape, indices, axis)]


gradient_op("GatherElements", "I0 I1 GO0")


@register_cpu("GatherElementsGradient")
def gather_elements_gradient(data, indices, dy, *, axis):
    index_type(indices.shape, indices.dtype.name)
    axis = gather_elements_gradient_check(data.shape, indices.shape, dy.shape, axis)
    dx = np.zeros(data.shape, dy.dtype)
    np.add.at(dx, _element_index(data.shape, indices, axis), dy)
    return dx


def _nd_index(data_shape, indices: np.ndarray, batch_dims: int) -> tuple:
    """GatherND's index into DATA viewed as [batch, dims...]: (batch row, i0, i1, ...),
    each shaped [batch, picks]."""
    depth = indices.shape[-1]
    batch = math.prod(data_shape[:batch_dims])
    picks = indices.reshape(batch, -1, depth)
    dims = np.array(data_shape[batch_dims:batch_dims + depth], np.int64)
    picks = wrapped(picks, dims, "DATA")
    return (np.arange(batch)[:, None],) + tuple(picks[..., k] for k in range(depth))


def _batched(data, batch_dims: int):
    return data.reshape((math.prod(data.shape[:batch_dims]),) + data.shape[batch_dims:])


@register_cpu("GatherND")
def gather_nd(data, indices, *, batch_dims):
    index_type(indices.shape, indices.dtype.name)
    out_shape = gather_nd_dims(data.shape, indices.shape, batch_dims)
    picked = _batched(data, batch_dims)[_nd_index(data.shape, indices, batch_dims)]
    return picked.reshape(out_shape)


gradient_op("GatherND", "I0 I1 GO0")


@register_cpu("GatherNDGradient")
def gather_nd_gradient(data, indices, dy, *, batch_dims):
    index_type(indices.shape, indices.dtype.name)
    gather_nd_gradient_check(data.shape, indices.shape, dy.shape, batch_dims)
    dx = np.zeros(_batched(data, batch_dims).shape, dy.dtype)
    index = _nd_index(data.shape, indices, batch_dims)
    np.add.at(dx, index, dy.reshape(index[1].shape + dx.shape[1 + indices.shape[-1]:]))
    return dx.reshape(data.shape)


def _scatter(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        out[index] = updates  # repeated indices: the last write wins (ONNX leaves it undefined)
    else:
        REDUCTIONS[reduction].at(out, index, updates)
    return out


@register_cpu("ScatterElements")
def scatter_elements(data, indices, updates, *, axis, reduction):
    index_type(indices.shape, indices.dtype.name)
    axis = scatter_elements_check(data.shape, indices.shape, updates.shape, axis)
    same_type(data.dtype.name, updates.dtype.name, "UPDATES", "DATA")
    return _scatter(data.copy(), _element_index(data.shape, indices, axis), updates, reduction)


@register_cpu("ScatterND")
def scatter_nd(data, indices, updates, *, reduction):
    index_type(indices.shape, indices.dtype.name)
    scatter_nd_check(data.shape, indices.shape, updates.shape)
    same_type(data.dtype.name, updates.dtype.name, "UPDATES", "DATA")
    depth = indices.shape[-1]
    picks = wrapped(indices, np.array(data.shape[:depth], np.int64), "DATA")
    index = tuple(picks[..., k] for k in range(depth))
    return _scatter(data.copy(), index, updates, reduction)


def _scatter_gradient(g, gradient_type: str) -> list:
    if g.arg("reduction") not in ("none", "add"):
        raise GradientError(f"the gradient of {g.op.type} with reduction '{g.arg('reduction')}' is not "
                            "implemented (none and add are)")
    return [g.Op(gradient_type, [g.GO(0), g.I(1)], [g.GI(0), g.GI(2)])]


@register_gradient("ScatterElements")
def _scatter_elements_gradient(g):
    return _scatter_gradient(g, "ScatterElementsGradient")


@register_gradient("ScatterND")
def _scatter_nd_gradient(g):
    return _scatter_gradient(g, "ScatterNDGradient")


def _zeroed_at(dy, index: tuple, reduction: str):
    """dDATA: dY, less what the updates replaced under reduction none."""
    dx = dy.copy()
    if reduction == "none":
        dx[index] = 0
    return dx


@register_cpu("ScatterElementsGradient")
def scatter_elements_gradient(dy, indices, *, axis, reduction):
    differentiable_reduction(reduction)
    index_type(indices.shape, indices.dtype.name)
    axis = elements_axis(dy.shape, indices.shape, axis)
    index = _element_index(dy.shape, indices, axis)
    return _zeroed_at(dy, index, reduction), dy[index]


@register_cpu("ScatterNDGradient")
def scatter_nd_gradient(dy, indices, *, reduction):
    differentiable_reduction(reduction)
    index_type(indices.shape, indices.dtype.name)
    gather_nd_dims(dy.shape, indices.shape, 0)
    picks = wrapped(indices, np.array(dy.shape[:indices.shape[-1]], np.int64), "DATA")
    index = tuple(picks[..., k] for k in range(indices.shape[-1]))
    return _zeroed_at(dy, index, reduction), dy[index]


@register_cpu("TensorScatter")
def tensor_scatter(past, update, write_indices=None, *, axis, mode):
    if write_indices is not None:
        index_type(write_indices.shape, write_indices.dtype.name)
    same_type(past.dtype.name, update.dtype.name, "UPDATE", "PAST")
    axis = tensor_scatter_check(past.shape, update.shape,
                                None if write_indices is None else write_indices.shape, axis)
    batch, length, count = past.shape[0], past.shape[axis], update.shape[axis]
    starts = np.zeros(batch, np.int64) if write_indices is None else write_indices.astype(np.int64)
    check_in_range(starts, length, "write index")
    positions = starts[:, None] + np.arange(count)  # [batch, count] along the axis
    if mode == "circular":
        positions %= max(length, 1)
    elif positions.size and positions.max() >= length:
        raise ValueError(f"write index {int(starts[positions.max(axis=1).argmax()])} + {count} updates "
                         f"run past the sequence axis of length {length} (mode 'linear')")
    out = past.copy()
    view, rows = np.moveaxis(out, axis, -1), np.moveaxis(update, axis, -1)  # views: writes reach out
    for b in range(batch):
        view[b][..., positions[b]] = rows[b]  # view[b] is a view: one advanced index keeps its place
    return out
