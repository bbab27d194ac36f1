"""Distance kernels (NumPy) on the CPU, with their gradient ops: L1Distance,
DotProduct, DotProductWithPadding and CosineSimilarity (SquaredL2Distance,
which has a CUDA kernel, is in loss.py).

X and Y are seen as [N, D] rows split after the first dim; Z keeps X's float
type. DotProductWithPadding's rows may differ in length: the kernel widens the
shorter rows to the longer's length (padding or repeating them), and its
gradient folds the longer rows back onto the shorter (the adjoint of widening).
Shape checks are the schema's (schema/inference/distance.py).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.activation import float_dtypes
from pycaffe2.schema.inference.distance import padded_rows
from pycaffe2.schema.inference.loss import distance_rows, per_example_grad


def _column(dz: np.ndarray, n: int) -> np.ndarray:
    """dZ, which must be [N], as a column [N, 1]."""
    per_example_grad(dz.shape, n, "dZ")
    return dz.reshape(n, 1)


def _rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X and Y as [N, D] float rows (checked to share a shape)."""
    shape = distance_rows(x.shape, y.shape)
    float_dtypes([x.dtype.name, y.dtype.name])
    return x.reshape(shape), y.reshape(shape)


_COSINE_EPS = 1e-12  # Caffe2's floor on the squared norms


def _cosine_parts(x, y):
    """(X rows, Y rows, |X|^2, |Y|^2 floored, cosines)."""
    xr, yr = _rows(x, y)
    xx = np.maximum(np.einsum("ij,ij->i", xr, xr), _COSINE_EPS).astype(x.dtype)
    yy = np.maximum(np.einsum("ij,ij->i", yr, yr), _COSINE_EPS).astype(x.dtype)
    return xr, yr, xx, yy, np.einsum("ij,ij->i", xr, yr) / np.sqrt(xx * yy)


@register_cpu("L1Distance")
def l1_distance(x, y):
    xr, yr = _rows(x, y)
    return np.abs(xr - yr).sum(axis=1)


@register_cpu("L1DistanceGradient")
def l1_distance_gradient(x, y, dz):
    xr, yr = _rows(x, y)
    dx = (np.sign(xr - yr) * _column(dz, xr.shape[0])).astype(x.dtype).reshape(x.shape)
    return dx, -dx


@register_cpu("DotProduct")
def dot_product(x, y):
    xr, yr = _rows(x, y)
    return np.einsum("ij,ij->i", xr, yr)


@register_cpu("DotProductGradient")
def dot_product_gradient(x, y, dz):
    xr, yr = _rows(x, y)
    column = _column(dz, xr.shape[0])
    return (yr * column).astype(x.dtype).reshape(x.shape), (xr * column).astype(y.dtype).reshape(y.shape)


def _long_and_short(x, y, replicate) -> tuple[np.ndarray, np.ndarray, bool]:
    """(the longer rows, the shorter rows, whether Y's are the longer), each [N, D]."""
    n, dx, dy = padded_rows(x.shape, y.shape, replicate)
    float_dtypes([x.dtype.name, y.dtype.name])
    xr, yr = x.reshape(n, dx), y.reshape(n, dy)
    return (yr, xr, True) if dy > dx else (xr, yr, False)


def _widened(short: np.ndarray, length: int, pad_value, replicate) -> np.ndarray:
    """The shorter rows brought to `length`: repeated, or padded with pad_value."""
    n, d = short.shape
    if d == length:
        return short
    if replicate:
        return np.tile(short, (1, length // d))
    return np.concatenate([short, np.full((n, length - d), pad_value, short.dtype)], axis=1)


def _folded(long: np.ndarray, length: int, replicate) -> np.ndarray:
    """The adjoint of _widened: the longer rows summed over the repeats, or cut to `length`."""
    n, d = long.shape
    if d == length or not replicate:
        return long[:, :length]
    return long.reshape(n, d // length, length).sum(axis=1)


@register_cpu("DotProductWithPadding")
def dot_product_with_padding(x, y, *, pad_value, replicate):
    long, short, _ = _long_and_short(x, y, replicate)
    wide = _widened(short, long.shape[1], pad_value, replicate)
    return np.einsum("ij,ij->i", long, wide).astype(x.dtype, copy=False)


@register_cpu("DotProductWithPaddingGradient")
def dot_product_with_padding_gradient(x, y, dz, *, pad_value, replicate):
    long, short, y_longer = _long_and_short(x, y, replicate)
    column = _column(dz, long.shape[0])
    d_long = _widened(short, long.shape[1], pad_value, replicate) * column
    d_short = _folded(long, short.shape[1], replicate) * column
    dx, dy = (d_short, d_long) if y_longer else (d_long, d_short)
    return dx.astype(x.dtype, copy=False).reshape(x.shape), dy.astype(y.dtype, copy=False).reshape(y.shape)


@register_cpu("CosineSimilarity")
def cosine_similarity(x, y):
    return np.asarray(_cosine_parts(x, y)[4], dtype=x.dtype)


@register_cpu("CosineSimilarityGradient")
def cosine_similarity_gradient(x, y, dz):
    xr, yr, xx, yy, cos = _cosine_parts(x, y)
    dz, cos = _column(dz, xr.shape[0]), cos[:, None]
    norms = np.sqrt(xx * yy)[:, None]
    dx = dz * (yr / norms - cos * xr / xx[:, None])
    dy = dz * (xr / norms - cos * yr / yy[:, None])
    return dx.astype(x.dtype).reshape(x.shape), dy.astype(y.dtype).reshape(y.shape)


# Gradient makers: one gradient op reading both inputs and dZ (args inherited).
for _type in ("L1Distance", "DotProduct", "DotProductWithPadding", "CosineSimilarity"):
    gradient_op(_type, "I0 I1 GO0", "GI0 GI1")
