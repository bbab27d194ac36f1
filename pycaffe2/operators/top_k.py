"""NumPy kernels of the top_k family: TopK (the k largest entries along an axis,
ties to the lower index) and TopKGradient (the scatter of dValues back to X).
Both view a tensor as [before, axis, after] around the axis."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.operators.training import check_floats
from pycaffe2.schema.inference.top_k import top_k_axis, top_k_gradient_check, top_k_shapes


def _around(shape, axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


@register_cpu("TopK")
def top_k(x, *, k, axis, num_outputs):
    check_floats({"X": x})
    out_shape, _ = top_k_shapes(x.shape, k, axis)
    axis = top_k_axis(x.shape, axis)
    before, n, after = _around(x.shape, axis)
    view = x.reshape(before, n, after)
    # a stable sort of -x keeps equal values in index order, as Caffe2's heap does
    order = np.argsort(-view, axis=1, kind="stable")[:, :k]
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
