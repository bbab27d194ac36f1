"""Inference rules of the sparse_update family.

Each op updates the rows of param that `indices` name, taking one gradient
slice per index: grad holds indices.size times param's row size elements. The
updated blobs keep their shapes; the optional step output takes grad's. The
checks take plain shapes and dtypes: the kernels call them too.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.training import _counter, _one_element

INDEX_DTYPES = ("int32", "int64")


def sparse_rows(param_shape, indices_shape, indices_dtype, grad_shape) -> int:
    """Raise unless grad holds one row of param per index; return the row size."""
    if len(param_shape) < 1:
        raise ShapeError("param must be at least 1-D (its rows are the first axis)")
    if str(indices_dtype) not in INDEX_DTYPES:
        raise ShapeError(f"indices must be int32 or int64, got {indices_dtype}")
    row = math.prod(param_shape[1:])
    if math.prod(grad_shape) != math.prod(indices_shape) * row:
        raise ShapeError(f"grad {list(grad_shape)} must hold one row of param {list(param_shape)} "
                         f"per index ({math.prod(indices_shape)} indices)")
    return row


def moment_size(name: str, moment_shape, param_shape, row_wise: bool) -> None:
    """Raise unless a moment holds an element per element of param (per row if row_wise)."""
    expected = param_shape[0] if row_wise else math.prod(param_shape)
    if math.prod(moment_shape) != expected:
        what = "one element per row of" if row_wise else "as many elements as"
        raise ShapeError(f"{name} {list(moment_shape)} must hold {what} param {list(param_shape)}")


def index_range(indices, rows: int) -> None:
    """Raise unless every index names a row of param."""
    bad = [int(i) for i in indices if not 0 <= i < rows]
    if bad:
        raise ShapeError(f"index {bad[0]} is out of range for param's {rows} rows")


def _check(param, moments: dict, indices, grad, lr, row_wise_last: bool) -> None:
    """The checks on known infos; the last moment is per row when row_wise_last."""
    _one_element(lr, "lr")
    if param is None:
        return
    if indices is not None and grad is not None:
        sparse_rows(param.shape, indices.shape, indices.dtype, grad.shape)
    names = list(moments)
    for name, info in moments.items():
        if info is not None:
            moment_size(name, info.shape, param.shape, row_wise_last and name == names[-1])


def _adagrad(inputs, row_wise):
    param, moment, indices, grad, lr = inputs[:5]
    _check(param, {"moment": moment}, indices, grad, lr, row_wise)
    if len(inputs) > 5 and inputs[5] is not None and param is not None:
        moment_size("counter", inputs[5].shape, param.shape, True)
    return [param, moment]


@rule("sparse_update_adagrad")
def sparse_adagrad(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes."""
    return _adagrad(inputs, row_wise=False)


@rule("sparse_update_row_wise_adagrad")
def row_wise_sparse_adagrad(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes; moment holds one element per row."""
    return _adagrad(inputs, row_wise=True)


@rule("sparse_update_momentum_sgd")
def sparse_momentum_sgd(op: OpView, inputs: list) -> list:
    """(step, moment, param) like (grad, moment, param)."""
    grad, moment, lr, param, indices = inputs
    _check(param, {"moment": moment}, indices, grad, lr, False)
    return [grad, moment, param]


def _adam(inputs, row_wise):
    param, moment_1, moment_2, indices, grad, lr, counter = inputs
    _counter(counter)
    _check(param, {"moment_1": moment_1, "moment_2": moment_2}, indices, grad, lr, row_wise)
    return [param, moment_1, moment_2, grad]


@rule("sparse_update_adam")
def sparse_adam(op: OpView, inputs: list) -> list:
    """(param, moment_1, moment_2) keep their shapes; the steps take grad's."""
    return _adam(inputs, row_wise=False)


@rule("sparse_update_row_wise_adam")
def row_wise_sparse_adam(op: OpView, inputs: list) -> list:
    """As SparseAdam; moment_2 holds one element per row."""
    return _adam(inputs, row_wise=True)


def _scattered(data, indices, slices, name: str, data_name: str) -> None:
    """`slices` (known or not) hold one row of `data` per index, of its type."""
    if data is None or slices is None:
        return
    if slices.dtype != data.dtype:
        raise ShapeError(f"{name} is {slices.dtype}, {data_name} is {data.dtype}: they must match")
    if indices is not None:
        sparse_rows(data.shape, indices.shape, indices.dtype, slices.shape)


@rule("sparse_update_scatter_weighted_sum")
def scatter_weighted_sum(op: OpView, inputs: list) -> list:
    """X_0 keeps its shape; each X_i holds one row of it per index, of its type."""
    x0, w0, indices = inputs[:3]
    _one_element(w0, "weight_0 (input 1)")
    for position in range(3, len(inputs), 2):
        i = (position - 1) // 2
        _one_element(inputs[position + 1], f"weight_{i} (input {position + 1})")
        _scattered(x0, indices, inputs[position], f"X_{i} (input {position})", "X_0")
    return [x0]


@rule("sparse_update_scatter_assign")
def scatter_assign(op: OpView, inputs: list) -> list:
    """DATA keeps its shape; SLICES hold one row of it per index, of its type."""
    data, indices, slices = inputs
    _scattered(data, indices, slices, "SLICES", "DATA")
    return [data]


def ftrl_pairs(n_z_shape, var_shape) -> None:
    """Raise unless n_z holds an (n, z) pair per element of var."""
    if math.prod(n_z_shape) != 2 * math.prod(var_shape):
        raise ShapeError(f"n_z {list(n_z_shape)} must hold two elements (n, z) per element of "
                         f"var {list(var_shape)}")


def decay_below_one(decay) -> None:
    """Raise unless decay < 1 (the schema keeps it above 0)."""
    if not decay < 1:
        raise ShapeError(f"decay must be < 1, got {decay}")


@rule("sparse_update_ftrl")
def sparse_ftrl(op: OpView, inputs: list) -> list:
    """(var, n_z) keep their shapes; n_z holds two elements per element of var."""
    var, n_z, indices, grad = inputs[:4]
    if len(inputs) > 4:
        _one_element(inputs[4], "alpha")
    _check(var, {}, indices, grad, None, False)
    if var is not None and n_z is not None:
        ftrl_pairs(n_z.shape, var.shape)
    return [var, n_z]


@rule("sparse_update_adadelta")
def sparse_adadelta(op: OpView, inputs: list) -> list:
    """(param, moment, moment_delta) keep their shapes."""
    param, moment, moment_delta, indices, grad, lr = inputs
    decay_below_one(op.arg("decay", 0.95))
    _check(param, {"moment": moment, "moment_delta": moment_delta}, indices, grad, lr, False)
    return [param, moment, moment_delta]


@rule("sparse_update_wngrad")
def sparse_wngrad(op: OpView, inputs: list) -> list:
    """(param, seq_b) keep their shapes; seq_b holds one element."""
    param, seq_b, indices, grad, lr = inputs
    _one_element(seq_b, "seq_b")
    _check(param, {}, indices, grad, lr, False)
    return [param, seq_b]


@rule("sparse_update_storm")
def sparse_storm(op: OpView, inputs: list) -> list:
    """(param, moment, grad_sq_sum) keep their shapes; grad_sq_sum holds one element."""
    param, moment, grad_sq_sum, grad, indices, lr = inputs
    _one_element(grad_sq_sum, "grad_sq_sum")
    _check(param, {"moment": moment}, indices, grad, lr, False)
    return [param, moment, grad_sq_sum]


def last_seen_rows(shape, dtype, param_shape) -> None:
    """Raise unless last_seen is int64 with one element per row of param."""
    if str(dtype) != "int64":
        raise ShapeError(f"last_seen must be int64, got {dtype}")
    moment_size("last_seen", shape, param_shape, True)


@rule("sparse_update_smart_decay_adam")
def smart_decay_sparse_adam(op: OpView, inputs: list) -> list:
    """(param, moment_1, moment_2, last_seen) keep their shapes."""
    param, moment_1, moment_2, last_seen, indices, grad, lr, counter = inputs
    _counter(counter)
    _check(param, {"moment_1": moment_1, "moment_2": moment_2}, indices, grad, lr, False)
    if param is not None and last_seen is not None:
        last_seen_rows(last_seen.shape, last_seen.dtype, param.shape)
    return [param, moment_1, moment_2, last_seen]
