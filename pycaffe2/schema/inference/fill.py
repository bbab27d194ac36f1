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
    "GivenTensorDoubleFill": "float64", "GivenTensorFp16Fill": "float16", "GivenTensorInt16Fill": "int16", "GivenTensorIntFill": "int32",
    "GivenTensorInt64Fill": "int64", "GivenTensorBoolFill": "bool",
    "GivenTensorStringFill": "object",
}
GIVEN_TENSOR_DTYPES = ("FLOAT", "DOUBLE", "BOOL", "INT16", "INT32", "INT64", "STRING")
INTEGER_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16")


# --- checks shared with the kernels -----------------------------------------------------------

def _no_negative(shape: tuple) -> tuple:
    if any(d < 0 for d in shape):
        raise ShapeError(f"shape {list(shape)} has a negative dim")
    return shape


def fill_shape(shape, extra_shape, input_as_shape, has_input: bool, source_shape=None,
               source_dtype=None, values=None) -> tuple[int, ...] | None:
    """The output shape from the shape args and the optional input: its shape, or (with
    input_as_shape=1) its `values`; None where what it needs is unknown."""
    extra = tuple(extra_shape or ())
    if not has_input:
        if extra:
            raise ShapeError(f"extra_shape {list(extra)} needs an input to extend")
        if input_as_shape:
            raise ShapeError("input_as_shape=1 needs an input holding the shape")
        return _no_negative(tuple(shape or ()))
    if shape:
        raise ShapeError(f"give the shape {list(shape)} or an input, not both")
    if source_shape is None:
        return None
    if not input_as_shape:
        return tuple(source_shape) + _no_negative(extra)
    if len(source_shape) != 1 or source_dtype != "int64":
        raise ShapeError(f"with input_as_shape=1 the input must be a 1-D int64 tensor, got "
                         f"{list(source_shape)} {source_dtype}")
    return None if values is None else _no_negative(tuple(int(d) for d in values) + extra)


def check_std(std: float) -> None:
    if std < 0:
        raise ShapeError(f"std must not be negative, got {std}")


def check_bounds(low: float, high: float) -> None:
    if low > high:
        raise ShapeError(f"min {low} is above max {high}")


def check_bound_input(name: str, shape: tuple) -> None:
    if math.prod(shape) != 1:
        raise ShapeError(f"input {name} must hold one element, got {list(shape)}")


# op type -> (the least rank of its shape, the fan it divides by)
FAN_DIMS = {"XavierFill": (1, "fan_in = size / dim 0"), "MSRAFill": (2, "fan_out = size / dim 1")}


def check_fan_rank(op_type: str, shape: tuple) -> None:
    rank, fan = FAN_DIMS[op_type]
    if len(shape) < rank:
        raise ShapeError(f"needs a shape of at least {rank} dim{'s' * (rank > 1)} ({fan}), "
                         f"got {list(shape)}")


def constant_dtype(value, dtype: int | None) -> str:
    """ConstantFill's NumPy dtype name: `dtype`, else Caffe2's from the value's type
    (float -> FLOAT, int -> INT64); the value must suit it."""
    if dtype is None:
        if isinstance(value, (str, bytes)):
            raise ShapeError("a string value needs dtype=STRING")
        return "int64" if isinstance(value, int) else "float32"
    name = NUMPY_NAMES.get(DTYPE_BY_NUMBER.get(dtype, ""))
    if name is None:
        raise ShapeError(f"dtype {DTYPE_BY_NUMBER.get(dtype, dtype)} cannot be filled")
    if name != "object" and isinstance(value, (str, bytes)):
        raise ShapeError(f"string value {value!r} cannot fill a {name} tensor")
    if isinstance(value, float) and name in INTEGER_NAMES and not value.is_integer():
        raise ShapeError(f"value {value} is not a whole number, as {name} needs")
    return name


def byte_string(values, dtype: int | None = None) -> bytes:
    """GivenTensorByteStringToUInt8Fill's bytes: one string, or a list of them joined;
    its dtype, when given, must be STRING."""
    if dtype is not None and DTYPE_BY_NUMBER.get(dtype) != "STRING":
        raise ShapeError(f"dtype must be STRING (the values' type), got {DTYPE_BY_NUMBER.get(dtype, dtype)}")
    if values is None:
        return b""
    items = [values] if isinstance(values, (str, bytes)) else values
    return b"".join(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in items)


def given_dtype(op_type: str, dtype: int | None) -> str:
    """The NumPy dtype name a GivenTensor*Fill op fills."""
    if op_type in GIVEN_TENSOR_TYPES:
        return GIVEN_TENSOR_TYPES[op_type]
    if dtype is None:
        return "float32"
    name = DTYPE_BY_NUMBER.get(dtype, str(dtype))
    if name not in GIVEN_TENSOR_DTYPES:
        raise ShapeError(f"dtype {name} is not one of {', '.join(GIVEN_TENSOR_DTYPES)}")
    return NUMPY_NAMES[name]


def check_value_count(count: int, shape: tuple) -> None:
    if count != math.prod(shape):
        raise ShapeError(f"{count} values cannot fill shape {list(shape)} ({math.prod(shape)} elements)")


# --- rules ------------------------------------------------------------------------------------

def _shape(op: OpView, inputs: list) -> tuple[int, ...] | None:
    source = inputs[0] if inputs else None
    return fill_shape(op.arg("shape"), op.arg("extra_shape"), op.arg("input_as_shape", 0),
                      bool(inputs), source and source.shape, source and source.dtype)


def _float(shape) -> TensorInfo | None:
    return None if shape is None else TensorInfo(shape, "float32")


@rule("fill_float")
def fill_float(op: OpView, inputs: list) -> list:
    """A float32 tensor of the fill shape."""
    return [_float(_shape(op, inputs))]


@rule("fill_gaussian")
def fill_gaussian(op: OpView, inputs: list) -> list:
    """Like fill_float; std must not be negative."""
    check_std(op.arg("std", 1.0))
    return fill_float(op, inputs)


@rule("fill_fan")
def fill_fan(op: OpView, inputs: list) -> list:
    """Like fill_float, of a shape with the dims the fan is read from (XavierFill, MSRAFill)."""
    shape = _shape(op, inputs)
    if shape is not None:
        check_fan_rank(op.type, shape)
    return [_float(shape)]


@rule("fill_uniform")
def fill_uniform(op: OpView, inputs: list) -> list:
    """The fill shape, float32 (int32 for UniformIntFill); min and max are args, or
    one-element tensors in the 3-input form."""
    if len(inputs) < 3:
        check_bounds(op.arg("min"), op.arg("max"))
    for bound, name in zip(inputs[1:], ("min", "max")):
        if bound is not None:
            check_bound_input(name, bound.shape)
    shape = _shape(op, inputs[:1])
    return [None if shape is None else TensorInfo(shape, "int32" if op.type == "UniformIntFill" else "float32")]


def diagonal_dtype(shape: tuple | None, dtype: int) -> str:
    """DiagonalFill's NumPy dtype; its shape needs two dims or more."""
    if shape is not None and len(shape) < 2:
        raise ShapeError(f"needs a shape of at least 2 dims, got {list(shape)}")
    name = NUMPY_NAMES.get(DTYPE_BY_NUMBER.get(dtype, ""))
    if name is None or name == "object":
        raise ShapeError(f"dtype {DTYPE_BY_NUMBER.get(dtype, dtype)} cannot hold a diagonal value")
    return name


@rule("fill_diagonal")
def fill_diagonal(op: OpView, inputs: list) -> list:
    """The fill shape (rank >= 2) of type `dtype`."""
    shape = _shape(op, inputs)
    dtype = diagonal_dtype(shape, op.arg("dtype"))
    return [None if shape is None else TensorInfo(shape, dtype)]


def check_lengths(shape: tuple, dtype: str) -> None:
    if len(shape) != 1 or not dtype.startswith(("int", "uint")):
        raise ShapeError(f"input lengths must be a 1-D int tensor, got {list(shape)} {dtype}")


@rule("fill_lengths_range")
def fill_lengths_range(op: OpView, inputs: list) -> list:
    """LengthsRangeFill: int32 of a length that depends on the values (unknown)."""
    if inputs[0] is not None:
        check_lengths(inputs[0].shape, inputs[0].dtype)
    return [None]


RANGE_NAMES = {1: ("stop",), 2: ("start", "stop"), 3: ("start", "stop", "step")}


def range_inputs(shapes: list, dtypes: list) -> None:
    """Range's inputs: one-element numbers of one type."""
    names = RANGE_NAMES[len(shapes)]
    for name, shape, dtype in zip(names, shapes, dtypes):
        check_bound_input(name, shape)
        if not dtype.startswith(("int", "uint", "float")):
            raise ShapeError(f"input {name} must be a number, got {dtype}")
    if len(set(dtypes)) > 1:
        raise ShapeError(f"inputs {', '.join(names)} must share one type, got {', '.join(dtypes)}")


@rule("fill_range")
def fill_range(op: OpView, inputs: list) -> list:
    """Range: 1-D of the inputs' type, of a length that depends on their values (unknown)."""
    if all(info is not None for info in inputs):
        range_inputs([i.shape for i in inputs], [i.dtype for i in inputs])
    return [None]


@rule("fill_constant")
def fill_constant(op: OpView, inputs: list) -> list:
    """The fill shape; the type is `dtype`, else FLOAT for a float value, INT64 for an int."""
    dtype = constant_dtype(op.arg("value", 0.0), op.arg("dtype"))
    shape = _shape(op, inputs)
    return [None if shape is None else TensorInfo(shape, dtype)]


@rule("fill_given_tensor")
def fill_given_tensor(op: OpView, inputs: list) -> list:
    """The fill shape and the op's type; `values` must hold one element per entry."""
    shape = _shape(op, inputs)
    if shape is not None:
        check_value_count(len(op.arg("values") or []), shape)
    return [None if shape is None else TensorInfo(shape, given_dtype(op.type, op.arg("dtype")))]


@rule("fill_byte_string")
def fill_byte_string(op: OpView, inputs: list) -> list:
    """The fill shape, uint8; `values` must hold one byte per entry."""
    shape = _shape(op, inputs)
    data = byte_string(op.arg("values"), op.arg("dtype"))
    if shape is not None:
        check_value_count(len(data), shape)
    return [None if shape is None else TensorInfo(shape, "uint8")]


def unique_uniform_dtype(dtype: int, low: int, high: int) -> str:
    """UniqueUniformFill's NumPy dtype (INT32 or INT64); min must be below max."""
    name = DTYPE_BY_NUMBER.get(dtype, str(dtype))
    if name not in ("INT32", "INT64"):
        raise ShapeError(f"dtype must be INT32 or INT64, got {name}")
    if low >= high:
        raise ShapeError(f"max ({high}) must be above min ({low})")
    return NUMPY_NAMES[name]


@rule("fill_unique_uniform")
def fill_unique_uniform(op: OpView, inputs: list) -> list:
    """The fill shape (from input 0 when there is an avoid input), int32 or int64."""
    dtype = unique_uniform_dtype(op.arg("dtype"), op.arg("min"), op.arg("max"))
    avoid = inputs[1] if len(inputs) > 1 else None
    if avoid is not None and avoid.dtype != dtype:
        raise ShapeError(f"avoid ({avoid.dtype}) must have the output's type ({dtype})")
    shape = _shape(op, inputs[:1])
    return [None if shape is None else TensorInfo(shape, dtype)]
