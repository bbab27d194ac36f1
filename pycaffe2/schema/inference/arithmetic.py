"""Inference rules of the arithmetic family, and the broadcasting helpers the
elementwise family shares.

Binary ops broadcast NumPy-style (dims aligned from the right, each pair equal
or one of them 1) unless `broadcast=1` selects Caffe2's legacy rule: B lines up
with a run of A's dims starting at `axis` (or at the letter `axis_str` of
`order`; -1 aligns B with A's trailing dims), B's leading and trailing 1s match
anything, a single-element B goes with any A, and the result has A's shape.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def legacy_axis(op: OpView) -> int:
    """The legacy broadcast axis from `axis` or `axis_str` (-1: align with A's tail)."""
    axis, axis_str = op.arg("axis", -1), op.arg("axis_str", "")
    if not axis_str:
        return axis
    if axis != -1:
        raise ShapeError(f"{op.type}: give axis ({axis}) or axis_str ({axis_str!r}), not both")
    order = op.arg("order", "NCHW")
    if len(axis_str) != 1 or axis_str not in order:
        raise ShapeError(f"{op.type}: axis_str {axis_str!r} is not a letter of order {order}")
    return order.index(axis_str)


def check_legacy(op: OpView, a: tuple, b: tuple, axis: int, names=("A", "B")) -> None:
    """Raise unless B lines up with A under legacy broadcasting at `axis`."""
    if math.prod(b) == 1:
        return
    a_name, b_name = names
    if len(b) > len(a):
        raise ShapeError(f"{op.type}: {b_name} is {list(b)} but {a_name} is {list(a)}: under "
                         f"broadcast=1 {b_name} cannot have more dims than {a_name}")
    start = len(a) - len(b) if axis == -1 else axis
    if not 0 <= start <= len(a) - len(b):
        raise ShapeError(f"{op.type}: axis {axis} is out of range [0, {len(a) - len(b)}] for "
                         f"{a_name} {list(a)} and {b_name} {list(b)}")
    core = [i for i, dim in enumerate(b) if dim != 1]
    for i in range(core[0], core[-1] + 1):
        if a[start + i] != b[i]:
            raise ShapeError(f"{op.type}: {b_name} is {list(b)} but {a_name} is {list(a)}: with "
                             f"broadcast=1 at axis {start}, {b_name}'s dim {i} ({b[i]}) must "
                             f"equal {a_name}'s dim {start + i} ({a[start + i]})")


def numpy_broadcast(op: OpView, a: tuple, b: tuple, names=("A", "B")) -> tuple:
    """The NumPy broadcast of shapes a and b."""
    ndim = max(len(a), len(b))
    a_full, b_full = (1,) * (ndim - len(a)) + a, (1,) * (ndim - len(b)) + b
    out = []
    for x, y in zip(a_full, b_full):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"{op.type}: {names[0]} is {list(a)} and {names[1]} is {list(b)}: "
                             f"dims {x} and {y} do not broadcast (legacy broadcasting needs "
                             f"broadcast=1)")
        out.append(y if x == 1 else x)
    return tuple(out)


def binary_shape(op: OpView, a, b, names=("A", "B")) -> tuple | None:
    """The output shape of a broadcasting binary op on infos a and b; None when unknown."""
    if op.arg("broadcast"):
        axis = legacy_axis(op)
        if a is not None and b is not None:
            check_legacy(op, a.shape, b.shape, axis, names)
        return None if a is None else a.shape
    if a is None or b is None:
        return None
    return numpy_broadcast(op, a.shape, b.shape, names)


def check_same_type(op: OpView, a, b, names=("A", "B")) -> None:
    if a is not None and b is not None and a.dtype != b.dtype:
        raise ShapeError(f"{op.type}: {names[0]} is {a.dtype} but {names[1]} is {b.dtype}: "
                         f"the operands must share a type")


@rule("arithmetic_binary")
def arithmetic_binary(op: OpView, inputs: list) -> list:
    """C of A's type, shaped by broadcasting A and B."""
    a, b = inputs
    check_same_type(op, a, b)
    shape = binary_shape(op, a, b)
    return [None if shape is None else TensorInfo(shape, a.dtype)]


def _gradients(d_out, a, b) -> list:
    """Gradients shaped like a and b, typed like the incoming gradient when known."""
    return [None if x is None else TensorInfo(x.shape, x.dtype if d_out is None else d_out.dtype)
            for x in (a, b)]


def _check_gradient_shape(op: OpView, d_out, forward_shape, name: str) -> None:
    if d_out is not None and forward_shape is not None and d_out.shape != forward_shape:
        raise ShapeError(f"{op.type}: {name} is {list(d_out.shape)} but the forward output "
                         f"is {list(forward_shape)}")


@rule("arithmetic_binary_gradient")
def arithmetic_binary_gradient(op: OpView, inputs: list) -> list:
    """Inputs (dC, A, B): dA like A and dB like B; dC must have C's shape."""
    d_c, a, b = inputs
    _check_gradient_shape(op, d_c, binary_shape(op, a, b), "dC")
    return _gradients(d_c, a, b)


@rule("arithmetic_div_gradient")
def arithmetic_div_gradient(op: OpView, inputs: list) -> list:
    """Inputs (dC, A, B, C), or (B, C, dC) in the older form: dA like A (or C), dB like B."""
    if len(inputs) == 3:
        b, c, d_c = inputs
        _check_gradient_shape(op, d_c, None if c is None else c.shape, "dC")
        return _gradients(d_c, c, b)
    d_c, a, b, c = inputs
    _check_gradient_shape(op, d_c, binary_shape(op, a, b), "dC")
    _check_gradient_shape(op, c, binary_shape(op, a, b), "C")
    return _gradients(d_c, a, b)


@rule("arithmetic_sum_reduce_like")
def arithmetic_sum_reduce_like(op: OpView, inputs: list) -> list:
    """C of A's type and B's shape; B must line up with A as under legacy broadcasting."""
    a, b = inputs
    axis = legacy_axis(op)
    if b is None:
        return [None]
    if a is None:
        return [b]
    check_legacy(op, a.shape, b.shape, axis)
    return [TensorInfo(b.shape, a.dtype)]


def _check_all_alike(op: OpView, infos: list, first_index: int = 0) -> TensorInfo | None:
    """The first known info, after checking every known one has its shape and type."""
    known = [(i, info) for i, info in enumerate(infos, first_index) if info is not None]
    for i, info in known[1:]:
        if info != known[0][1]:
            raise ShapeError(f"{op.type}: input {i} is {info.describe()} but input "
                             f"{known[0][0]} is {known[0][1].describe()}: all must match")
    return known[0][1] if known else None


@rule("arithmetic_same_shape")
def arithmetic_same_shape(op: OpView, inputs: list) -> list:
    """Every input has one shape and type, which the output takes."""
    return [_check_all_alike(op, inputs)]


@rule("arithmetic_select_gradient")
def arithmetic_select_gradient(op: OpView, inputs: list) -> list:
    """Inputs (Y, dY, X0, X1, ...): each dX_i like X_i; all share Y's shape."""
    _check_all_alike(op, inputs)
    return inputs[2:2 + op.n_outputs]
