"""Inference rules of the tensor_utility family (Size, NanCheck, IsMemberOf,
ScaleBlobs, EnsureDense) and their checks, shared with the kernels
(operators/tensor_utility.py). NanCheck's check of the values runs in its kernel.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

MEMBER_TYPES = ("int32", "int64", "bool", "object")


@rule("tensor_utility_size")
def size(op: OpView, inputs: list) -> list:
    """Size: a 0-d int64 tensor, whatever the input."""
    return [TensorInfo((), "int64")]


def float_input(index: int, dims: tuple, dtype: str) -> None:
    if not dtype.startswith("float"):
        raise ShapeError(f"input {index} must be a float tensor, got {list(dims)} {dtype}")


@rule("tensor_utility_nan_check")
def nan_check(op: OpView, inputs: list) -> list:
    """NanCheck: like input 0; every input is a float tensor."""
    for index, info in enumerate(inputs):
        if info is not None:
            float_input(index, info.shape, info.dtype)
    return [inputs[0]]


def member_type(dims: tuple, dtype: str, values) -> None:
    """IsMemberOf looks up ints, bools or strings, with values of the same kind."""
    if dtype not in MEMBER_TYPES:
        raise ShapeError(f"X must be int32, int64, bool or string, got {list(dims)} {dtype}")
    strings = any(isinstance(v, (str, bytes)) for v in values)
    if values and strings != (dtype == "object"):
        raise ShapeError(f"`value` holds {'strings' if strings else 'numbers'}, X is {dtype}")


@rule("tensor_utility_is_member_of")
def is_member_of(op: OpView, inputs: list) -> list:
    """IsMemberOf: bool of X's shape."""
    x = inputs[0]
    if x is None:
        return [None]
    member_type(x.shape, x.dtype, list(op.arg("value")))
    return [TensorInfo(x.shape, "bool")]


def one_output_each(n_inputs: int, n_outputs: int) -> None:
    if n_inputs != n_outputs:
        raise ShapeError(f"needs one output per input, got {n_inputs} inputs and {n_outputs} outputs")


@rule("tensor_utility_scale_blobs")
def scale_blobs(op: OpView, inputs: list) -> list:
    """ScaleBlobs: each output like its input (float)."""
    one_output_each(op.n_inputs, op.n_outputs)
    for index, info in enumerate(inputs):
        if info is not None:
            float_input(index, info.shape, info.dtype)
    return list(inputs)
