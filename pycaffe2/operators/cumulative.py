"""NumPy kernels of the cumulative family: CumSum and CumProd along an axis (given by
an arg or an input), inclusive or exclusive, forwards or reversed. CumSum's gradient
is a CumSum of dY in the other direction, with the same axis and exclusivity.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.cumulative import axis_tensor, cumulative_axis


def _run(ufunc, x, axis_input, axis, exclusive, reverse):
    if axis_input is not None:
        axis_tensor(axis_input.shape, axis_input.dtype.name)
        axis = int(axis_input.reshape(()))
    axis = cumulative_axis(x.shape, axis)
    y = np.flip(x, axis) if reverse else x
    y = ufunc.accumulate(y, axis=axis, dtype=x.dtype)
    if exclusive and y.shape[axis]:  # shift by one along the axis, the identity first
        head = np.full_like(np.take(y, [0], axis=axis), ufunc.identity)
        y = np.concatenate([head, np.take(y, np.arange(y.shape[axis] - 1), axis=axis)], axis=axis)
    return np.ascontiguousarray(np.flip(y, axis) if reverse else y)


@register_cpu("CumSum")
def cum_sum(x, axis_input=None, *, axis, exclusive, reverse):
    return _run(np.add, x, axis_input, axis, exclusive, reverse)


@register_cpu("CumProd")
def cum_prod(x, axis_input=None, *, axis, exclusive, reverse):
    return _run(np.multiply, x, axis_input, axis, exclusive, reverse)


@register_gradient("CumSum")
def _cum_sum_gradient(g):
    # dX[j] sums dY[i] over the i whose sums took X[j]: the same scan, run backwards.
    axis_input = [g.I(1)] if len(g.op.input) > 1 else []
    return [g.Op("CumSum", [g.GO(0), *axis_input], [g.GI(0)], reverse=int(not g.arg("reverse")))]
