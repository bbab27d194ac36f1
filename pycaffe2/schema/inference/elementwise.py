"""Inference rules of the elementwise family, and the checks its kernels share.

The math ops take float tensors (Negative also signed integers). Logic ops and
comparisons broadcast as the arithmetic family's do (NumPy-style, or Caffe2's
legacy rule under broadcast=1); Pow takes only the legacy rule, or NumPy's under
numpy_broadcast=1 (as Where does). Logic ops take and give bool tensors;
comparisons give bool tensors of the broadcast shape. Clip with bound tensors
takes any numeric X and one-element bounds of its type.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shape
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.arithmetic import (
    binary_layout,
    binary_shape,
    check_same_type,
    numpy_broadcast,
    op_axis,
    same_type,
)

FLOAT = (FLOAT_TYPES, "a float tensor")
BOOL = (("bool",), "bool")
INT32 = (("int32",), "an int32 tensor")
INTEGER = (("int32", "int64"), "an int32 or int64 tensor")
FLOAT32 = (("float32",), "a float32 tensor")
SIGNED = (FLOAT_TYPES + ("int8", "int16", "int32", "int64"), "a float or signed integer tensor")
INT_BOOL = (("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
            "an integer or bool tensor")
NUMERIC = (FLOAT_TYPES + ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
           "a numeric tensor")
POW_NAMES = ("X", "exponent")


# --- checks shared with the kernels -----------------------------------------------------------

def check_dtype(name: str, shape: tuple, dtype: str, allowed: tuple) -> None:
    """`allowed` is (dtype names, what they are called), e.g. FLOAT or BOOL."""
    names, what = allowed
    if dtype not in names:
        raise ShapeError(f"{name} is {dtype} {list(shape)}, must be {what}")


def check_info_dtype(info, name: str, allowed: tuple) -> None:
    """check_dtype for a TensorInfo that may be None (unknown: nothing to check)."""
    if info is not None:
        check_dtype(name, info.shape, info.dtype, allowed)


def require_dtype(x, allowed: tuple, name: str = "X") -> None:
    """check_dtype for an array (a kernel's input)."""
    check_dtype(name, tuple(x.shape), x.dtype.name, allowed)


def check_unary_gradient(names: tuple, first, second) -> int:
    """The inputs (TensorInfo or None) of a unary op's gradient op, dY and X or Y in the
    schema's order: the one that is not dY is float, both have one shape. Returns its index."""
    value = 1 if names[0] == "dY" else 0
    check_info_dtype((first, second)[value], names[value], FLOAT)
    if first is not None and second is not None:
        same_shape(first.shape, second.shape, names)
    return value


def check_pow_exponent(has_arg: bool, has_input: bool) -> None:
    if has_arg == has_input:
        given = "both" if has_arg else "neither"
        raise ShapeError(f"give the exponent as the arg or as input 1; got {given}")


def pow_layout(x: tuple, e: tuple, axis: int | None) -> tuple:
    """(the exponent's shape lined up with X, Y's shape): Caffe2's Pow has no NumPy-style
    broadcasting, so without broadcast=1 (axis None) the shapes must be equal."""
    if axis is None and tuple(x) != tuple(e):
        raise ShapeError(f"X is {list(x)} and exponent is {list(e)}: without broadcast=1 the "
                         f"shapes must be equal")
    return binary_layout(x, e, axis, POW_NAMES)


def check_where(c: TensorInfo | None, x: TensorInfo | None, y: TensorInfo | None,
                broadcast_on_rows, numpy_broadcast=0) -> TensorInfo | None:
    """C bool, X and Y alike, C of their shape (or one entry per row); None: unknown.
    With numpy_broadcast, X and Y share a type and the three shapes broadcast. Returns
    Z's info when known."""
    if c is not None:
        check_dtype("C", c.shape, c.dtype, BOOL)
    if numpy_broadcast:
        same_type(x, y, ("X", "Y"))
        if c is None or x is None or y is None:
            return None
        shape = numpy_broadcast_shape(numpy_broadcast_shape(c.shape, x.shape, ("C", "X")),
                                      y.shape, ("C and X", "Y"))
        return TensorInfo(shape, x.dtype)
    if x is not None and y is not None and x != y:
        raise ShapeError(f"X is {x.describe()} but Y is {y.describe()}: they must match")
    values = x if x is not None else y
    if c is None or values is None:
        return values
    if not broadcast_on_rows:
        if c.shape != values.shape:
            raise ShapeError(f"C is {list(c.shape)} but X and Y are {list(values.shape)}: "
                             f"the shapes must match (or broadcast under numpy_broadcast=1)")
    elif len(c.shape) != 1 or not values.shape or c.shape[0] != values.shape[0]:
        raise ShapeError(f"with broadcast_on_rows=1 C must be 1-D with one entry per row of X "
                         f"and Y ({list(values.shape)}), got {list(c.shape)}")
    return values


def numpy_broadcast_shape(a: tuple, b: tuple, names: tuple) -> tuple:
    return numpy_broadcast(a, b, names, "")


def check_clip_bounds(x: TensorInfo | None, bounds: list) -> None:
    """Clip with bound tensors: X numeric, each bound one element of X's type."""
    check_info_dtype(x, "X", NUMERIC)
    for name, bound in zip(("min", "max"), bounds):
        if bound is None:
            continue
        if x is not None:
            check_same_type(x.dtype, bound.dtype, ("X", name))
        if math.prod(bound.shape) != 1:
            raise ShapeError(f"{name} is {list(bound.shape)}: a bound has one element")


# --- rules ------------------------------------------------------------------------------------

def _bool_result(shape) -> TensorInfo | None:
    return None if shape is None else TensorInfo(shape, "bool")


@rule("elementwise_float")
def elementwise_float(op: OpView, inputs: list) -> list:
    """Y like X, a float tensor."""
    check_info_dtype(inputs[0], "X", FLOAT)
    return [inputs[0]]


@rule("elementwise_signed")
def elementwise_signed(op: OpView, inputs: list) -> list:
    """Y like X, a float or signed integer tensor."""
    check_info_dtype(inputs[0], "X", SIGNED)
    return [inputs[0]]


@rule("elementwise_float_gradient")
def elementwise_float_gradient(op: OpView, inputs: list) -> list:
    """dX like the float input 0 (X or Y), of dY's shape."""
    first, dy = inputs
    name = "Y" if op.type == "ClipGradient" else "X"
    check_info_dtype(first, name, FLOAT)
    if first is not None and dy is not None:
        same_shape(first.shape, dy.shape, (name, "dY"))
    return [first]


@rule("elementwise_unary_gradient")
def elementwise_unary_gradient(op: OpView, inputs: list) -> list:
    """dX like the float input that is not dY (X or Y), of dY's shape."""
    value = check_unary_gradient(op.input_names, *inputs)
    return [inputs[value] if inputs[value] is not None else inputs[1 - value]]


@rule("elementwise_pow")
def elementwise_pow(op: OpView, inputs: list) -> list:
    """Y like X. An exponent tensor must have X's shape, or line up with X under
    legacy broadcasting (broadcast=1); under numpy_broadcast=1 it broadcasts and X and
    the exponent are of any numeric types."""
    check_pow_exponent(op.has("exponent"), op.n_inputs == 2)
    x = inputs[0]
    if op.n_inputs == 2 and op.arg("numpy_broadcast"):
        exponent = inputs[1]
        check_info_dtype(x, "X", NUMERIC)
        check_info_dtype(exponent, "exponent", NUMERIC)
        if x is None or exponent is None:
            return [None]
        return [TensorInfo(numpy_broadcast_shape(x.shape, exponent.shape, POW_NAMES), x.dtype)]
    check_info_dtype(x, "X", FLOAT)
    if op.n_inputs == 1:
        return [x]
    exponent = inputs[1]
    same_type(x, exponent, POW_NAMES)
    axis = op_axis(op)
    if x is not None and exponent is not None:
        pow_layout(x.shape, exponent.shape, axis)
    return [x if x is not None or axis is not None else exponent]


@rule("elementwise_clip")
def elementwise_clip(op: OpView, inputs: list) -> list:
    """Y like X: a float X, or with bound tensors a numeric X and bounds of its type."""
    if op.n_inputs == 1:
        check_info_dtype(inputs[0], "X", FLOAT)
    else:
        check_clip_bounds(inputs[0], inputs[1:])
    return [inputs[0]]


@rule("elementwise_not")
def elementwise_not(op: OpView, inputs: list) -> list:
    """A bool tensor of X's shape; X must be bool."""
    check_info_dtype(inputs[0], "X", BOOL)
    return [inputs[0]]


@rule("elementwise_logical")
def elementwise_logical(op: OpView, inputs: list) -> list:
    """Bool A and B broadcast to a bool C."""
    a, b = inputs
    check_info_dtype(a, "A", BOOL)
    check_info_dtype(b, "B", BOOL)
    return [_bool_result(binary_shape(op, a, b))]


@rule("elementwise_bitwise")
def elementwise_bitwise(op: OpView, inputs: list) -> list:
    """Integer or bool A and B of one type broadcast to C of that type."""
    a, b = inputs
    check_info_dtype(a, "A", INT_BOOL)
    same_type(a, b)
    shape = binary_shape(op, a, b)
    return [None if shape is None else TensorInfo(shape, a.dtype)]


@rule("elementwise_compare")
def elementwise_compare(op: OpView, inputs: list) -> list:
    """A and B of one type broadcast to a bool C."""
    a, b = inputs
    same_type(a, b)
    return [_bool_result(binary_shape(op, a, b))]


@rule("elementwise_where")
def elementwise_where(op: OpView, inputs: list) -> list:
    """Z like X; X and Y must match, and C must have their shape (or one entry per row);
    with numpy_broadcast=1 the three broadcast."""
    c, x, y = inputs
    z = check_where(c, x, y, op.arg("broadcast_on_rows"), op.arg("numpy_broadcast"))
    if op.arg("numpy_broadcast"):
        return [z]
    return [x if x is not None else y]
