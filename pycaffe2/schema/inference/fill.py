"""Inference rules of the fill family.

A filler's shape is `shape` when it has no input; with an input it is the
input's shape (or, with input_as_shape=1, the input's values, which are not
known here) followed by `extra_shape`. The type is fixed per op, or read from
`dtype` (ConstantFill, GivenTensorFill). GivenTensor fillers must get exactly
as many values as the shape holds.
"""
from __future__ import annotations

import math

from pycaffe2.schema.args import DTYPE_BY_NUMBER
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

# TensorProto.DataType name -> NumPy dtype name (strings are object arrays).
NUMPY_NAMES = {
    "FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "INT32": "int32",
    "INT64": "int64", "INT16": "int16", "INT8": "int8", "UINT16": "uint16", "UINT8": "uint8",
    "BYTE": "uint8", "BOOL": "bool", "STRING": "object",
}
GIVEN_TENSOR_TYPES = {
    "GivenTensorDoubleFill": "float64", "GivenTensorIntFill": "int32",
    "GivenTensorInt64Fill": "int64", "GivenTensorBoolFill": "bool",
    "GivenTensorStringFill": "object",
}
GIVEN_TENSOR_DTYPES = ("FLOAT", "DOUBLE", "BOOL", "INT16", "INT32", "INT64", "STRING")


def fill_shape(op: OpView, inputs: list) -> tuple[int, ...] | None:
    """The output shape from the args and the optional shape input (None: unknown)."""
    shape, extra = op.arg("shape") or [], op.arg("extra_shape") or []
    as_shape = op.arg("input_as_shape", 0)
    if not inputs:
        if extra:
            raise ShapeError(f"{op.type}: extra_shape {extra} needs an input to extend")
        if as_shape:
            raise ShapeError(f"{op.type}: input_as_shape=1 needs an input holding the shape")
        return tuple(shape)
    if shape:
        raise ShapeError(f"{op.type}: give the shape {shape} or an input, not both")
    source = inputs[0]
    if source is None:
        return None
    if not as_shape:
        return source.shape + tuple(extra)
    if len(source.shape) != 1 or source.dtype != "int64":
        raise ShapeError(f"{op.type}: with input_as_shape=1 the input must be a 1-D int64 "
                         f"tensor, got {source.describe()}")
    return None


def _dtype_name(op: OpView, number: int) -> str:
    name = DTYPE_BY_NUMBER.get(number, str(number))
    if name not in NUMPY_NAMES:
        raise ShapeError(f"{op.type}: dtype {name} cannot be filled")
    return NUMPY_NAMES[name]


def _info(shape, dtype: str) -> TensorInfo | None:
    return None if shape is None else TensorInfo(shape, dtype)


@rule("fill_float")
def fill_float(op: OpView, inputs: list) -> list:
    """A float32 tensor of the fill shape."""
    return [_info(fill_shape(op, inputs), "float32")]


@rule("fill_uniform")
def fill_uniform(op: OpView, inputs: list) -> list:
    """Like fill_float; in the 3-input form min and max must be one-element tensors."""
    for index, name in ((1, "min"), (2, "max")):
        bound = inputs[index] if len(inputs) > index else None
        if bound is not None and math.prod(bound.shape) != 1:
            raise ShapeError(f"{op.type}: input {name} must hold one element, "
                             f"got {list(bound.shape)}")
    return [_info(fill_shape(op, inputs[:1]), "float32")]


@rule("fill_constant")
def fill_constant(op: OpView, inputs: list) -> list:
    """The fill shape; the type is `dtype`, else FLOAT for a float value, INT64 for an int."""
    if op.has("dtype"):
        dtype = _dtype_name(op, op.arg("dtype"))
    elif isinstance(op.arg("value"), (bytes, str)):
        raise ShapeError(f"{op.type}: a string value needs dtype=STRING")
    else:
        dtype = "int64" if isinstance(op.arg("value"), int) else "float32"
    return [_info(fill_shape(op, inputs), dtype)]


def _given_dtype(op: OpView) -> str:
    if op.type in GIVEN_TENSOR_TYPES:
        return GIVEN_TENSOR_TYPES[op.type]
    if not op.has("dtype"):
        return "float32"
    name = DTYPE_BY_NUMBER.get(op.arg("dtype"), str(op.arg("dtype")))
    if name not in GIVEN_TENSOR_DTYPES:
        raise ShapeError(f"{op.type}: dtype {name} is not one of {', '.join(GIVEN_TENSOR_DTYPES)}")
    return NUMPY_NAMES[name]


@rule("fill_given_tensor")
def fill_given_tensor(op: OpView, inputs: list) -> list:
    """The fill shape and the op's type; `values` must hold one element per entry."""
    shape = fill_shape(op, inputs)
    values = op.arg("values") or []
    if shape is not None and len(values) != math.prod(shape):
        raise ShapeError(f"{op.type}: {len(values)} values cannot fill shape {list(shape)} "
                         f"({math.prod(shape)} elements)")
    return [_info(shape, _given_dtype(op))]
