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


COPY_ROWS_TYPES = ("float16", "float32", "float64", "int32", "int64")


def check_copy_rows(tensor, tensor_dtype: str, indices, indices_dtype: str, row, row_dtype: str) -> None:
    """CopyRowsToTensor's shapes: a 2-D tensor, 1-D int indices, a 1-D row of its width and type."""
    if tensor_dtype not in COPY_ROWS_TYPES:
        raise ShapeError(f"input_tensor must be one of {', '.join(COPY_ROWS_TYPES)}, got {tensor_dtype}")
    if len(tensor) != 2:
        raise ShapeError(f"input_tensor should be 2-d, got {list(tensor)}")
    if len(indices) != 1 or indices_dtype not in ("int32", "int64"):
        raise ShapeError(f"indices should be a 1-d int32 or int64 tensor, got {list(indices)} {indices_dtype}")
    if len(row) != 1:
        raise ShapeError(f"row should be 1-d, got {list(row)}")
    if row[0] != tensor[1]:
        raise ShapeError(f"width of input tensor should match lengths of row: input_tensor {list(tensor)}, "
                         f"row {list(row)}")
    if row_dtype != tensor_dtype:
        raise ShapeError(f"row is {row_dtype} but input_tensor is {tensor_dtype}")


@rule("tensor_utility_copy_rows_to_tensor")
def copy_rows_to_tensor(op: OpView, inputs: list) -> list:
    """CopyRowsToTensor: like input_tensor."""
    if all(info is not None for info in inputs):
        tensor, indices, row = inputs
        check_copy_rows(tensor.shape, tensor.dtype, indices.shape, indices.dtype, row.shape, row.dtype)
    return [inputs[0]]


def copy_rows_gradient_type(dtype: str) -> None:
    if dtype not in COPY_ROWS_TYPES:
        raise ShapeError(f"dY must be one of {', '.join(COPY_ROWS_TYPES)}, got {dtype}")


@rule("tensor_utility_copy_rows_to_tensor_gradient")
def copy_rows_to_tensor_gradient(op: OpView, inputs: list) -> list:
    """CopyRowsToTensorGradient: like dY."""
    if inputs[0] is not None:
        copy_rows_gradient_type(inputs[0].dtype)
    return [inputs[0]]
