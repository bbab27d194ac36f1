"""Inference rules of the index family: the index is an object blob (its input
info is unknown); ids are int64 in the shape of the keys."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

KEY_TYPES = ("int32", "int64", "object")


def _keys(info, name: str) -> None:
    if info is not None and str(info.dtype) not in KEY_TYPES:
        raise ShapeError(f"{name} must be int32, int64 or string keys, got {info.dtype}")


@rule("index_get")
def get(op: OpView, inputs: list) -> list:
    """int64 ids in the shape of keys."""
    _keys(inputs[1], "keys")
    return [None if inputs[1] is None else TensorInfo(inputs[1].shape, "int64")]


@rule("index_load")
def load(op: OpView, inputs: list) -> list:
    """The index (unknown); items must be 1-D keys."""
    items = inputs[1]
    _keys(items, "items")
    if items is not None and len(items.shape) != 1:
        raise ShapeError(f"items must be 1-D, got shape {list(items.shape)}")
    return [None]


@rule("index_size")
def size(op: OpView, inputs: list) -> list:
    """An int64 scalar."""
    return [TensorInfo((), "int64")]
