"""Arithmetic kernels (NumPy): Add, Sub, Mul, Div and their gradients,
SumReduceLike, and the variadic Sum, Mean, Max, Min. The binary ops are kernel
factories: at CreateNet their args pick NumPy-style broadcasting (the kernel
is then the bare NumPy ufunc) or Caffe2's legacy rule with its axis resolved
once; under the legacy rule B is reshaped per run with 1s so that it lines up
with A at that axis, through a small cache keyed by the two shapes. Gradients
sum back over the broadcast axes, so dA and dB take A's and B's shapes. Each
op's gradient maker sits beside it; Sum's emits no op (every input shares dY).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from pycaffe2.gradient.registry import gradient_op, register_gradient
from pycaffe2.operators import register_cpu
from pycaffe2.schema.inference import OpView
from pycaffe2.schema.inference.arithmetic import check_legacy, legacy_axis

# --- broadcasting layouts -------------------------------------------------------------------

def broadcast_axis(op_type: str, axis: int, axis_str, order: str) -> int:
    """The legacy broadcast axis from `axis` or `axis_str` (-1: align with A's tail)."""
    args = {"axis": axis, "axis_str": axis_str, "order": order}
    return legacy_axis(OpView(op_type, args, 2, 1))


@lru_cache(maxsize=512)
def legacy_view(op_type: str, a_shape: tuple, b_shape: tuple, axis: int, names=("A", "B")) -> tuple:
    """B's shape padded with 1s so NumPy lines it up with A at `axis`; raises
    ValueError (naming A, B and their shapes) when B does not fit there."""
    check_legacy(OpView(op_type, {}, 2, 1), a_shape, b_shape, axis, names)
    if math.prod(b_shape) == 1:
        return ()
    start = len(a_shape) - len(b_shape) if axis == -1 else axis
    return (1,) * start + b_shape + (1,) * (len(a_shape) - start - len(b_shape))


def b_layout(op_type: str, broadcast, axis, axis_str, order):
    """A function (A's shape, B's shape) -> the shape B takes when lined up with A."""
    if not broadcast:
        return lambda a_shape, b_shape: b_shape
    axis = broadcast_axis(op_type, axis, axis_str, order)
    return lambda a_shape, b_shape: legacy_view(op_type, a_shape, b_shape, axis)


@lru_cache(maxsize=512)
def _sum_axes(shape: tuple, target: tuple) -> tuple:
    """The axes of `shape` that NumPy broadcasting added or stretched to reach it from `target`."""
    lead = len(shape) - len(target)
    stretched = (lead + i for i, dim in enumerate(target) if dim == 1 and shape[lead + i] != 1)
    return tuple(range(lead)) + tuple(stretched)


def reduce_like(x, target: tuple, shape: tuple | None = None):
    """x summed down to the broadcast shape `target`, then reshaped to `shape` (default target)."""
    shape = target if shape is None else shape
    if x.shape != target:
        x = x.sum(axis=_sum_axes(x.shape, target), dtype=x.dtype)
    return x if x.shape == shape else x.reshape(shape)


# --- Add, Sub, Mul, Div ---------------------------------------------------------------------

def _true_or_integer_divide(a, b):
    if a.dtype.kind not in "iu":
        return np.divide(a, b)
    if not np.all(b):
        raise ValueError(f"Div: integer division by zero (B {list(np.shape(b))} {b.dtype} has a 0)")
    quotient = np.floor_divide(a, b)
    # NumPy floors; Caffe2 (C++ integer division) truncates toward zero, so negative
    # inexact quotients move up by one.
    return quotient + ((quotient < 0) & (quotient * b != a))


def _binary(op_type: str, function, broadcast, axis, axis_str, order):
    """`function` itself for NumPy broadcasting, else a kernel lining B up with A first."""
    if not broadcast:
        return function
    axis = broadcast_axis(op_type, axis, axis_str, order)

    def legacy_broadcast(a, b):
        return function(a, b.reshape(legacy_view(op_type, a.shape, b.shape, axis)))
    return legacy_broadcast


@register_cpu("Add", specialize=True)
def add(*, broadcast, axis, axis_str, order):
    return _binary("Add", np.add, broadcast, axis, axis_str, order)


@register_cpu("Sub", specialize=True)
def sub(*, broadcast, axis, axis_str, order):
    return _binary("Sub", np.subtract, broadcast, axis, axis_str, order)


@register_cpu("Mul", specialize=True)
def mul(*, broadcast, axis, axis_str, order):
    return _binary("Mul", np.multiply, broadcast, axis, axis_str, order)


@register_cpu("Div", specialize=True)
def div(*, broadcast, axis, axis_str, order):
    return _binary("Div", _true_or_integer_divide, broadcast, axis, axis_str, order)


# --- their gradients ------------------------------------------------------------------------

# One gradient op each (Caffe2's later form, not SetDense + SumReduceLike): it reduces over the
# broadcast axes itself, under the broadcast/axis/axis_str/order it inherits.
gradient_op("Add", "GO0 I0 I1", "GI0 GI1")
gradient_op("Sub", "GO0 I0 I1", "GI0 GI1")
gradient_op("Mul", "GO0 I0 I1", "GI0 GI1")
gradient_op("Div", "GO0 I0 I1 O0", "GI0 GI1")


@register_cpu("AddGradient", specialize=True)
def add_gradient(*, broadcast, axis, axis_str, order):
    layout = b_layout("AddGradient", broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        return reduce_like(dc, a.shape), reduce_like(dc, layout(a.shape, b.shape), b.shape)
    return kernel


@register_cpu("SubGradient", specialize=True)
def sub_gradient(*, broadcast, axis, axis_str, order):
    layout = b_layout("SubGradient", broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        db = reduce_like(dc, layout(a.shape, b.shape), b.shape)
        return reduce_like(dc, a.shape), np.negative(db)
    return kernel


@register_cpu("MulGradient", specialize=True)
def mul_gradient(*, broadcast, axis, axis_str, order):
    layout = b_layout("MulGradient", broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        b_view = layout(a.shape, b.shape)
        da = reduce_like(dc * b.reshape(b_view), a.shape)
        return da, reduce_like(dc * a, b_view, b.shape)
    return kernel


@register_cpu("DivGradient", specialize=True)
def div_gradient(*, broadcast, axis, axis_str, order):
    layout = b_layout("DivGradient", broadcast, axis, axis_str, order)

    def kernel(*inputs):
        # Inputs (dC, A, B, C); the older form (B, C, dC) has no A, whose shape is C's.
        if len(inputs) == 3:
            b, c, dc = inputs
            a_shape = c.shape
        else:
            dc, a, b, c = inputs
            a_shape = a.shape
        b_view = layout(a_shape, b.shape)
        da = dc / b.reshape(b_view)
        db = reduce_like(-da * c, b_view, b.shape)
        return reduce_like(da, a_shape), db
    return kernel


@register_cpu("SumReduceLike", specialize=True)
def sum_reduce_like(*, axis, axis_str, order):
    axis = broadcast_axis("SumReduceLike", axis, axis_str, order)

    def kernel(a, b):
        return reduce_like(a, legacy_view("SumReduceLike", a.shape, b.shape, axis), b.shape)
    return kernel


# --- Sum, Mean, Max, Min --------------------------------------------------------------------

def _check_alike(op_type: str, xs) -> None:
    first = xs[0]
    for i, x in enumerate(xs[1:], 1):
        if x.shape != first.shape or x.dtype != first.dtype:
            raise ValueError(f"{op_type}: input {i} is {list(x.shape)} {x.dtype} but input 0 is "
                             f"{list(first.shape)} {first.dtype}: all must match")


def _fold(op_type: str, ufunc, xs):
    """`ufunc` folded over inputs of one shape and type into a new array (X0 itself when alone)."""
    _check_alike(op_type, xs)
    if len(xs) == 1:
        return xs[0]
    out = ufunc(xs[0], xs[1], out=np.empty_like(xs[0]))
    for x in xs[2:]:
        ufunc(out, x, out=out)
    return out


@register_cpu("Sum")
def sum_(*xs):
    return _fold("Sum", np.add, xs)


@register_cpu("Mean")
def mean(*xs):
    if xs[0].dtype.kind != "f":
        raise ValueError(f"Mean: input 0 is {xs[0].dtype}; Mean takes floating-point tensors")
    return _fold("Mean", np.add, xs) / xs[0].dtype.type(len(xs))


@register_gradient("Sum")
def _(g):
    # No op: every input's gradient is the output's (SetDense pass-through, as Caffe2).
    for i in range(len(g.op.input)):
        g.SetDense(i, g.GO(0))
    return []


@register_gradient("Mean")
def _(g):
    return [g.Op("MeanGradient", [g.GO(0)], [g.GI(i) for i in range(len(g.op.input))])]


@register_cpu("MeanGradient")
def mean_gradient(dy, *, num_outputs):
    return (dy / dy.dtype.type(num_outputs),) * num_outputs


@register_cpu("Max")
def max_(*xs):
    return _fold("Max", np.maximum, xs)


@register_cpu("Min")
def min_(*xs):
    return _fold("Min", np.minimum, xs)


@register_gradient("Max", "Min")
def _(g):
    n = len(g.op.input)
    inputs = [g.O(0), g.GO(0)] + [g.I(i) for i in range(n)]
    return [g.Op(g.op.type + "Gradient", inputs, [g.GI(i) for i in range(n)])]


@register_cpu("MaxGradient", "MinGradient")
def select_gradient(y, dy, *xs):
    """dX_i = dY where X_i is the selected value Y (every tie receives it), else 0."""
    zero = dy.dtype.type(0)
    return tuple(np.where(x == y, dy, zero) for x in xs)
