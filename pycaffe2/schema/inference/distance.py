"""Inference rules of the distance family (L1Distance, DotProduct,
DotProductWithPadding, CosineSimilarity and their gradients), and the checks
its kernels share with them.

X and Y are batches of rows split after their first dim (N = 1 when 0-d); Z is
[N] in X's float type, each gradient like its input. All but
DotProductWithPadding need X and Y of one shape, as SquaredL2Distance does
(loss.py); DotProductWithPadding needs only the same rank and first dim.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import float_dtypes
from pycaffe2.schema.inference.loss import per_example_grad, squared_l2_distance, squared_l2_distance_gradient


def padded_rows(x_shape, y_shape, replicate) -> tuple[int, int, int]:
    """(N, DX, DY) of DotProductWithPadding's X and Y: batches of rows of their own
    lengths, of one rank and first dim. With replicate, the longer row must hold a
    whole number of copies of the shorter."""
    if len(x_shape) != len(y_shape) or (x_shape and x_shape[0] != y_shape[0]):
        raise ShapeError(f"X is {list(x_shape)} but Y is {list(y_shape)}: they must have the same "
                         f"number of dims and the same first dim")
    n = x_shape[0] if x_shape else 1
    dx, dy = math.prod(x_shape[1:]), math.prod(y_shape[1:])
    short, long = sorted((dx, dy))
    if replicate and short != long and (short == 0 or long % short):
        raise ShapeError(f"replicate repeats the shorter row, but X rows have {dx} elements and Y "
                         f"rows {dy}: the longer must be a multiple of the shorter")
    return n, dx, dy


def _float_inputs(inputs: list) -> None:
    float_dtypes([None if info is None else info.dtype for info in inputs])


@rule("distance_float")
def float_distance(op: OpView, inputs: list) -> list:
    """L1Distance, DotProduct, CosineSimilarity: as SquaredL2Distance, float inputs only."""
    _float_inputs(inputs)
    return squared_l2_distance(op, inputs)


@rule("distance_float_gradient")
def float_distance_gradient(op: OpView, inputs: list) -> list:
    """Their gradient ops: as SquaredL2DistanceGradient, float inputs only."""
    _float_inputs(inputs)
    return squared_l2_distance_gradient(op, inputs)


def _padded_batch(op: OpView, x, y) -> int | None:
    """N when known, after checking X and Y (float, one rank and first dim)."""
    _float_inputs([x, y])
    if x is not None and y is not None:
        return padded_rows(x.shape, y.shape, op.arg("replicate", 0))[0]
    known = x if x is not None else y
    return None if known is None else (known.shape[0] if known.shape else 1)


@rule("distance_dot_product_with_padding")
def dot_product_with_padding(op: OpView, inputs: list) -> list:
    """Z is [N] in X's type; X and Y share their rank and first dim, not their row length."""
    x, y = inputs
    n = _padded_batch(op, x, y)
    return [None if n is None else TensorInfo((n,), (x if x is not None else y).dtype)]


@rule("distance_dot_product_with_padding_gradient")
def dot_product_with_padding_gradient(op: OpView, inputs: list) -> list:
    """dX is like X and dY like Y; dZ must be [N]."""
    x, y, dz = inputs
    n = _padded_batch(op, x, y)
    if dz is not None and n is not None:
        per_example_grad(dz.shape, n, "dZ")
    return [x, y]
