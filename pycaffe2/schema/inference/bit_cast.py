"""Inference rule of the bit_cast family (BitCast) and the width check its kernel shares."""
from __future__ import annotations

import numpy as np

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def same_width(dtype, to: str) -> None:
    source, target = np.dtype(str(dtype)), np.dtype(to)
    if source.kind not in "biuf":
        raise ShapeError(f"input must be a numeric or bool tensor, got {dtype}")
    if source.itemsize != target.itemsize:
        raise ShapeError(f"{dtype} is {source.itemsize * 8} bits wide and {to} {target.itemsize * 8}: "
                         "BitCast needs types of one width")


@rule("bit_cast_bit_cast")
def bit_cast(op: OpView, inputs: list) -> list:
    """output: the input's shape, type `to`."""
    to = op.arg("to")
    if inputs[0] is None:
        return [None]
    same_width(inputs[0].dtype, to)
    return [TensorInfo(inputs[0].shape, to)]
