"""Inference rules of the arithmetic family, and the broadcasting checks the
elementwise family and the kernels share.

Binary ops broadcast NumPy-style (dims aligned from the right, each pair equal
or one of them 1) unless `broadcast=1` selects Caffe2's legacy rule: B lines up
with a run of A's dims starting at `axis` (or at the letter `axis_str` of
`order`; -1 aligns B with A's trailing dims), B's leading and trailing 1s match
anything, a single-element B goes with any A, and the result has A's shape.

The checks take plain shapes, dtypes and args, so the rules (on TensorInfos)
and the CPU and CUDA kernels (on arrays) raise the same ShapeError.
"""
from __future__ import annotations

import math
from functools import lru_cache

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES

# --- checks shared with the kernels -----------------------------------------------------------

def legacy_axis(axis: int, axis_str: str, order: str) -> int:
    """The legacy broadcast axis from `axis` or `axis_str` (-1: align with A's tail)."""
    if not axis_str:
        return axis
    if axis != -1:
        raise ShapeError(f"give axis ({axis}) or axis_str ({axis_str!r}), not both")
    if len(axis_str) != 1 or axis_str not in order:
        raise ShapeError(f"axis_str {axis_str!r} is not a letter of order {order}")
    return order.index(axis_str)


def broadcast_axis(broadcast, axis: int, axis_str: str, order: str) -> int | None:
    """The axis the binary kernels line B up at: None for NumPy-style broadcasting."""
    return legacy_axis(axis, axis_str, order) if broadcast else None


def check_legacy(a: tuple, b: tuple, axis: int, names=("A", "B")) -> None:
    """Raise unless B lines up with A under legacy broadcasting at `axis`."""
    if math.prod(b) == 1:
        return
    a_name, b_name = names
    if len(b) > len(a):
        raise ShapeError(f"{b_name} is {list(b)} but {a_name} is {list(a)}: under "
                         f"broadcast=1 {b_name} cannot have more dims than {a_name}")
    start = len(a) - len(b) if axis == -1 else axis
    if not 0 <= start <= len(a) - len(b):
        raise ShapeError(f"axis {axis} is out of range [0, {len(a) - len(b)}] for "
                         f"{a_name} {list(a)} and {b_name} {list(b)}")
    core = [i for i, dim in enumerate(b) if dim != 1]
    for i in range(core[0], core[-1] + 1):
        if a[start + i] != b[i]:
            raise ShapeError(f"{b_name} is {list(b)} but {a_name} is {list(a)}: with "
                             f"broadcast=1 at axis {start}, {b_name}'s dim {i} ({b[i]}) must "
                             f"equal {a_name}'s dim {start + i} ({a[start + i]})")


LEGACY_HINT = " (legacy broadcasting needs broadcast=1)"


def numpy_broadcast(a: tuple, b: tuple, names=("A", "B"), hint: str = LEGACY_HINT) -> tuple:
    """The NumPy broadcast of shapes a and b."""
    ndim = max(len(a), len(b))
    a_full, b_full = (1,) * (ndim - len(a)) + a, (1,) * (ndim - len(b)) + b
    out = []
    for x, y in zip(a_full, b_full):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"{names[0]} is {list(a)} and {names[1]} is {list(b)}: "
                             f"dims {x} and {y} do not broadcast{hint}")
        out.append(y if x == 1 else x)
    return tuple(out)


@lru_cache(maxsize=512)
def binary_layout(a: tuple, b: tuple, axis: int | None, names=("A", "B")) -> tuple:
    """(B's shape lined up with A, C's shape): NumPy-style when `axis` is None, else
    B padded with 1s to sit at `axis` of A (() for a single element) and C of A's shape."""
    if axis is None:
        return b, numpy_broadcast(a, b, names)
    check_legacy(a, b, axis, names)
    if math.prod(b) == 1:
        return (), a
    start = len(a) - len(b) if axis == -1 else axis
    return (1,) * start + b + (1,) * (len(a) - start - len(b)), a


def check_same_type(a_dtype: str, b_dtype: str, names=("A", "B")) -> None:
    if a_dtype != b_dtype:
        raise ShapeError(f"{names[0]} is {a_dtype} but {names[1]} is {b_dtype}: "
                         f"the operands must share a type")


def check_gradient_shape(d_shape: tuple, forward_shape: tuple, name: str = "dC") -> None:
    if tuple(d_shape) != tuple(forward_shape):
        raise ShapeError(f"{name} is {list(d_shape)} but the forward output is {list(forward_shape)}")


def check_alike(infos: list, first_index: int = 0) -> TensorInfo | None:
    """The first known (shape, dtype) info, after checking every known one matches it."""
    known = [(i, info) for i, info in enumerate(infos, first_index) if info is not None]
    for i, info in known[1:]:
        if info != known[0][1]:
            raise ShapeError(f"input {i} is {info.describe()} but input "
                             f"{known[0][0]} is {known[0][1].describe()}: all must match")
    return known[0][1] if known else None


def check_broadcastable(infos: list) -> TensorInfo | None:
    """The NumPy broadcast of known infos of one dtype (None when any is unknown)."""
    known = [(i, info) for i, info in enumerate(infos) if info is not None]
    for i, info in known[1:]:
        check_same_type(known[0][1].dtype, info.dtype, (f"input {known[0][0]}", f"input {i}"))
    if len(known) < len(infos):
        return None
    shape = infos[0].shape
    for i, info in enumerate(infos[1:], 1):
        before = "input 0" if i == 1 else f"the broadcast of inputs 0-{i - 1}"
        shape = numpy_broadcast(shape, info.shape, (before, f"input {i}"), "")
    return TensorInfo(shape, infos[0].dtype)


def check_mean_type(dtype: str) -> None:
    if dtype not in FLOAT_TYPES:
        raise ShapeError(f"input 0 is {dtype}; Mean takes floating-point tensors")


# --- rules ------------------------------------------------------------------------------------

def op_axis(op: OpView) -> int | None:
    """The op's broadcast axis (None: NumPy-style), from its broadcast args."""
    return broadcast_axis(op.arg("broadcast"), op.arg("axis", -1), op.arg("axis_str", ""),
                          op.arg("order", "NCHW"))


def binary_shape(op: OpView, a, b, names=("A", "B")) -> tuple | None:
    """The output shape of a broadcasting binary op on infos a and b; None when unknown."""
    axis = op_axis(op)
    if a is None or b is None:
        return None if axis is None or a is None else a.shape
    return binary_layout(a.shape, b.shape, axis, names)[1]


def same_type(a, b, names=("A", "B")) -> None:
    if a is not None and b is not None:
        check_same_type(a.dtype, b.dtype, names)


@rule("arithmetic_binary")
def arithmetic_binary(op: OpView, inputs: list) -> list:
    """C of A's type, shaped by broadcasting A and B."""
    a, b = inputs
    same_type(a, b)
    shape = binary_shape(op, a, b)
    return [None if shape is None else TensorInfo(shape, a.dtype)]


def _gradients(d_out, a, b) -> list:
    """Gradients shaped like a and b, typed like the incoming gradient when known."""
    return [None if x is None else TensorInfo(x.shape, x.dtype if d_out is None else d_out.dtype)
            for x in (a, b)]


def _gradient_shape(d_out, forward_shape, name: str) -> None:
    if d_out is not None and forward_shape is not None:
        check_gradient_shape(d_out.shape, forward_shape, name)


@rule("arithmetic_binary_gradient")
def arithmetic_binary_gradient(op: OpView, inputs: list) -> list:
    """Inputs (dC, A, B): dA like A and dB like B; dC must have C's shape."""
    d_c, a, b = inputs
    _gradient_shape(d_c, binary_shape(op, a, b), "dC")
    return _gradients(d_c, a, b)


@rule("arithmetic_div_gradient")
def arithmetic_div_gradient(op: OpView, inputs: list) -> list:
    """Inputs (dC, A, B, C), or (B, C, dC) in the older form: dA like A (or C), dB like B."""
    if len(inputs) == 3:
        b, c, d_c = inputs
        _gradient_shape(d_c, None if c is None else c.shape, "dC")
        return _gradients(d_c, c, b)
    d_c, a, b, c = inputs
    _gradient_shape(d_c, binary_shape(op, a, b), "dC")
    _gradient_shape(c, binary_shape(op, a, b), "C")
    return _gradients(d_c, a, b)


@rule("arithmetic_sum_reduce_like")
def arithmetic_sum_reduce_like(op: OpView, inputs: list) -> list:
    """C of A's type and B's shape; B must line up with A as under legacy broadcasting."""
    a, b = inputs
    axis = legacy_axis(op.arg("axis", -1), op.arg("axis_str", ""), op.arg("order", "NCHW"))
    if b is None:
        return [None]
    if a is None:
        return [b]
    check_legacy(a.shape, b.shape, axis)
    return [TensorInfo(b.shape, a.dtype)]


@rule("arithmetic_same_shape")
def arithmetic_same_shape(op: OpView, inputs: list) -> list:
    """Every input has one shape and type, which the output takes; with numpy_broadcast=1
    the shapes broadcast."""
    return [check_broadcastable(inputs) if op.arg("numpy_broadcast") else check_alike(inputs)]


@rule("arithmetic_mean")
def arithmetic_mean(op: OpView, inputs: list) -> list:
    """Like arithmetic_same_shape, of a float type."""
    out = arithmetic_same_shape(op, inputs)[0]
    if inputs[0] is not None:
        check_mean_type(inputs[0].dtype)
    return [out]


@rule("arithmetic_select_gradient")
def arithmetic_select_gradient(op: OpView, inputs: list) -> list:
    """Inputs (Y, dY, X0, X1, ...): each dX_i like X_i; all share Y's shape."""
    check_alike(inputs)
    return inputs[2:2 + op.n_outputs]
