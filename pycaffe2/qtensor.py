"""Caffe2's quantized tensor (Int8TensorCPU) as a blob value.

An Int8 blob holds `data` (uint8 for activations and weights, int32 for biases)
with the affine map real = scale * (q - zero_point). Caffe2's Python API shows
it the same way (`workspace.FetchInt8Blob` gives `Int8Tensor(data, scale,
zero_point)`), so fetching an Int8 blob gives this tuple.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

QMIN, QMAX = 0, 255  # uint8, as Caffe2's Int8 ops (QNNPACK) use


class Int8Tensor(NamedTuple):
    data: np.ndarray
    scale: float
    zero_point: int

    def copy(self) -> Int8Tensor:
        return Int8Tensor(np.array(self.data, copy=True), float(self.scale), int(self.zero_point))

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def dequantize(self) -> np.ndarray:
        """The real values, float32."""
        return (np.float32(self.scale) * (self.data.astype(np.int32) - self.zero_point)).astype(np.float32)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> Int8Tensor:
    """uint8 codes of float `x`: round half to even of x / scale, plus zero_point, clamped to [0, 255]."""
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return Int8Tensor(np.clip(q, QMIN, QMAX).astype(np.uint8), float(scale), int(zero_point))
