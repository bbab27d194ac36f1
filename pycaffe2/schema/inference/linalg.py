"""Inference rules of the linalg family.

FC and MatMul flatten their inputs to matrices at an axis: dims before the
axis make the rows, the rest the columns. BatchMatMul multiplies the trailing
two dims, with numpy.matmul's broadcasting when `broadcast` is 1.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import canonical_axis, size


def as_matrix(op: OpView, info, axis: int, name: str, what: str) -> tuple[int, int]:
    """(rows, cols) of `info` flattened at `axis` (the arg named `what`)."""
    axis = canonical_axis(op, axis, len(info.shape), what, f"{name} {list(info.shape)}")
    return size(info.shape[:axis]), size(info.shape[axis:])


def _fc_sizes(op: OpView, x, w) -> tuple:
    """(X's [M, K], N, K of W) for FC and FCTransposed; None where unknown."""
    x_matrix = None if x is None else as_matrix(op, x, op.arg("axis"), "X", "axis")
    if w is None:
        return x_matrix, None
    rows, cols = as_matrix(op, w, op.arg("axis_w"), "W", "axis_w")
    n, k = (cols, rows) if op.type.startswith("FCTransposed") else (rows, cols)
    if x_matrix is not None and x_matrix[1] != k:
        layout = "[K, N]" if op.type.startswith("FCTransposed") else "[N, K]"
        raise ShapeError(f"{op.type}: X flattened at axis {op.arg('axis')} is {list(x_matrix)} "
                         f"but W is {list(w.shape)} (read as {layout}): K must match")
    return x_matrix, n


def _fc_output_shape(op: OpView, x, n: int) -> tuple:
    axis = canonical_axis(op, op.arg("axis"), len(x.shape))
    return x.shape[:axis] + (n,)


@rule("linalg_fc")
def fc(op: OpView, inputs: list) -> list:
    """FC / FCTransposed: Y is X's dims before axis, then N; b must hold N values."""
    x, w, b = inputs
    _, n = _fc_sizes(op, x, w)
    if n is not None and b is not None and size(b.shape) != n:
        raise ShapeError(f"{op.type}: b is {list(b.shape)} but W {list(w.shape)} gives N = {n}")
    if x is None or n is None:
        return [None]
    return [TensorInfo(_fc_output_shape(op, x, n), x.dtype)]


@rule("linalg_fc_gradient")
def fc_gradient(op: OpView, inputs: list) -> list:
    """FC(Transposed)Gradient (X, W, dY): dW like W, db [N], dX like X."""
    x, w, grad = inputs
    _, n = _fc_sizes(op, x, w)
    if x is not None and n is not None and grad is not None:
        expected = _fc_output_shape(op, x, n)
        if grad.shape != expected:
            raise ShapeError(f"{op.type}: dY is {list(grad.shape)} but Y is {list(expected)}")
    db = None if n is None else TensorInfo((n,), w.dtype)
    return [w, db, x]


@rule("linalg_matmul")
def matmul(op: OpView, inputs: list) -> list:
    """MatMul: [M, N] from the flattened (and maybe transposed) A and B, or input 2's shape."""
    a, b = inputs[0], inputs[1]
    like = inputs[2] if len(inputs) > 2 else None
    if a is None or b is None:
        return [None]
    m, k = as_matrix(op, a, op.arg("axis_a"), "A", "axis_a")
    k_b, n = as_matrix(op, b, op.arg("axis_b"), "B", "axis_b")
    m, k = (k, m) if op.arg("trans_a") else (m, k)
    k_b, n = (n, k_b) if op.arg("trans_b") else (k_b, n)
    if k != k_b:
        raise ShapeError(f"{op.type}: A {list(a.shape)} gives [M, K] = [{m}, {k}] but B "
                         f"{list(b.shape)} gives [K, N] = [{k_b}, {n}]: K must match")
    if op.n_inputs < 3:
        return [TensorInfo((m, n), a.dtype)]
    if like is None:
        return [None]
    if size(like.shape) != m * n:
        raise ShapeError(f"{op.type}: the product is [{m}, {n}] but input 2 is "
                         f"{list(like.shape)}: element counts must match")
    return [TensorInfo(like.shape, a.dtype)]


def _batch_dims(op: OpView, a: tuple, b: tuple) -> tuple:
    """Batch dims of the (1-D promoted) shapes a and b: equal, or broadcast."""
    left, right = a[:-2], b[:-2]
    if not op.arg("broadcast"):
        if left != right:
            raise ShapeError(f"{op.type}: A {list(a)} and B {list(b)} must have the same "
                             f"batch dims (or set broadcast=1)")
        return left
    width = max(len(left), len(right))
    left, right = (1,) * (width - len(left)) + left, (1,) * (width - len(right)) + right
    if any(x != y and 1 not in (x, y) for x, y in zip(left, right)):
        raise ShapeError(f"{op.type}: batch dims of A {list(a)} and B {list(b)} do not broadcast")
    return tuple(x if y == 1 else y for x, y in zip(left, right))


@rule("linalg_batch_matmul")
def batch_matmul(op: OpView, inputs: list) -> list:
    """BatchMatMul: [..., M, N]; with broadcast, numpy.matmul's shape rules (1-D promoted),
    except that vector . vector gives [1] rather than a scalar."""
    a, b = inputs
    if a is None or b is None:
        return [None]
    ranks_ok = min(len(a.shape), len(b.shape)) >= (1 if op.arg("broadcast") else 2)
    if not ranks_ok:
        raise ShapeError(f"{op.type}: A {list(a.shape)} and B {list(b.shape)} need rank >= 2 "
                         f"(rank 1 only with broadcast=1)")
    a_shape = (1,) + a.shape if len(a.shape) == 1 else a.shape
    b_shape = b.shape + (1,) if len(b.shape) == 1 else b.shape
    # A 1-D operand is a vector, its own transpose: trans_a/trans_b leave it as it is.
    m, k = a_shape[-2:][::-1] if op.arg("trans_a") and len(a.shape) > 1 else a_shape[-2:]
    k_b, n = b_shape[-2:][::-1] if op.arg("trans_b") and len(b.shape) > 1 else b_shape[-2:]
    if k != k_b:
        raise ShapeError(f"{op.type}: A {list(a.shape)} gives [M, K] = [{m}, {k}] but B "
                         f"{list(b.shape)} gives [K, N] = [{k_b}, {n}]: K must match")
    batch = _batch_dims(op, a_shape, b_shape)
    shape = batch + ((m,) if len(a.shape) > 1 else ()) + ((n,) if len(b.shape) > 1 else ())
    return [TensorInfo(shape or (1,), a.dtype)]  # vector . vector is [1] in Caffe2
