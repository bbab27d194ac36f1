"""Caffe2's `modeling.parameter_info`: ParameterTags (a parameter's role) and
ParameterInfo (a parameter blob with its shape, gradient and other-precision copies)."""
from __future__ import annotations

import math

from pycaffe2 import core

__all__ = ["ParameterInfo", "ParameterTags"]


class ParameterTags:
    """Caffe2's tags for a parameter's role."""
    BIAS = "BIAS"
    WEIGHT = "WEIGHT"
    COMPUTED_PARAM = "COMPUTED_PARAM"


class ParameterInfo:
    """A parameter as an Initializer makes it: `blob` (its name in `name`), `shape` and
    `size`, `grad` once known, `length` (>= 1), and `blob_copy` ({DataType: blob} of the
    same values kept in other precisions)."""

    def __init__(self, param_id, param, key=None, shape=None, length=None, grad=None, blob_copy=None):
        if not isinstance(param, core.BlobReference):
            raise TypeError(f"ParameterInfo takes a BlobReference, got {type(param).__name__}")
        self.param_id = param_id
        self.name = str(param)
        self.blob = param
        self.key = key
        self.shape = shape
        self.size = None if shape is None else math.prod(shape)
        self.length = max(1, length if length is not None else 1)
        self.grad = grad
        self.blob_copy = blob_copy
        self._optimizer = None

    @property
    def parameter(self) -> core.BlobReference:
        return self.blob

    @property
    def optimizer(self):
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value):
        if self._optimizer is not None:
            raise ValueError(f"parameter {self.name} already has an optimizer")
        self._optimizer = value

    def grad_type(self):
        """core.GradientSlice for a sparse gradient, else core.BlobReference."""
        if self.grad is None:
            raise ValueError(f"parameter {self.name} has no gradient yet")
        return core.GradientSlice if isinstance(self.grad, core.GradientSlice) else core.BlobReference

    def __str__(self) -> str:
        return self.name
