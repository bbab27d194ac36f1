"""Inference rules of the optimizer_util family (Lars, LearningRateAdaption,
ClipTensorByScaling, EnsureClipped, RowWiseCounter, SparseDropoutWithReplacement,
WeightScale, SparseNormalize, Float16SparseNormalize, SparseLpRegularizer).

The checks take plain shapes, dtypes and args: the kernels call them too.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_sizes
from pycaffe2.schema.inference.sparse_update import sparse_rows
from pycaffe2.schema.inference.training import _counter, _one_element, _shapes


def positive_threshold(threshold) -> None:
    """Raise unless ClipTensorByScaling's threshold is > 0."""
    if not threshold > 0:
        raise ShapeError(f"threshold must be > 0, got {threshold}")


def not_empty(shape, name: str) -> None:
    if math.prod(shape) == 0:
        raise ShapeError(f"{name} must not be empty, got {list(shape)}")


def ensure_clipped_inputs(n_inputs: int) -> None:
    """EnsureClipped takes param alone or param, indices and grad."""
    if n_inputs == 2:
        raise ShapeError("takes param alone, or param, indices and grad (the sparse form): "
                         "got 2 inputs")


def row_wise_counter(prev_iter_shape, prev_iter_dtype, counter_shape, counter_dtype) -> None:
    """Raise unless prev_iter is int64 and the counter a float tensor of its size."""
    if str(prev_iter_dtype) != "int64":
        raise ShapeError(f"prev_iter must be int64, got {prev_iter_dtype}")
    if not str(counter_dtype).startswith("float"):
        raise ShapeError(f"update_counter must be a float tensor, got {counter_dtype}")
    same_sizes({"prev_iter": prev_iter_shape, "update_counter": counter_shape})


def index_dtype(dtype) -> None:
    if str(dtype) not in ("int32", "int64"):
        raise ShapeError(f"indices must be int32 or int64, got {dtype}")


def sparse_dropout(x_shape, x_dtype, lengths_shape, lengths_dtype) -> None:
    """Raise unless X is 1-D int64 and Lengths 1-D int32."""
    if len(x_shape) != 1 or str(x_dtype) != "int64":
        raise ShapeError(f"X must be a 1-D int64 tensor, got {list(x_shape)} {x_dtype}")
    if len(lengths_shape) != 1 or str(lengths_dtype) != "int32":
        raise ShapeError(f"Lengths must be a 1-D int32 tensor, got {list(lengths_shape)} {lengths_dtype}")


@rule("optimizer_util_lars")
def lars(op: OpView, inputs: list) -> list:
    """lr_rescaled: [1] of X's type."""
    x, dx, wd, trust, lr_max = inputs
    same_sizes(_shapes({"X": x, "dX": dx}))
    for info, name in ((wd, "wd"), (trust, "trust"), (lr_max, "lr_max")):
        _one_element(info, name)
    return [None if x is None else TensorInfo((1,), x.dtype)]


@rule("optimizer_util_learning_rate_adaption")
def learning_rate_adaption(op: OpView, inputs: list) -> list:
    """output_lr is like lr (one element); grad and effgrad hold as many elements."""
    lr, grad, effgrad = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"grad": grad, "effgrad": effgrad}))
    return [lr]


@rule("optimizer_util_clip_tensor_by_scaling")
def clip_tensor_by_scaling(op: OpView, inputs: list) -> list:
    """clipped is like input_tensor (not empty); val and additional_threshold hold one element."""
    positive_threshold(op.arg("threshold", 0.0))
    tensor, val = inputs[:2]
    _one_element(val, "val")
    if len(inputs) > 2:
        _one_element(inputs[2], "additional_threshold")
    if tensor is not None:
        not_empty(tensor.shape, "input_tensor")
    return [tensor]


@rule("optimizer_util_ensure_clipped")
def ensure_clipped(op: OpView, inputs: list) -> list:
    """output_param is like param; the sparse form's grad holds one row of it per index."""
    ensure_clipped_inputs(len(inputs))
    param = inputs[0]
    if len(inputs) == 3 and None not in inputs:
        _, indices, grad = inputs
        sparse_rows(param.shape, indices.shape, indices.dtype, grad.shape)
    return [param]


@rule("optimizer_util_row_wise_counter")
def row_wise_counter_rule(op: OpView, inputs: list) -> list:
    """(prev_iter, update_counter) keep their shapes and types."""
    prev_iter, counter, indices, iteration = inputs
    _counter(iteration)
    if indices is not None:
        index_dtype(indices.dtype)
    if prev_iter is not None and counter is not None:
        row_wise_counter(prev_iter.shape, prev_iter.dtype, counter.shape, counter.dtype)
    return [prev_iter, counter]


@rule("optimizer_util_sparse_dropout_with_replacement")
def sparse_dropout_with_replacement(op: OpView, inputs: list) -> list:
    """Y: 1-D int64 of a length the draw decides; OutputLengths like Lengths."""
    x, lengths = inputs
    if x is not None and lengths is not None:
        sparse_dropout(x.shape, x.dtype, lengths.shape, lengths.dtype)
    return [None, None if lengths is None else TensorInfo(lengths.shape, "int32")]


@rule("optimizer_util_weight_scale")
def weight_scale(op: OpView, inputs: list) -> list:
    """nw is like w."""
    _counter(inputs[1])
    return [inputs[0]]


def lp_norm(p) -> None:
    if p not in (1.0, 2.0):
        raise ShapeError(f"p must be 1 or 2 (L1 or L2 regularization), got {p}")


def row_param(shape, dtype, float16: bool) -> None:
    """Raise unless param is at least 1-D and float (float16 for Float16SparseNormalize)."""
    if len(shape) < 1:
        raise ShapeError("param must be at least 1-D (its rows are the first axis)")
    if float16 and str(dtype) != "float16":
        raise ShapeError(f"param must be float16, got {dtype}")
    if not float16 and str(dtype) not in ("float32", "float64"):
        raise ShapeError(f"param must be a float tensor, got {dtype}")


@rule("optimizer_util_sparse_rows")
def sparse_rows_rule(op: OpView, inputs: list) -> list:
    """output_param is like param."""
    if op.type == "SparseLpRegularizer":
        lp_norm(op.arg("p", 2.0))
    param, indices = inputs[:2]
    if param is not None:
        row_param(param.shape, param.dtype, op.type == "Float16SparseNormalize")
    if indices is not None:
        index_dtype(indices.dtype)
    return [param]
