"""Inference rules of the find family (Find, FindDuplicateElements), and the checks
its kernels share with them. FindDuplicateElements' length depends on the values:
unknown here.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import INDEX_TYPES


def find_inputs(index_dtype, query_dtype) -> None:
    if str(index_dtype) not in INDEX_TYPES:
        raise ShapeError(f"index must be int32 or int64, got {index_dtype}")
    if str(query_dtype) != str(index_dtype):
        raise ShapeError(f"query must have index's type {index_dtype}, got {query_dtype}")


def duplicates_input(shape, dtype) -> None:
    if len(shape) != 1:
        raise ShapeError(f"data must be 1-D, got {list(shape)}")
    if str(dtype) not in ("float32", "float64", "int32", "int64", "object") and not str(dtype).startswith(("bytes", "str")):
        raise ShapeError(f"data must be float, double, int32, int64 or strings, got {dtype}")


@rule("find_find")
def find(op: OpView, inputs: list) -> list:
    """query_indices: query's shape, index's type."""
    index, query = inputs
    if index is None or query is None:
        return [None]
    find_inputs(index.dtype, query.dtype)
    return [TensorInfo(query.shape, index.dtype)]


@rule("find_duplicate_elements")
def duplicate_elements(op: OpView, inputs: list) -> list:
    if inputs[0] is not None:
        duplicates_input(inputs[0].shape, inputs[0].dtype)
    return [None]
