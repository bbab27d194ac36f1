"""Inference rules of the math_tensor family, and the checks its kernels share.

Expand's and NumpyTile's output shapes come from an input's values, so their
rules give only what the input shapes and types decide; the kernels also refuse
an output of more than MAX_ELEMENTS elements before allocating it.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.elementwise import BOOL, FLOAT, INTEGER, check_dtype, check_info_dtype

MAX_ELEMENTS = 2**31 - 1  # Caffe2's kernels index with int
MAX_RANK = 32  # NumPy's arrays have at most 64 dims


def check_size(shape: tuple, name: str) -> None:
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise ShapeError(f"{name} would be {list(shape)}, {count} elements: more than {MAX_ELEMENTS}")


def check_vector(name: str, info: TensorInfo | None) -> None:
    """A 1-D int32 or int64 tensor (a shape or counts)."""
    if info is None:
        return
    check_dtype(name, info.shape, info.dtype, INTEGER)
    if len(info.shape) != 1:
        raise ShapeError(f"{name} must be 1-D, got {list(info.shape)}")


def expand_shape(x: tuple, shape: tuple) -> tuple:
    """Y's shape: X broadcast against `shape` (entries below 1 count as 1), right-aligned."""
    if len(shape) > MAX_RANK:
        raise ShapeError(f"shape has {len(shape)} entries: at most {MAX_RANK} dims are supported")
    wanted = tuple(int(d) if d > 0 else 1 for d in shape)
    rank = max(len(x), len(wanted))
    x_dims = (1,) * (rank - len(x)) + tuple(x)
    y_dims = (1,) * (rank - len(wanted)) + wanted
    out = []
    for a, b in zip(x_dims, y_dims):
        if a != b and 1 not in (a, b):
            raise ShapeError(f"X is {list(x)} and shape is {list(shape)}: dims {a} and {b} do not "
                             f"broadcast (they must be equal or one of them 1)")
        out.append(b if a == 1 else a)
    check_size(tuple(out), "Y")
    return tuple(out)


def check_expands_to(x: tuple, dy: tuple) -> None:
    """ExpandGradient's X must broadcast to dY's shape (dims right-aligned, equal or 1)."""
    x, dy = tuple(x), tuple(dy)
    tail = dy[len(dy) - len(x):] if len(x) <= len(dy) else None
    if tail is None or any(a not in (1, b) for a, b in zip(x, tail)):
        raise ShapeError(f"X is {list(x)} but dY is {list(dy)}: X must broadcast to dY")


def tile_shape(data: tuple, repeats: tuple) -> tuple:
    """np.tile's shape for one count >= 0 per dim of data."""
    if len(repeats) != len(data):
        raise ShapeError(f"repeats has {len(repeats)} entries but data has {len(data)} dims "
                         f"({list(data)}): one count per dim")
    if any(r < 0 for r in repeats):
        raise ShapeError(f"repeats must be >= 0, got {list(repeats)}")
    out = tuple(int(d) * int(r) for d, r in zip(data, repeats))
    check_size(out, "tiled_data")
    return out


def check_conditional(condition, data_t, data_f) -> None:
    """Condition 1-D bool; DataT and DataF alike, at least 1-D, one row per condition entry."""
    if condition is not None:
        check_dtype("Condition", condition.shape, condition.dtype, BOOL)
        if len(condition.shape) != 1:
            raise ShapeError(f"Condition must be 1-D, got {list(condition.shape)}")
    if data_t is not None and data_f is not None and data_t != data_f:
        raise ShapeError(f"DataT is {data_t.describe()} but DataF is {data_f.describe()}: they must match")
    data = data_t if data_t is not None else data_f
    if data is None:
        return
    if not data.shape:
        raise ShapeError("DataT and DataF must be at least 1-D, got 0-d tensors")
    if condition is not None and condition.shape[0] != data.shape[0]:
        raise ShapeError(f"Condition has {condition.shape[0]} entries but DataT and DataF have "
                         f"{data.shape[0]} rows ({list(data.shape)})")


@rule("math_tensor_enforce_finite")
def math_tensor_enforce_finite(op: OpView, inputs: list) -> list:
    """No outputs; the input must be float."""
    check_info_dtype(inputs[0], "input", FLOAT)
    return []


@rule("math_tensor_expand")
def math_tensor_expand(op: OpView, inputs: list) -> list:
    """Y's shape comes from the shape input's values: unknown here."""
    check_vector("shape", inputs[1])
    return [None]


@rule("math_tensor_expand_gradient")
def math_tensor_expand_gradient(op: OpView, inputs: list) -> list:
    """dX like X; X must broadcast to dY's shape."""
    dy, x = inputs
    if dy is not None and x is not None:
        check_expands_to(x.shape, dy.shape)
        return [TensorInfo(x.shape, dy.dtype)]
    return [None]


@rule("math_tensor_numpy_tile")
def math_tensor_numpy_tile(op: OpView, inputs: list) -> list:
    """tiled_data's shape comes from the repeats' values: unknown here."""
    data, repeats = inputs
    check_vector("repeats", repeats)
    if data is not None and repeats is not None and repeats.shape[0] != len(data.shape):
        raise ShapeError(f"repeats has {repeats.shape[0]} entries but data has {len(data.shape)} dims "
                         f"({list(data.shape)}): one count per dim")
    return [None]


@rule("math_tensor_conditional")
def math_tensor_conditional(op: OpView, inputs: list) -> list:
    """DataO like DataT (and DataF)."""
    check_conditional(*inputs)
    return [inputs[1] if inputs[1] is not None else inputs[2]]


@rule("math_tensor_replace_nan")
def math_tensor_replace_nan(op: OpView, inputs: list) -> list:
    """output like the float input."""
    check_info_dtype(inputs[0], "input", FLOAT)
    return [inputs[0]]
