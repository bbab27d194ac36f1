"""Inference rules of the map family: a map is an object blob (unknown to
inference); keys and values are int32 or int64 tensors of the same size."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.fill import DTYPE_BY_NUMBER

MAP_DTYPES = {"INT32": "int32", "INT64": "int64"}


def map_dtype(dtype: int, name: str) -> str:
    """The NumPy name of CreateMap's key_dtype or value_dtype (INT32 or INT64)."""
    label = DTYPE_BY_NUMBER.get(dtype, str(dtype))
    if label not in MAP_DTYPES:
        raise ShapeError(f"{name} must be INT32 or INT64, got {label}")
    return MAP_DTYPES[label]


def key_values(keys, values) -> None:
    """Raise unless keys and values are int32/int64 (dtype, shape) pairs of one size."""
    for (dtype, _), what in ((keys, "keys"), (values, "values")):
        if str(dtype) not in MAP_DTYPES.values():
            raise ShapeError(f"{what} must be int32 or int64, got {dtype}")
    if math.prod(keys[1]) != math.prod(values[1]):
        raise ShapeError(f"keys and values must hold as many elements, got {list(keys[1])} "
                         f"and {list(values[1])}")


@rule("map_create")
def create(op: OpView, inputs: list) -> list:
    """The map (unknown); the dtypes must be INT32 or INT64."""
    map_dtype(op.arg("key_dtype"), "key_dtype")
    map_dtype(op.arg("value_dtype"), "value_dtype")
    return [None]


@rule("map_key_value_to_map")
def key_value_to_map(op: OpView, inputs: list) -> list:
    """The map (unknown)."""
    if inputs[0] is not None and inputs[1] is not None:
        key_values((inputs[0].dtype, inputs[0].shape), (inputs[1].dtype, inputs[1].shape))
    return [None]


@rule("map_to_key_value")
def to_key_value(op: OpView, inputs: list) -> list:
    """1-D keys and values of the map's size and types (unknown)."""
    return [None, None]
