"""Argument types: the bridge between schema arg types and Caffe2's Argument.

A schema gives each arg one type (or a list of types for args like
ConstantFill's `value`). This module turns friendly Python values (from YAML,
JSON or a script) into `caffe2_pb2.Argument` by that type, reads an Argument
back as a Python value, and tells whether an Argument fits a type.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from pycaffe2.proto import caffe2_pb2

# Schema type -> the Argument field that carries it. `dtype` is a
# TensorProto.DataType stored as an int; files may spell it by name.
ARG_FIELDS = {
    "float": "f", "int": "i", "bool": "i", "string": "s", "dtype": "i",
    "floats": "floats", "ints": "ints", "strings": "strings",
    "net": "n", "nets": "nets", "tensor": "t", "tensors": "tensors",
}
LIST_FIELDS = ("floats", "ints", "strings", "nets", "tensors", "qtensors")
DTYPE_NAMES = dict(caffe2_pb2.TensorProto.DataType.items())
DTYPE_BY_NUMBER = {number: name for name, number in DTYPE_NAMES.items()}


def set_fields(arg: caffe2_pb2.Argument) -> list[str]:
    """The value fields an Argument carries (an empty list field counts for nothing)."""
    return [field.name for field, _ in arg.ListFields() if field.name != "name"]


def arg_value(arg: caffe2_pb2.Argument):
    """An Argument's value as plain Python (bytes decoded when they are UTF-8)."""
    fields = set_fields(arg)
    return value_of(arg, fields[0]) if fields else []


def value_of(arg: caffe2_pb2.Argument, field: str):
    """The value an Argument holds in `field`, as arg_value gives it."""
    return python_value(field, getattr(arg, field))


def python_value(field: str, value):
    """What an Argument's `field` holding `value` means in Python, as arg_value gives it."""
    if field in LIST_FIELDS:
        value = list(value)
        if field == "strings":
            value = [_text(v) for v in value]
    elif field == "s":
        value = _text(value)
    return value


def _text(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def fits(arg: caffe2_pb2.Argument, types: tuple[str, ...]) -> bool:
    """Whether an Argument's stored field is the one some type in `types` needs."""
    fields = set_fields(arg)
    if not fields:  # an empty list fits any list type
        return any(ARG_FIELDS[t] in LIST_FIELDS for t in types)
    return len(fields) == 1 and any(ARG_FIELDS[t] == fields[0] for t in types)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def convert(value, type_name: str):
    """`value` converted for one schema type, or raise ValueError saying why."""
    if type_name == "float":
        if _is_number(value):
            return float(value)
    elif type_name in ("int", "bool"):
        if isinstance(value, bool) or _is_int(value):
            return int(value)
        if isinstance(value, float) and value.is_integer() and type_name == "int":
            return int(value)
    elif type_name == "dtype":
        if _is_int(value):
            return value
        if isinstance(value, str) and value.upper() in DTYPE_NAMES:
            return DTYPE_NAMES[value.upper()]
        raise ValueError(f"expects a data type (one of {', '.join(DTYPE_NAMES)}), got {value!r}")
    elif type_name == "string":
        if isinstance(value, (str, bytes)):
            return value.encode("utf-8") if isinstance(value, str) else value
    elif type_name in ("floats", "ints", "strings"):
        if isinstance(value, (list, tuple)):
            return [convert(item, type_name[:-1]) for item in value]
    elif type_name in ("net", "nets", "tensor", "tensors"):
        if type_name == "net" and isinstance(value, caffe2_pb2.NetDef):
            return value
        if type_name == "nets" and isinstance(value, list) and all(isinstance(v, caffe2_pb2.NetDef) for v in value):
            return value
        raise ValueError(f"a {type_name} arg must be written in Argument form")
    raise ValueError(f"expects {type_name}, got {type(value).__name__} {value!r}")


def make_argument(name: str, value, types: tuple[str, ...] = ()) -> caffe2_pb2.Argument:
    """An Argument for `value`, typed by the first of `types` it converts to.

    With no types (or none fitting) Caffe2's MakeArgument rules apply: float -> f,
    int/bool -> i, str/bytes -> s, lists (and NumPy arrays, flattened) by their
    items. Raises ValueError when
    the value has no Argument form at all (a mapping, a mixed list, ...).
    """
    arg = caffe2_pb2.Argument(name=name)
    value = plain_value(value)
    if len(types) > 1:  # an arg of several types keeps the value's own kind (7 stays an int)
        natural = _natural_field(value)
        types = sorted(types, key=lambda type_name: ARG_FIELDS[type_name] != natural)
    for type_name in types:
        try:
            converted = convert(value, type_name)
        except ValueError:
            continue
        _store(arg, ARG_FIELDS[type_name], converted)
        return arg
    _store(arg, *_untyped(value))
    return arg


_PLAIN_SCALARS = (int, float, str, bool, bytes)


def plain_value(value):
    """`value` with NumPy and other iterables made plain Python, as Caffe2's MakeArgument
    takes them: an array flattened to a list, a NumPy scalar its Python twin, a range (or
    any iterable but text, mappings and messages) a list."""
    if type(value) in _PLAIN_SCALARS:
        return value
    if isinstance(value, np.ndarray):
        return value.ravel().tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bytes, Mapping, caffe2_pb2.NetDef)) or not isinstance(value, Iterable):
        return value
    return [plain_value(item) for item in value]


def _natural_field(value) -> str | None:
    try:
        return _untyped(value)[0]
    except ValueError:
        return None


def _untyped(value):
    if isinstance(value, bool) or _is_int(value):
        return "i", int(value)
    if isinstance(value, float):
        return "f", value
    if isinstance(value, (str, bytes)):
        return "s", convert(value, "string")
    if isinstance(value, caffe2_pb2.NetDef):
        return "n", value
    if isinstance(value, (list, tuple)):
        for list_type in ("ints", "floats", "strings", "nets"):
            try:
                return ARG_FIELDS[list_type], convert(value, list_type)
            except ValueError:
                continue
    raise ValueError(f"has no Argument form: {value!r}")


def _store(arg: caffe2_pb2.Argument, field: str, value) -> None:
    if field in LIST_FIELDS:
        getattr(arg, field).extend(value)
    elif field in ("n", "t"):
        getattr(arg, field).CopyFrom(value)
    else:
        if field == "f" and math.isfinite(value) and abs(value) > 3.4028235e38:
            raise ValueError(f"float {value} does not fit in a float32")
        if field == "i" and not -2**63 <= value < 2**63:
            raise ValueError(f"int {value} does not fit in an int64")
        setattr(arg, field, value)
