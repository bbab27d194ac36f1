"""Inference rules of the indexing_nd family (GatherElements, GatherND, ScatterElements,
ScatterND, TensorScatter and the gathers' gradients), and the shape checks its kernels
share with them. Checks of index values need the data and stay in the kernels
(operators/indexing_nd.py).
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.indexing import index_type
from pycaffe2.schema.inference.tensor import axis_index


def elements_axis(data: tuple, indices: tuple, axis: int, what: str = "INDICES") -> int:
    """GatherElements' / ScatterElements' axis; INDICES have DATA's rank and fit in
    it off the axis."""
    if not data:
        raise ShapeError(f"DATA must have rank >= 1, got {list(data)}")
    axis = axis_index(axis, len(data), where=f"DATA {list(data)}")
    if len(indices) != len(data):
        raise ShapeError(f"{what} {list(indices)} must have DATA's rank {len(data)}")
    if any(i > d for k, (i, d) in enumerate(zip(indices, data)) if k != axis):
        raise ShapeError(f"{what} {list(indices)} must fit in DATA {list(data)} off axis {axis}")
    return axis


def same_type(dtype: str, other: str, what: str, like: str) -> None:
    if str(other) != str(dtype):
        raise ShapeError(f"{what} ({other}) must have {like}'s type {dtype}")


def _same(a: tuple, b: tuple, what: str, like: str) -> None:
    if tuple(a) != tuple(b):
        raise ShapeError(f"{what} {list(a)} must have {like} {list(b)}")


@rule("indexing_nd_gather_elements")
def gather_elements(op: OpView, inputs: list) -> list:
    """GatherElements: INDICES' shape, DATA's type."""
    data, indices = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if data is None or indices is None:
        return [None]
    elements_axis(data.shape, indices.shape, op.arg("axis"))
    return [TensorInfo(indices.shape, data.dtype)]


def _gather_gradient(inputs: list, check, arg) -> list:
    """A gather's gradient: dDATA like DATA, of dY's type, once `check` accepts the shapes."""
    data, indices, dy = inputs
    if data is None or dy is None:
        return [None]
    if indices is not None:
        index_type(indices.shape, indices.dtype)
        check(data.shape, indices.shape, dy.shape, arg)
    return [TensorInfo(data.shape, dy.dtype)]


@rule("indexing_nd_gather_elements_gradient")
def gather_elements_gradient(op: OpView, inputs: list) -> list:
    """GatherElementsGradient: dY of INDICES' shape."""
    return _gather_gradient(inputs, gather_elements_gradient_check, op.arg("axis"))


def gather_nd_dims(data: tuple, indices: tuple, batch_dims: int) -> tuple:
    """GatherND's output shape: INDICES' dims but the last, then DATA's dims after the
    batch dims and the indexed ones."""
    if batch_dims < 0:
        raise ShapeError(f"batch_dims must be >= 0, got {batch_dims}")
    if len(indices) < 1 or len(data) < 1:
        raise ShapeError(f"DATA {list(data)} and INDICES {list(indices)} must have rank >= 1")
    depth = indices[-1]
    if batch_dims >= min(len(data), len(indices)):
        raise ShapeError(f"batch_dims {batch_dims} must be less than the ranks of DATA {list(data)} "
                         f"and INDICES {list(indices)}")
    if tuple(data[:batch_dims]) != tuple(indices[:batch_dims]):
        raise ShapeError(f"the first {batch_dims} dims of DATA {list(data)} and INDICES "
                         f"{list(indices)} must agree")
    if depth < 1 or depth > len(data) - batch_dims:
        raise ShapeError(f"INDICES' last dim {depth} must be in [1, DATA {list(data)}'s rank less "
                         f"batch_dims {batch_dims}]")
    return tuple(indices[:-1]) + tuple(data[batch_dims + depth:])


@rule("indexing_nd_gather_nd")
def gather_nd(op: OpView, inputs: list) -> list:
    """GatherND: INDICES[:-1] + DATA[batch_dims + INDICES[-1]:]."""
    data, indices = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if data is None or indices is None:
        return [None]
    return [TensorInfo(gather_nd_dims(data.shape, indices.shape, op.arg("batch_dims")), data.dtype)]


def gather_nd_gradient_check(data: tuple, indices: tuple, dy: tuple, batch_dims: int) -> None:
    _same(dy, gather_nd_dims(data, indices, batch_dims), "dY", "the gathered shape")


def gather_elements_gradient_check(data: tuple, indices: tuple, dy: tuple, axis: int) -> int:
    axis = elements_axis(data, indices, axis)
    _same(dy, indices, "dY", "INDICES' shape")
    return axis


@rule("indexing_nd_gather_nd_gradient")
def gather_nd_gradient(op: OpView, inputs: list) -> list:
    """GatherNDGradient: dY shaped like the gather."""
    return _gather_gradient(inputs, gather_nd_gradient_check, op.arg("batch_dims"))


def scatter_elements_check(data: tuple, indices: tuple, updates: tuple, axis: int) -> int:
    """ScatterElements' axis; UPDATES have INDICES' shape."""
    axis = elements_axis(data, indices, axis)
    _same(updates, indices, "UPDATES", "INDICES' shape")
    return axis


def scatter_nd_check(data: tuple, indices: tuple, updates: tuple) -> None:
    """ScatterND: UPDATES are INDICES[:-1] + DATA[INDICES[-1]:]."""
    expected = gather_nd_dims(data, indices, 0)
    _same(updates, expected, "UPDATES", "the shape INDICES pick from DATA")


def _scatter_like(inputs: list, check) -> list:
    data, indices, updates = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if data is None:
        return [None]
    if indices is not None and updates is not None:
        check(data.shape, indices.shape, updates.shape)
        same_type(data.dtype, updates.dtype, "UPDATES", "DATA")
    return [TensorInfo(data.shape, data.dtype)]


@rule("indexing_nd_scatter_elements")
def scatter_elements(op: OpView, inputs: list) -> list:
    """ScatterElements: DATA's shape and type."""
    return _scatter_like(inputs, lambda d, i, u: scatter_elements_check(d, i, u, op.arg("axis")))


@rule("indexing_nd_scatter_nd")
def scatter_nd(op: OpView, inputs: list) -> list:
    """ScatterND: DATA's shape and type."""
    return _scatter_like(inputs, scatter_nd_check)


def differentiable_reduction(reduction: str) -> None:
    if reduction not in ("none", "add"):
        raise ShapeError(f"the gradient of reduction '{reduction}' is not implemented (none and add are)")


@rule("indexing_nd_scatter_elements_gradient")
def scatter_elements_gradient(op: OpView, inputs: list) -> list:
    """ScatterElementsGradient: dDATA like dY, dUPDATES of INDICES' shape."""
    differentiable_reduction(op.arg("reduction"))
    dy, indices = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if dy is None or indices is None:
        return [None if dy is None else TensorInfo(dy.shape, dy.dtype), None]
    elements_axis(dy.shape, indices.shape, op.arg("axis"))
    return [TensorInfo(dy.shape, dy.dtype), TensorInfo(indices.shape, dy.dtype)]


@rule("indexing_nd_scatter_nd_gradient")
def scatter_nd_gradient(op: OpView, inputs: list) -> list:
    """ScatterNDGradient: dDATA like dY, dUPDATES shaped like the updates."""
    differentiable_reduction(op.arg("reduction"))
    dy, indices = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if dy is None or indices is None:
        return [None if dy is None else TensorInfo(dy.shape, dy.dtype), None]
    return [TensorInfo(dy.shape, dy.dtype), TensorInfo(gather_nd_dims(dy.shape, indices.shape, 0), dy.dtype)]


def tensor_scatter_check(past: tuple, update: tuple, write: tuple | None, axis: int) -> int:
    """TensorScatter's sequence axis (not the batch axis 0); UPDATE is PAST but along
    it, where it is no longer; WRITE_INDICES has one entry per batch row."""
    if len(past) < 2:
        raise ShapeError(f"PAST {list(past)} must have rank >= 2 (batch and sequence)")
    axis = axis_index(axis, len(past), where=f"PAST {list(past)}")
    if axis == 0:
        raise ShapeError("axis must not be the batch axis 0")
    if len(update) != len(past) or any(u != p for k, (u, p) in enumerate(zip(update, past)) if k != axis) \
            or update[axis] > past[axis]:
        raise ShapeError(f"UPDATE {list(update)} must match PAST {list(past)} but along axis {axis}, "
                         f"where it may be shorter")
    if write is not None and tuple(write) != (past[0],):
        raise ShapeError(f"WRITE_INDICES {list(write)} must be 1-D with PAST's batch size {past[0]}")
    return axis


@rule("indexing_nd_tensor_scatter")
def tensor_scatter(op: OpView, inputs: list) -> list:
    """TensorScatter: PAST's shape and type."""
    past, update = inputs[0], inputs[1]
    write = inputs[2] if len(inputs) > 2 else None
    if write is not None:
        index_type(write.shape, write.dtype)
    if past is None:
        return [None]
    if update is not None:
        same_type(past.dtype, update.dtype, "UPDATE", "PAST")
        tensor_scatter_check(past.shape, update.shape, None if write is None else write.shape, op.arg("axis"))
    return [TensorInfo(past.shape, past.dtype)]
