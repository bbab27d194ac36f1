"""The CPU device: blobs are NumPy arrays (or bytes, for string blobs)."""
from __future__ import annotations

import numpy as np

from pycaffe2.qtensor import Int8Tensor


class CPUDevice:
    name = "cpu"

    @staticmethod
    def put(value):
        """A value fed by the user, as the workspace will hold it (a private copy)."""
        if isinstance(value, Int8Tensor):
            return value.checked_copy()
        if isinstance(value, (bytes, str)):
            return value.encode("utf-8") if isinstance(value, str) else value
        array = np.array(value, copy=True)
        if array.dtype.kind == "U":  # strings as Caffe2 keeps them: object arrays of bytes
            array = np.array([s.encode("utf-8") for s in array.ravel()], dtype=object).reshape(array.shape)
        return array

    @staticmethod
    def fetch(value):
        """A copy for the user: changing it cannot change the workspace. A NumPy
        scalar (what a ufunc gives for 0-d operands) comes back as a 0-d array."""
        if isinstance(value, (np.ndarray, np.generic)):
            return np.array(value, copy=True)
        if isinstance(value, Int8Tensor):
            return value.copy()
        return value
