"""Inference rules of the elementwise family: Pow, logic, comparisons, Where.

Logic ops and comparisons broadcast as the arithmetic family's do (NumPy-style,
or Caffe2's legacy rule under broadcast=1); Pow takes only the legacy rule.
Logic ops take and give bool tensors; comparisons give bool tensors of the
broadcast shape.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.arithmetic import binary_shape, check_same_type


def _check_dtype(op: OpView, info, name: str, allowed: tuple) -> None:
    if info is not None and info.dtype not in allowed:
        raise ShapeError(f"{op.type}: {name} is {info.dtype}, must be {' or '.join(allowed)}")


def _bool_result(shape) -> TensorInfo | None:
    return None if shape is None else TensorInfo(shape, "bool")


@rule("elementwise_pow")
def elementwise_pow(op: OpView, inputs: list) -> list:
    """Y like X. An exponent tensor must have X's shape, or line up with X under
    legacy broadcasting (broadcast=1): unlike Mul, Caffe2's Pow has no NumPy-style
    broadcasting."""
    if op.has("exponent") == (op.n_inputs == 2):
        given = "both" if op.has("exponent") else "neither"
        raise ShapeError(f"{op.type}: give the exponent as the arg or as input 1; got {given}")
    x = inputs[0]
    _check_dtype(op, x, "X", FLOAT_TYPES)
    if op.n_inputs == 1:
        return [x]
    exponent = inputs[1]
    check_same_type(op, x, exponent, ("X", "exponent"))
    if op.arg("broadcast"):
        binary_shape(op, x, exponent, ("X", "exponent"))
        return [x]
    if x is not None and exponent is not None and x.shape != exponent.shape:
        raise ShapeError(f"{op.type}: X is {list(x.shape)} and exponent is "
                         f"{list(exponent.shape)}: without broadcast=1 the shapes must be equal")
    return [x if x is not None else exponent]


@rule("elementwise_not")
def elementwise_not(op: OpView, inputs: list) -> list:
    """A bool tensor of X's shape; X must be bool."""
    x = inputs[0]
    _check_dtype(op, x, "X", ("bool",))
    return [x]


@rule("elementwise_logical")
def elementwise_logical(op: OpView, inputs: list) -> list:
    """Bool A and B broadcast to a bool C."""
    a, b = inputs
    _check_dtype(op, a, "A", ("bool",))
    _check_dtype(op, b, "B", ("bool",))
    return [_bool_result(binary_shape(op, a, b))]


@rule("elementwise_compare")
def elementwise_compare(op: OpView, inputs: list) -> list:
    """A and B of one type broadcast to a bool C."""
    a, b = inputs
    check_same_type(op, a, b)
    return [_bool_result(binary_shape(op, a, b))]


def _check_where_condition(op: OpView, c, values) -> None:
    if c is None or values is None:
        return
    if not op.arg("broadcast_on_rows"):
        if c.shape != values.shape:
            raise ShapeError(f"{op.type}: C is {list(c.shape)} but X and Y are "
                             f"{list(values.shape)}: the shapes must match")
    elif len(c.shape) != 1 or not values.shape or c.shape[0] != values.shape[0]:
        raise ShapeError(f"{op.type}: with broadcast_on_rows=1 C must be 1-D with one entry per "
                         f"row of X and Y ({list(values.shape)}), got {list(c.shape)}")


@rule("elementwise_where")
def elementwise_where(op: OpView, inputs: list) -> list:
    """Z like X; X and Y must match, and C must have their shape (or one entry per row)."""
    c, x, y = inputs
    _check_dtype(op, c, "C", ("bool",))
    if x is not None and y is not None and x != y:
        raise ShapeError(f"{op.type}: X is {x.describe()} but Y is {y.describe()}: "
                         f"they must match")
    values = x if x is not None else y
    _check_where_condition(op, c, values)
    return [values]
