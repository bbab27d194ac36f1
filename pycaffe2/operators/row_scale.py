"""Per-row scaling kernels (NumPy) on the CPU: RowMul (whose gradient scales
the output gradient by w and sums output gradient times mat per row with
ReduceTailSum, as Caffe2's maker does), ReduceTailSum and SquareRootDivide
(its own gradient). Shape checks are the schema's
(schema/inference/row_scale.py).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference import ShapeError, TensorInfo
from pycaffe2.schema.inference import row_scale as checks


def _column(values: np.ndarray, n: int) -> np.ndarray:
    return values.reshape(n, 1)


@register_cpu("RowMul")
def row_mul(mat, w):
    checks.row_mul(None, [TensorInfo(mat.shape, mat.dtype.name), TensorInfo(w.shape, w.dtype.name)])
    n = mat.shape[0]
    return (mat.reshape(n, -1) * _column(w, n)).astype(mat.dtype, copy=False).reshape(mat.shape)


@register_cpu("ReduceTailSum")
def reduce_tail_sum(mat):
    checks.reduce_tail_sum(None, [TensorInfo(mat.shape, mat.dtype.name)])
    return mat.reshape(mat.shape[0], -1).sum(axis=1, dtype=mat.dtype)


@register_cpu("SquareRootDivide")
def square_root_divide(data, scale):
    checks.float_rows(TensorInfo(data.shape, data.dtype.name), "data")
    checks.row_scales(data.shape, scale.shape, scale.dtype.name)
    n = data.shape[0]
    scale = scale.reshape(-1)[:n].astype(np.float64)  # Caffe2 reads the first N values
    if (scale < 0).any():
        raise ShapeError(f"scale must not be negative, got {scale.min()}")
    multiplier = np.where(scale == 0, 1.0, 1 / np.sqrt(np.where(scale == 0, 1.0, scale)))
    return (data.reshape(n, -1) * _column(multiplier, n)).astype(data.dtype).reshape(data.shape)


@register_gradient("RowMul")
def _row_mul_gradient(g):
    # d mat = RowMul(dY, w); dw = the row sums of dY * mat.
    partial = g.GI(1) + "before_aggregate"
    return [g.Op("RowMul", [g.GO(0), g.I(1)], [g.GI(0)]),
            g.Op("Mul", [g.GO(0), g.I(0)], [partial]),
            g.Op("ReduceTailSum", [partial], [g.GI(1)])]


@register_gradient("SquareRootDivide")
def _square_root_divide_gradient(g):
    return [g.Op("SquareRootDivide", [g.GO(0), g.I(1)], [g.GI(0)])]
