"""NumPy kernels of the cumulative family: CumSum and CumProd along an axis (given by
an arg or an input), inclusive or exclusive, forwards or reversed. CumSum's gradient
is a CumSum of dY in the other direction, with the same axis and exclusivity.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import ShapeError
from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.cumulative import axis_tensor, cumulative_axis


def _axis(x, axis_input, axis) -> int:
    if axis_input is not None:
        axis_tensor(axis_input.shape, axis_input.dtype.name)
        axis = int(axis_input.reshape(()))
    return cumulative_axis(x.shape, axis)


def _run(ufunc, x, axis_input, axis, exclusive, reverse):
    axis = _axis(x, axis_input, axis)
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


@register_gradient("CumProd")
def _cum_prod_gradient(g):
    axis_input = [g.I(1)] if len(g.op.input) > 1 else []
    return [g.Op("CumProdGradient", [g.I(0), g.GO(0), *axis_input], [g.GI(0)])]


@register_cpu("CumProdGradient")
def cum_prod_gradient(x, dy, axis_input=None, *, axis, exclusive, reverse):
    if dy.shape != x.shape:
        raise ShapeError(f"dY {list(dy.shape)} must have X's shape {list(x.shape)}")
    axis = _axis(x, axis_input, axis)
    # Forwards along the axis: dX[j] = P[j] * S[j], P[j] the product of X before j and
    # S[j] = dY[j] + X[j+1] * S[j+1] (inclusive) or dY[j+1] + X[j+1] * S[j+1] (exclusive).
    xs = np.moveaxis(np.flip(x, axis) if reverse else x, axis, 0).astype(dy.dtype)
    dys = np.moveaxis(np.flip(dy, axis) if reverse else dy, axis, 0)
    n = xs.shape[0]
    before = np.ones_like(xs)
    if n > 1:
        before[1:] = np.cumprod(xs[:-1], axis=0)
    scan, dx = np.zeros(xs.shape[1:], dy.dtype), np.empty_like(dys)
    for j in range(n - 1, -1, -1):
        if exclusive:
            scan = (dys[j + 1] + xs[j + 1] * scan) if j + 1 < n else scan
        else:
            scan = dys[j] + (xs[j + 1] * scan if j + 1 < n else 0)
        dx[j] = before[j] * scan
    dx = np.moveaxis(dx, 0, axis)
    return np.ascontiguousarray(np.flip(dx, axis) if reverse else dx)
