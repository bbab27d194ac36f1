"""Kernels (NumPy) of ONNX's linear algebra beyond Caffe2's: Gemm (alpha, beta,
a broadcast C) with GemmGradient, Einsum (numpy.einsum over the checked,
spelled-out equation; its gradient is Einsums, for equations without '...' or
diagonals), and Det with DetGradient. CPU only. The
checks are schema.inference.linalg_extra's, shared with the rules.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import GradientError
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.linalg import check_same_dtype
from pycaffe2.schema.inference.linalg_extra import (
    ELLIPSIS,
    check_gemm_c,
    det_shape,
    einsum_shape,
    explicit_einsum,
    gemm_sizes,
    parse_einsum,
)


def _scaled(value: np.ndarray, scale: float) -> np.ndarray:
    """value * scale in value's type (an integer Gemm stays integer, as ONNX's does)."""
    return value if scale == 1.0 else np.asarray(value * scale, dtype=value.dtype)


@register_cpu("Gemm")
def gemm(a, b, c=None, *, alpha, beta, trans_a, trans_b):
    check_same_dtype(A=a.dtype, B=b.dtype)
    m, _, n = gemm_sizes(a.shape, b.shape, trans_a, trans_b)
    y = _scaled((a.T if trans_a else a) @ (b.T if trans_b else b), alpha)
    if c is not None:
        check_same_dtype(A=a.dtype, C=c.dtype)
        check_gemm_c(c.shape, m, n)
        y = y + _scaled(c, beta)
    return np.asarray(y, dtype=a.dtype)


@register_gradient("Gemm")
def make_gemm_gradient(g):
    """GemmGradient (dY, A, B, [C]) -> dA, dB, [dC]."""
    with_c = len(g.op.input) > 2
    inputs = [g.GO(0), g.I(0), g.I(1)] + ([g.I(2)] if with_c else [])
    outputs = [g.GI(0), g.GI(1)] + ([g.GI(2)] if with_c else [])
    return [g.Op("GemmGradient", inputs, outputs)]


def _sum_to(value: np.ndarray, shape: tuple) -> np.ndarray:
    """value summed over the dims that broadcasting `shape` to value's shape added or grew."""
    lead = value.ndim - len(shape)
    value = value.sum(axis=tuple(range(lead))) if lead else value
    grown = tuple(i for i, d in enumerate(shape) if d == 1 and value.shape[i] != 1)
    return value.sum(axis=grown, keepdims=True).reshape(shape) if grown else value.reshape(shape)


@register_cpu("GemmGradient")
def gemm_gradient(dy, a, b, c=None, *, alpha, beta, trans_a, trans_b, num_outputs):
    m, _, n = gemm_sizes(a.shape, b.shape, trans_a, trans_b)
    if dy.shape != (m, n):
        raise ShapeError(f"dY is {list(dy.shape)} but Y is [{m}, {n}]")
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    da = _scaled(dy @ op_b.T, alpha)
    db = _scaled(op_a.T @ dy, alpha)
    grads = [np.ascontiguousarray(da.T if trans_a else da), np.ascontiguousarray(db.T if trans_b else db)]
    if num_outputs > 2:
        if c is None:
            raise ShapeError("dC needs C (input 3)")
        grads.append(np.asarray(_sum_to(_scaled(dy, beta), tuple(c.shape)), dtype=dy.dtype))
    return tuple(grads)


@register_cpu("Einsum")
def einsum(*inputs, equation):
    check_same_dtype(**{f"input {i}": x.dtype for i, x in enumerate(inputs)})
    shape = einsum_shape(equation, [x.shape for x in inputs])
    y = np.einsum(explicit_einsum(equation, len(inputs)), *inputs)
    return np.asarray(y, dtype=inputs[0].dtype).reshape(shape)


def einsum_gradient_equation(terms: list, out: list, i: int) -> str:
    """The equation giving input i's gradient: dY and the other operands contracted to
    input i's labels. Only where that is the whole story: no '...', no label repeated
    within an operand (a diagonal), and each of input i's labels in the output or in
    another operand (a label summed within input i alone would need a broadcast back)."""
    if any(ELLIPSIS in t for t in terms + [out]):
        raise GradientError("the Einsum gradient does not take '...' equations")
    if any(len(set(t)) < len(t) for t in terms):
        raise GradientError("the Einsum gradient does not take a label repeated within an operand")
    others = set(out).union(*(set(t) for j, t in enumerate(terms) if j != i))
    alone = [label for label in terms[i] if label not in others]
    if alone:
        raise GradientError(f"the Einsum gradient does not take label '{alone[0]}', summed within "
                            f"input {i} alone")
    operands = ["".join(out)] + ["".join(t) for j, t in enumerate(terms) if j != i]
    return ",".join(operands) + "->" + "".join(terms[i])


@register_gradient("Einsum")
def make_einsum_gradient(g):
    """dX_i = Einsum(dY, the other inputs) contracted to X_i's labels (see
    einsum_gradient_equation for the equations this covers)."""
    n = len(g.op.input)
    try:
        terms, out = parse_einsum(g.arg("equation"), n)
    except ShapeError as exc:
        raise GradientError(str(exc)) from None
    ops = []
    for i in range(n):
        equation = einsum_gradient_equation(terms, out, i)
        inputs = [g.GO(0)] + [g.I(j) for j in range(n) if j != i]
        ops.append(g.Op("Einsum", inputs, [g.GI(i)], equation=equation))
    return ops


@register_cpu("Det")
def det(x):
    shape = det_shape(x.shape, x.dtype.name)
    if x.shape[-1] == 0:  # the determinant of a 0 x 0 matrix is 1
        return np.ones(shape, x.dtype)
    wide = x.astype(np.float32) if x.dtype == np.float16 else x  # LAPACK has no float16
    return np.asarray(np.linalg.det(wide), dtype=x.dtype).reshape(shape)


def _adjugate_t(matrix: np.ndarray) -> np.ndarray:
    """The transposed adjugate (the cofactors) of one square matrix, by minors: what
    det * inv^T is where the matrix is singular, and inv is not."""
    n = matrix.shape[0]
    cofactors = np.empty_like(matrix)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(matrix, i, axis=0), j, axis=1)
            cofactors[i, j] = (-1) ** (i + j) * (np.linalg.det(minor) if n > 1 else 1.0)
    return cofactors


@register_cpu("DetGradient")
def det_gradient(x, y, dy):
    expected = det_shape(x.shape, x.dtype.name)
    for name, value in (("Y", y), ("dY", dy)):
        if value.shape != expected:
            raise ShapeError(f"{name} is {list(value.shape)} but Det of X {list(x.shape)} "
                             f"gives {list(expected)}")
    n = x.shape[-1]
    matrices = x.reshape(-1, n, n).astype(np.float64)
    cofactors = np.empty_like(matrices)
    for k, matrix in enumerate(matrices):
        try:
            cofactors[k] = np.linalg.det(matrix) * np.linalg.inv(matrix).T
        except np.linalg.LinAlgError:  # singular: the adjugate is still defined
            cofactors[k] = _adjugate_t(matrix)
    dx = cofactors.reshape(x.shape) * dy.reshape(expected + (1, 1))
    return np.asarray(dx, dtype=x.dtype)


gradient_op("Det", "I0 O0 GO0")
