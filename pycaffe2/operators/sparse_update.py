"""NumPy kernels of the sparse_update family: the training family's update rules
on the rows of param that `indices` name. The rows are updated one index at a
time, in order, so a row named twice is updated twice, as in Caffe2's loop. Like
every kernel they return new arrays; the schema makes the outputs overwrite
param and the moments in place.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators.adaptive import ftrl_step, storm_rate
from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.training import _scalar, check_floats, read_counter
from pycaffe2.schema.inference.sparse_update import (
    decay_below_one,
    ftrl_pairs,
    index_range,
    last_seen_rows,
    moment_size,
    sparse_rows,
)
from pycaffe2.schema.inference.sparse_update import (
    scatter_assign as check_scatter_assign,
)
from pycaffe2.schema.inference.sparse_update import (
    scatter_weighted_sum as check_scatter_weighted_sum,
)
from pycaffe2.schema.inference.training import one_element


def _rows(param, moments: dict, indices, grad, row_wise_last: bool):
    """Checked inputs as (param rows, [moment rows], flat indices, grad rows): param and
    each moment copied to one row per row of param, grad to one slice per index."""
    check_floats({"param": param, **moments, "grad": grad})
    indices = np.asarray(indices)
    row = sparse_rows(param.shape, indices.shape, indices.dtype, grad.shape)
    rows = param.shape[0]
    names = list(moments)
    per_row = [row_wise_last and name == names[-1] for name in names]
    widths = [1 if row_wise else row for row_wise in per_row]
    for name, moment, row_wise in zip(names, moments.values(), per_row):
        moment_size(name, moment.shape, param.shape, row_wise)
    flat = indices.reshape(-1)
    index_range(flat, rows)
    return (param.reshape(rows, row).copy(),
            [m.reshape(rows, width).copy() for m, width in zip(moments.values(), widths)],
            flat, grad.reshape(flat.size, row))


def _adagrad(param, moment, indices, grad, lr, epsilon, weight_decay, row_wise, decay_scale=None):
    """decay_scale: per row of param, the factor on weight_decay (RowWiseSparseAdagrad's counter)."""
    p, (h,), flat, g = _rows(param, {"moment": moment}, indices, grad, row_wise)
    t = param.dtype.type
    lr, epsilon = _scalar("lr", lr, param.dtype), t(epsilon)
    for i, k in enumerate(flat):
        wd = t(weight_decay) * (t(1) if decay_scale is None else t(decay_scale[k]))
        gi = g[i] + wd * p[k] if weight_decay else g[i]
        h[k] += np.mean(gi * gi) if row_wise else gi * gi
        p[k] += lr * gi / (np.sqrt(h[k]) + epsilon)
    return p.reshape(param.shape), h.reshape(moment.shape)


@register_cpu("SparseAdagrad")
def sparse_adagrad(param, moment, indices, grad, lr, *, epsilon, weight_decay):
    return _adagrad(param, moment, indices, grad, lr, epsilon, weight_decay, row_wise=False)


@register_cpu("RowWiseSparseAdagrad")
def row_wise_sparse_adagrad(param, moment, indices, grad, lr, *counter, epsilon, weight_decay,
                            counter_halflife):
    scale = None
    if counter and counter_halflife > 0:
        check_floats({"counter": counter[0]})
        moment_size("counter", counter[0].shape, np.shape(param), True)
        count = counter[0].reshape(-1).astype(np.float64)
        scale = np.where(count > 0, counter_halflife / np.where(count > 0, count, 1.0), 1.0)
    return _adagrad(param, moment, indices, grad, lr, epsilon, weight_decay, row_wise=True, decay_scale=scale)


@register_cpu("SparseMomentumSGDUpdate")
def sparse_momentum_sgd_update(grad, moment, lr, param, indices, *, momentum, nesterov):
    p, (m,), flat, g = _rows(param, {"moment": moment}, indices, grad, False)
    t = param.dtype.type
    lr, momentum = _scalar("lr", lr, param.dtype), t(momentum)
    steps = np.empty_like(g)
    for i, k in enumerate(flat):
        new_moment = lr * g[i] + momentum * m[k]
        steps[i] = (1 + momentum) * new_moment - momentum * m[k] if nesterov else new_moment
        m[k] = new_moment
        p[k] -= steps[i]
    return steps.reshape(grad.shape), m.reshape(moment.shape), p.reshape(param.shape)


def _radam_factor(beta2, step_number):
    """Rectified Adam's r_t (None while rho_t < 5: the step is then m1 / (1 - beta1^t))."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step_number * beta2 ** step_number / (1 - beta2 ** step_number)
    if rho_t < 5:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) / rho_t) * math.sqrt(rho_inf / ((rho_inf - 4) * (rho_inf - 2)))


def _adam(param, moment_1, moment_2, indices, grad, lr, counter, beta1, beta2, epsilon, row_wise,
          radam=False):
    p, (m1, m2), flat, g = _rows(param, {"moment_1": moment_1, "moment_2": moment_2},
                                 indices, grad, row_wise)
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    step_number = read_counter(counter) + 1  # Caffe2's bias correction uses iter + 1
    correction = t(math.sqrt(1 - beta2 ** step_number) / (1 - beta1 ** step_number))
    rectified = _radam_factor(beta2, step_number) if radam else 1.0
    steps = np.empty_like(g)
    for i, k in enumerate(flat):
        square = np.mean(g[i] * g[i]) if row_wise else g[i] * g[i]
        m1[k] = t(beta1) * m1[k] + t(1 - beta1) * g[i]
        m2[k] = t(beta2) * m2[k] + t(1 - beta2) * square
        if rectified is None:  # RAdam's early steps: bias-corrected momentum alone
            steps[i] = m1[k] / t(1 - beta1 ** step_number)
        else:
            steps[i] = t(rectified) * correction * m1[k] / (np.sqrt(m2[k]) + t(epsilon))
        p[k] += lr * steps[i]
    return (p.reshape(param.shape), m1.reshape(moment_1.shape), m2.reshape(moment_2.shape),
            steps.reshape(grad.shape))


@register_cpu("SparseAdam")
def sparse_adam(param, moment_1, moment_2, indices, grad, lr, counter, *, beta1, beta2, epsilon, enableRAdam):
    return _adam(param, moment_1, moment_2, indices, grad, lr, counter, beta1, beta2, epsilon,
                 row_wise=False, radam=bool(enableRAdam))


@register_cpu("RowWiseSparseAdam")
def row_wise_sparse_adam(param, moment_1, moment_2, indices, grad, lr, counter, *, beta1, beta2,
                         epsilon):
    return _adam(param, moment_1, moment_2, indices, grad, lr, counter, beta1, beta2, epsilon,
                 row_wise=True)


def _scatter_rows(data, indices, slices: list):
    """data as rows (a copy), the flat indices, and each slice as one row per index."""
    rows, row = data.shape[0], math.prod(data.shape[1:])
    flat = np.asarray(indices).reshape(-1)
    index_range(flat, rows)
    return (data.reshape(rows, row).copy(), flat, [x.reshape(flat.size, row) for x in slices])


@register_cpu("ScatterWeightedSum")
def scatter_weighted_sum(x0, w0, indices, *pairs):
    check_scatter_weighted_sum(None, [x0, w0, indices, *pairs])
    out, flat, slices = _scatter_rows(x0, indices, list(pairs[0::2]))
    weights = [_scalar(f"weight_{i}", w, x0.dtype) for i, w in enumerate((w0,) + pairs[1::2])]
    added = sum(w * x for w, x in zip(weights[1:], slices))
    if weights[0] == 1:
        np.add.at(out, flat, added)  # repeated rows add up
    else:
        for i, k in enumerate(flat):  # in order: a repeated row is scaled again, as Caffe2's loop
            out[k] = weights[0] * out[k] + added[i]
    return out.reshape(x0.shape)


@register_cpu("ScatterAssign")
def scatter_assign(data, indices, slices):
    check_scatter_assign(None, [data, indices, slices])
    out, flat, (rows,) = _scatter_rows(data, indices, [slices])
    _, from_end = np.unique(flat[::-1], return_index=True)
    last = flat.size - 1 - from_end  # the last of a repeated index wins, as in Caffe2's loop
    out[flat[last]] = rows[last]
    return out.reshape(data.shape)


def index_rounds(flat) -> list:
    """The positions of `flat` in rounds that each name distinct rows, a repeated row's
    later positions in later rounds: applying the rounds in order updates every row in
    the order of its positions, as Caffe2's loop over the indices does."""
    if flat.size == 0:
        return []
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(flat.size), 0))
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size) - group_start
    return [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1)]


def _sparse_view(param, indices, grad):
    """(rows, row size, flat indices, grad as one row per index), checked."""
    indices = np.asarray(indices)
    row = sparse_rows(param.shape, indices.shape, indices.dtype, grad.shape)
    flat = indices.reshape(-1)
    index_range(flat, param.shape[0])
    return param.shape[0], row, flat, grad.reshape(flat.size, row)


@register_cpu("SparseFtrl")
def sparse_ftrl(var, n_z, indices, grad, *alpha_input, alpha, beta, lambda1, lambda2):
    check_floats({"var": var, "n_z": n_z, "grad": grad})
    rows, row, flat, g = _sparse_view(var, indices, grad)
    ftrl_pairs(n_z.shape, var.shape)
    if alpha_input:
        alpha = _scalar("alpha", alpha_input[0], var.dtype)
    w, nz = var.reshape(rows, row).copy(), n_z.reshape(rows, row, 2).copy()
    for positions in index_rounds(flat):
        k = flat[positions]
        w[k], nz[k, :, 0], nz[k, :, 1] = ftrl_step(w[k], nz[k, :, 0], nz[k, :, 1], g[positions],
                                                   alpha, beta, lambda1, lambda2)
    return w.reshape(var.shape), nz.reshape(n_z.shape)


@register_cpu("SparseAdadelta")
def sparse_adadelta(param, moment, moment_delta, indices, grad, lr, *, epsilon, decay):
    check_floats({"param": param, "moment": moment, "moment_delta": moment_delta, "grad": grad})
    decay_below_one(decay)
    rows, row, flat, g = _sparse_view(param, indices, grad)
    for name, value in (("moment", moment), ("moment_delta", moment_delta)):
        moment_size(name, value.shape, param.shape, False)
    t = param.dtype.type
    lr, epsilon, decay = _scalar("lr", lr, param.dtype), t(epsilon), t(decay)
    p, h, d = (x.reshape(rows, row).copy() for x in (param, moment, moment_delta))
    for positions in index_rounds(flat):
        k, gk = flat[positions], g[positions]
        h[k] = decay * h[k] + (1 - decay) * gk * gk
        step = np.sqrt(d[k] + epsilon) / np.sqrt(h[k] + epsilon) * gk
        p[k] += lr * step
        d[k] = decay * d[k] + (1 - decay) * step * step
    return p.reshape(param.shape), h.reshape(moment.shape), d.reshape(moment_delta.shape)


@register_cpu("SparseWngrad")
def sparse_wngrad(param, seq_b, indices, grad, lr, *, epsilon):
    check_floats({"param": param, "seq_b": seq_b, "grad": grad})
    one_element(seq_b.shape, "seq_b")
    rows, row, flat, g = _sparse_view(param, indices, grad)
    lr = _scalar("lr", lr, param.dtype)
    b = _scalar("seq_b", seq_b, param.dtype)
    p = param.reshape(rows, row).copy()
    if flat.size == 0:  # Caffe2 returns before touching seq_b
        return p.reshape(param.shape), seq_b.copy()
    np.add.at(p, flat, lr * g / (b + param.dtype.type(epsilon)))  # a repeated row takes every step
    new_b = b + np.sum(g * g, dtype=param.dtype) / b
    return p.reshape(param.shape), np.full(seq_b.shape, new_b, seq_b.dtype)


@register_cpu("SparseStorm")
def sparse_storm(param, moment, grad_sq_sum, grad, indices, lr, *, momentum, beta):
    check_floats({"param": param, "moment": moment, "grad": grad})
    one_element(np.shape(grad_sq_sum), "grad_sq_sum")
    rows, row, flat, g = _sparse_view(param, indices, grad)
    moment_size("moment", moment.shape, param.shape, False)
    lr = _scalar("lr", lr, param.dtype)  # checked even when nothing changes
    p, m = param.reshape(rows, row).copy(), moment.reshape(rows, row).copy()
    if flat.size == 0:  # Caffe2 returns before touching anything
        return p.reshape(param.shape), m.reshape(moment.shape), np.array(grad_sq_sum, copy=True)
    total, rate, alpha = storm_rate(g, grad_sq_sum, lr, momentum, beta)
    for positions in index_rounds(flat):
        k, gk = flat[positions], g[positions]
        m[k] = gk + (1 - alpha) * (m[k] - gk)
        p[k] += rate * m[k]
    return (p.reshape(param.shape), m.reshape(moment.shape),
            np.full(np.shape(grad_sq_sum), total, np.asarray(grad_sq_sum).dtype))


@register_cpu("SmartDecaySparseAdam")
def smart_decay_sparse_adam(param, moment_1, moment_2, last_seen, indices, grad, lr, counter, *, beta1, beta2,
                            epsilon):
    p, (m1, m2), flat, g = _rows(param, {"moment_1": moment_1, "moment_2": moment_2}, indices, grad, False)
    last_seen_rows(np.shape(last_seen), np.asarray(last_seen).dtype, param.shape)
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    step_number = read_counter(counter) + 1
    seen = last_seen.reshape(-1).copy()
    for i, k in enumerate(flat):
        missed = t(step_number - seen[k])  # iterations since the row's last update (0 when repeated)
        catchup = m1[k] * t(beta1) * (1 - t(beta1) ** (missed - 1)) / t(1 - beta1) if missed > 1 else t(0)
        m1[k] = m1[k] * t(beta1) ** missed + t(1 - beta1) * g[i]
        m2[k] = m2[k] * t(beta2) ** missed + t(1 - beta2) * g[i] * g[i]
        p[k] += lr * (m1[k] + catchup) / (np.sqrt(m2[k]) + t(epsilon))
        seen[k] = step_number
    return (p.reshape(param.shape), m1.reshape(moment_1.shape), m2.reshape(moment_2.shape),
            seen.reshape(last_seen.shape))
