"""Inference rules of the stats family: a registry is an object blob (its input
info is unknown); exports are 1-D of unknown length."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

NUMERIC = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")


@rule("stats_update")
def update(op: OpView, inputs: list) -> list:
    """keys: strings; values: int64, one per key."""
    keys, values = inputs[0], inputs[1]
    if keys is not None and keys.dtype != "object":
        raise ShapeError(f"keys must be a string tensor, got {keys.dtype}")
    if values is not None and values.dtype != "int64":
        raise ShapeError(f"values must be int64, got {values.dtype}")
    if keys is not None and values is not None and _size(keys.shape) != _size(values.shape):
        raise ShapeError(f"keys and values must hold as many elements, got {list(keys.shape)} "
                         f"and {list(values.shape)}")
    return []


def _size(shape) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


@rule("stats_export")
def export(op: OpView, inputs: list) -> list:
    """Three 1-D outputs of the registry's size (unknown)."""
    return [None, None, None]


@rule("stats_put")
def put(op: OpView, inputs: list) -> list:
    """The value must be numeric."""
    value = inputs[0]
    if value is not None and value.dtype not in NUMERIC:
        raise ShapeError(f"value must be a numeric tensor, got {value.dtype}")
    return []


@rule("stats_timer_get_and_end")
def timer_get_and_end(op: OpView, inputs: list) -> list:
    """int64 [1]."""
    return [TensorInfo((1,), "int64")]


@rule("stats_timer_get")
def timer_get(op: OpView, inputs: list) -> list:
    """An int64 scalar."""
    return [TensorInfo((), "int64")]
