"""Inference rules of the adagrad_fused family: the (RowWise)SparseAdagrad updates
fused with the gradients of SparseLengthsSum / Mean / WeightedSum.

param and moment keep their shapes; the WeightedSum forms' aux_grad holds one
value per index. The checks take plain shapes and dtypes: the kernels call them too.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.sparse_update import moment_size
from pycaffe2.schema.inference.training import _one_element

INDEX_DTYPES = ("int32", "int64")


def fused_shapes(param_shape, moment_shape, indices_shape, indices_dtype, grad_shape, lengths_shape,
                 lengths_dtype, row_wise: bool) -> None:
    """Raise unless the shapes fit: 1-D indices and lengths of an index type, one grad row
    per segment of param's row size, a moment per element (per row if row_wise)."""
    if len(param_shape) < 1:
        raise ShapeError("param must be at least 1-D (its rows are the first axis)")
    for name, shape, dtype in (("indices", indices_shape, indices_dtype), ("lengths", lengths_shape, lengths_dtype)):
        if len(shape) != 1 or str(dtype) not in INDEX_DTYPES:
            raise ShapeError(f"{name} must be a 1-D int32 or int64 tensor, got {list(shape)} {dtype}")
    if len(grad_shape) < 1 or grad_shape[0] != lengths_shape[0]:
        raise ShapeError(f"grad {list(grad_shape)} must hold one row per segment ({lengths_shape[0]} lengths)")
    if math.prod(grad_shape[1:]) != math.prod(param_shape[1:]):
        raise ShapeError(f"grad rows {list(grad_shape[1:])} must hold as many elements as param rows "
                         f"{list(param_shape[1:])}")
    moment_size("moment", moment_shape, param_shape, row_wise)


def _check(op: OpView, param, moment, indices, grad, lr, lengths) -> None:
    _one_element(lr, "lr")
    if None not in (param, moment, indices, grad, lengths):
        fused_shapes(param.shape, moment.shape, indices.shape, indices.dtype, grad.shape, lengths.shape,
                     lengths.dtype, op.type.startswith("RowWise"))


@rule("adagrad_fused_lengths")
def lengths(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes."""
    param, moment, indices, grad, lr, segment_lengths = inputs
    _check(op, param, moment, indices, grad, lr, segment_lengths)
    return [param, moment]


@rule("adagrad_fused_weighted")
def weighted(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes; aux_grad: one value per index, of grad's type."""
    param, moment, _, indices, grad, lr, segment_lengths = inputs
    _check(op, param, moment, indices, grad, lr, segment_lengths)
    aux_grad = None if indices is None or grad is None else TensorInfo((math.prod(indices.shape),), grad.dtype)
    return [param, moment, aux_grad]
