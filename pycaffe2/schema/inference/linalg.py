"""Inference rules of the linalg family, and the shape checks its kernels call.

FC and MatMul flatten their inputs to matrices at an axis: dims before the
axis make the rows, the rest the columns. BatchMatMul multiplies the trailing
two dims, with numpy.matmul's broadcasting when `broadcast` is 1. The checks
take plain shapes and dtypes, so the rules here (with TensorInfo shapes) and
the CPU and CUDA kernels (with their arrays') refuse the same inputs in the
same words.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def matrix(shape, axis: int, name: str, arg: str) -> tuple[int, int]:
    """(rows, cols) of input `name` flattened at `axis` (the value of arg `arg`)."""
    rank = len(shape)
    if not -rank <= axis < rank:
        raise ShapeError(f"{arg} {axis} is out of range for {name} {list(shape)}")
    axis %= rank
    return math.prod(shape[:axis]), math.prod(shape[axis:])


def check_same_dtype(**dtypes) -> None:
    """The named inputs' dtypes (NumPy dtypes or their names) must be one."""
    (first, dtype), *rest = ((name, str(d)) for name, d in dtypes.items())
    for name, other in rest:
        if other != dtype:
            raise ShapeError(f"{first} is {dtype} but {name} is {other}: the dtypes must match")


def fc_weights(w_shape, axis_w: int, transposed: bool) -> tuple[int, int]:
    """(K, N) of FC's W, read as [N, K] (FCTransposed: [K, N]) at axis_w."""
    rows, cols = matrix(w_shape, axis_w, "W", "axis_w")
    return (rows, cols) if transposed else (cols, rows)


def fc_sizes(x_shape, w_shape, axis: int, axis_w: int, transposed: bool) -> tuple[int, int, int]:
    """(M, K, N) of FC or FCTransposed: X as [M, K], W's K must match."""
    m, k = matrix(x_shape, axis, "X", "axis")
    k_w, n = fc_weights(w_shape, axis_w, transposed)
    if k_w != k:
        layout = "[K, N]" if transposed else "[N, K]"
        raise ShapeError(f"X flattened at axis {axis} is [{m}, {k}] but W is {list(w_shape)} "
                         f"(read as {layout} at axis_w {axis_w}): K must match")
    return m, k, n


def fc_output_shape(x_shape, axis: int, n: int) -> tuple:
    """Y: X's dims before axis, then N."""
    return tuple(x_shape[:axis % len(x_shape)]) + (n,)


def check_fc_bias(b_shape, w_shape, n: int) -> None:
    if math.prod(b_shape) != n:
        raise ShapeError(f"b is {list(b_shape)} but W {list(w_shape)} gives N = {n}")


def check_fc_dy(dy_shape, m: int, n: int) -> None:
    """FC's gradient reads dY as [M, N]: its element count must match (as in Caffe2)."""
    if math.prod(dy_shape) != m * n:
        raise ShapeError(f"dY is {list(dy_shape)} but Y has [M, N] = [{m}, {n}]")


def matmul_sizes(a_shape, b_shape, axis_a: int, axis_b: int, trans_a, trans_b) -> tuple[int, int, int]:
    """(M, K, N) of MatMul: op(A) [M, K] times op(B) [K, N], K must match."""
    m, k = matrix(a_shape, axis_a, "A", "axis_a")
    k_b, n = matrix(b_shape, axis_b, "B", "axis_b")
    m, k = (k, m) if trans_a else (m, k)
    k_b, n = (n, k_b) if trans_b else (k_b, n)
    if k != k_b:
        raise ShapeError(f"A {list(a_shape)} gives [M, K] = [{m}, {k}] but B "
                         f"{list(b_shape)} gives [K, N] = [{k_b}, {n}]: K must match")
    return m, k, n


def check_shape_like(m: int, n: int, like_shape) -> None:
    """MatMul's third input gives Y its shape: it must hold M * N elements."""
    if math.prod(like_shape) != m * n:
        raise ShapeError(f"the product is [{m}, {n}] but input 2 is {list(like_shape)}: "
                         "element counts must match")


def _batch_dims(a: tuple, b: tuple, broadcast) -> tuple:
    """Batch dims of the (1-D promoted) shapes a and b: equal, or broadcast."""
    left, right = a[:-2], b[:-2]
    if not broadcast:
        if left != right:
            raise ShapeError(f"A {list(a)} and B {list(b)} must have the same batch dims "
                             "(or set broadcast=1)")
        return left
    width = max(len(left), len(right))
    left, right = (1,) * (width - len(left)) + left, (1,) * (width - len(right)) + right
    if any(x != y and 1 not in (x, y) for x, y in zip(left, right)):
        raise ShapeError(f"batch dims of A {list(a)} and B {list(b)} do not broadcast")
    return tuple(x if y == 1 else y for x, y in zip(left, right))


def batch_matmul_shape(a_shape, b_shape, trans_a, trans_b, broadcast) -> tuple:
    """BatchMatMul's Y: [..., M, N]; with broadcast, numpy.matmul's shape rules (1-D
    promoted), except that vector . vector gives [1] rather than a scalar (Caffe2)."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if min(len(a_shape), len(b_shape)) < (1 if broadcast else 2):
        raise ShapeError(f"A {list(a_shape)} and B {list(b_shape)} need rank >= 2 "
                         "(rank 1 only with broadcast=1)")
    a = (1,) + a_shape if len(a_shape) == 1 else a_shape
    b = b_shape + (1,) if len(b_shape) == 1 else b_shape
    # A 1-D operand is a vector, its own transpose: trans_a/trans_b leave it as it is.
    m, k = a[-2:][::-1] if trans_a and len(a_shape) > 1 else a[-2:]
    k_b, n = b[-2:][::-1] if trans_b and len(b_shape) > 1 else b[-2:]
    if k != k_b:
        raise ShapeError(f"A {list(a_shape)} gives [M, K] = [{m}, {k}] but B "
                         f"{list(b_shape)} gives [K, N] = [{k_b}, {n}]: K must match")
    batch = _batch_dims(a, b, broadcast)
    shape = batch + ((m,) if len(a_shape) > 1 else ()) + ((n,) if len(b_shape) > 1 else ())
    return shape or (1,)


@rule("linalg_fc")
def fc(op: OpView, inputs: list) -> list:
    """FC / FCTransposed: Y is X's dims before axis, then N; b must hold N values."""
    x, w, b = inputs
    transposed = op.type.startswith("FCTransposed")
    if x is not None:
        matrix(x.shape, op.arg("axis"), "X", "axis")
    if w is None:
        return [None]
    if x is not None:
        check_same_dtype(X=x.dtype, W=w.dtype)
        _, _, n = fc_sizes(x.shape, w.shape, op.arg("axis"), op.arg("axis_w"), transposed)
    else:
        _, n = fc_weights(w.shape, op.arg("axis_w"), transposed)
    if b is not None:
        check_fc_bias(b.shape, w.shape, n)
    return [None if x is None else TensorInfo(fc_output_shape(x.shape, op.arg("axis"), n), x.dtype)]


@rule("linalg_fc_gradient")
def fc_gradient(op: OpView, inputs: list) -> list:
    """FC(Transposed)Gradient (X, W, dY): dW like W, db [N], dX like X."""
    x, w, grad = inputs
    transposed = op.type.startswith("FCTransposed")
    if x is not None:
        matrix(x.shape, op.arg("axis"), "X", "axis")
    if w is None:
        return [None, None, x]
    if x is not None:
        m, _, n = fc_sizes(x.shape, w.shape, op.arg("axis"), op.arg("axis_w"), transposed)
        if grad is not None:
            check_fc_dy(grad.shape, m, n)
    else:
        _, n = fc_weights(w.shape, op.arg("axis_w"), transposed)
    return [w, TensorInfo((n,), w.dtype), x]


@rule("linalg_matmul")
def matmul(op: OpView, inputs: list) -> list:
    """MatMul: [M, N] from the flattened (and maybe transposed) A and B, or input 2's shape."""
    a, b = inputs[0], inputs[1]
    like = inputs[2] if len(inputs) > 2 else None
    if a is None or b is None:
        return [None]
    check_same_dtype(A=a.dtype, B=b.dtype)
    m, _, n = matmul_sizes(a.shape, b.shape, op.arg("axis_a"), op.arg("axis_b"),
                           op.arg("trans_a"), op.arg("trans_b"))
    if op.n_inputs < 3:
        return [TensorInfo((m, n), a.dtype)]
    if like is None:
        return [None]
    check_shape_like(m, n, like.shape)
    return [TensorInfo(like.shape, a.dtype)]


@rule("linalg_batch_matmul")
def batch_matmul(op: OpView, inputs: list) -> list:
    """BatchMatMul: see batch_matmul_shape."""
    a, b = inputs
    if a is None or b is None:
        return [None]
    check_same_dtype(A=a.dtype, B=b.dtype)
    shape = batch_matmul_shape(a.shape, b.shape, op.arg("trans_a"), op.arg("trans_b"), op.arg("broadcast"))
    return [TensorInfo(shape, a.dtype)]


def dot_product_rows(x_shape, y_shape) -> int:
    """N for DotProduct's X and Y: one shape, of one or two dims."""
    if len(x_shape) not in (1, 2):
        raise ShapeError(f"X must be [N] or [N, D], got {list(x_shape)}")
    if tuple(x_shape) != tuple(y_shape):
        raise ShapeError(f"X is {list(x_shape)} but Y is {list(y_shape)}: they must have one shape")
    return x_shape[0]


def check_dot_product_dz(dz_shape, n: int) -> None:
    if tuple(dz_shape) != (n,):
        raise ShapeError(f"dZ must be [{n}] (one value per row), got {list(dz_shape)}")


@rule("linalg_dot_product")
def dot_product(op: OpView, inputs: list) -> list:
    """DotProduct: Z [N] from X and Y of one shape."""
    x, y = inputs
    if x is None or y is None:
        return [None]
    check_same_dtype(X=x.dtype, Y=y.dtype)
    return [TensorInfo((dot_product_rows(x.shape, y.shape),), x.dtype)]


@rule("linalg_dot_product_gradient")
def dot_product_gradient(op: OpView, inputs: list) -> list:
    """DotProductGradient (X, Y, dZ): dX like X, dY like Y."""
    x, y, dz = inputs
    if x is not None and y is not None:
        n = dot_product_rows(x.shape, y.shape)
        if dz is not None:
            check_dot_product_dz(dz.shape, n)
    return [x, y]
