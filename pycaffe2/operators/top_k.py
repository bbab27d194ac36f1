"""NumPy kernels of the top_k family: TopK (the k largest entries along an axis,
ties to the lower index) and TopKGradient (the scatter of dValues back to X).
Both view a tensor as [before, axis, after] around the axis."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.operators.training import check_floats
from pycaffe2.schema.inference.top_k import top_k_axis, top_k_gradient_check, top_k_k, top_k_shapes, top_k_x


def _around(shape, axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _ranked(view: np.ndarray, largest: bool) -> np.ndarray:
    """The order along axis 1 of [before, n, after]: largest (or smallest) first, equal
    values by the lower index, as Caffe2's heap and ONNX do. A stable sort of the
    reversed axis, read backwards, puts the largest first without negating (unsigned X)."""
    if not largest:
        return np.argsort(view, axis=1, kind="stable")
    n = view.shape[1]
    return n - 1 - np.argsort(view[:, ::-1], axis=1, kind="stable")[:, ::-1]


@register_cpu("TopK")
def top_k(x, k_input=None, *, k, axis, largest, sorted, num_outputs):
    top_k_x(x.dtype.name)
    top_k_k(k, None if k_input is None else (k_input.shape, k_input.dtype.name))
    if k_input is not None:
        k = int(k_input.reshape(()))
    out_shape, _ = top_k_shapes(x.shape, k, axis)
    axis = top_k_axis(x.shape, axis)
    before, n, after = _around(x.shape, axis)
    view = x.reshape(before, n, after)
    order = _ranked(view, largest)[:, :k]
    taken = order.shape[1]
    values = np.zeros((before, k, after), x.dtype)
    indices = np.full((before, k, after), -1, np.int64)
    values[:, :taken] = np.take_along_axis(view, order, axis=1)
    indices[:, :taken] = order
    outputs = [values.reshape(out_shape), indices.reshape(out_shape)]
    if num_outputs > 2:
        flat = (np.arange(before)[:, None, None] * n + indices) * after + np.arange(after)
        outputs.append(np.where(indices < 0, -1, flat).reshape(-1))
    return tuple(outputs)


@register_cpu("TopKGradient")
def top_k_gradient(d_values, indices, x, *, axis):
    check_floats({"dValues": d_values})
    axis = top_k_gradient_check(d_values.shape, indices.shape, indices.dtype, x.shape, axis)
    before, n, after = _around(x.shape, axis)
    k = d_values.shape[axis]
    index = indices.reshape(before, k, after).astype(np.int64)
    if np.any(index >= n):
        raise ValueError(f"Indices hold {int(index.max())}, out of range for X's axis {axis} of length {n}")
    out = np.zeros((before, n, after), d_values.dtype)
    b, _, a = np.broadcast_arrays(np.arange(before)[:, None, None], index, np.arange(after))
    valid = index >= 0
    out[b[valid], index[valid], a[valid]] = d_values.reshape(before, k, after)[valid]
    return out.reshape(x.shape)


gradient_op("TopK", "GO0 O1 I0")
