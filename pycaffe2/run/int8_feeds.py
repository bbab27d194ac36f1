"""Feeding Int8 blobs (Int8Tensor) to a model, as `pycaffe2 run --feed` and `run_model` do.

Two ways, both documented in docs/running_models.md:

- lossless: an .npz holding NAME (the uint8 codes, or int32 values), NAME_scale and
  NAME_zero_point -- what `pycaffe2 run --out` writes for an Int8 blob -- is fed as
  Int8Tensor(NAME, NAME_scale, NAME_zero_point);
- a float array fed to a blob that an Int8 op reads as an Int8 tensor (Int8Conv's X,
  Int8Add's A, ...: every Int8 op but Int8Quantize and Int8FC, which take float X) is
  quantized over its range, 0 included, as Int8FC quantizes a float X (DNNLOWP's
  dynamic quantization): scale = (max(x, 0) - min(x, 0)) / 255 (1 when that is 0),
  zero_point = round(-min(x, 0) / scale). Any other array there (integer codes without
  their quantization) is refused, with how to feed it.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import RunError
from pycaffe2.qtensor import Int8Tensor

FLOAT_INPUT_INT8_OPS = {"Int8Quantize", "Int8FC"}  # Int8 ops whose inputs may be float arrays
INT8_DTYPES = (np.dtype(np.uint8), np.dtype(np.int32))


def reads_int8(op_type: str) -> bool:
    """Whether an op of this type reads its inputs as Int8 tensors."""
    return op_type.startswith("Int8") and op_type not in FLOAT_INPUT_INT8_OPS


def int8_from_npz(archive, member: str, path) -> Int8Tensor | None:
    """Int8Tensor(member, member_scale, member_zero_point) when the archive holds an Int8
    blob as `--out` writes one (integer codes and two scalars), else None."""
    scale_key, zero_key = f"{member}_scale", f"{member}_zero_point"
    if scale_key not in archive.files or zero_key not in archive.files:
        return None
    data, scale, zero_point = archive[member], archive[scale_key], archive[zero_key]
    if data.dtype not in INT8_DTYPES:
        return None  # a float array that merely has neighbours of those names
    if scale.size != 1 or zero_point.size != 1 or scale.dtype.kind != "f" or zero_point.dtype.kind not in "iu":
        raise RunError(f"{path}: {scale_key} and {zero_key} must be one float and one integer "
                       f"(got {scale.dtype} {list(scale.shape)} and {zero_point.dtype} {list(zero_point.shape)})")
    scale, zero_point = float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])
    if not (np.isfinite(scale) and scale > 0) or not -2 ** 31 <= zero_point < 2 ** 31:
        raise RunError(f"{path}: {member}'s scale {scale} must be finite and positive, its zero "
                       f"point {zero_point} an int32")
    return Int8Tensor(np.ascontiguousarray(data), scale, zero_point)


def as_int8_feed(name: str, value, op_index: int, op_type: str):
    """The value to store for a feed first read by op `op_index` of `op_type`: a float array
    quantized over its range where that op reads an Int8 tensor; others as they are."""
    if isinstance(value, Int8Tensor) or not reads_int8(op_type):
        return value
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise RunError(
            f"feed '{name}': op {op_index} ({op_type}) reads it as an Int8 tensor, and a {array.dtype} "
            f"array does not say its scale and zero point: feed a float array (quantized over its "
            f"range) or an .npz holding {name}, {name}_scale and {name}_zero_point (what --out writes)")
    if not np.isfinite(array).all():
        raise RunError(f"feed '{name}': op {op_index} ({op_type}) reads it as an Int8 tensor; a float "
                       "array with NaN or infinite values cannot be quantized")
    from pycaffe2.operators.int8 import dynamic_quantize
    return dynamic_quantize(array)
