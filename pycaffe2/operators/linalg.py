"""Matrix-product kernels (NumPy): FC, FCTransposed and their gradient ops,
MatMul and BatchMatMul, and the gradient makers of all four. FC and MatMul
view their inputs as matrices by splitting the dims at an axis (a reshape, so
no copy for contiguous inputs) and make one BLAS call through `np.dot` (faster
than `np.matmul` for thin products such as a one-row batch's dW); transposes
are views that BLAS reads directly. Args decide the layout, so every kernel
here is a factory resolved once at CreateNet."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.gradient.registry import GradientError, gradient_op, register_gradient
from pycaffe2.operators import register_cpu


def _as_matrix(op_type: str, array: np.ndarray, axis: int, name: str, arg: str) -> np.ndarray:
    """`array` as [prod(dims before axis), prod(dims from axis)]."""
    rank = array.ndim
    if not -rank <= axis < rank:
        raise ValueError(f"{op_type}: {arg} {axis} is out of range for {name} {list(array.shape)}")
    axis %= rank
    return array.reshape(math.prod(array.shape[:axis]), math.prod(array.shape[axis:]))


def _same_dtype(op_type: str, **arrays: np.ndarray) -> None:
    (first, a), *rest = arrays.items()
    for name, other in rest:
        if other.dtype != a.dtype:
            raise ValueError(f"{op_type}: {first} is {a.dtype} but {name} is {other.dtype}: "
                             "the dtypes must match")


def _fc_weights(op_type: str, x2: np.ndarray, w: np.ndarray, axis_w: int, transposed: bool):
    """W as the [K, N] right factor of X's [M, K] (a transposed view for FC)."""
    w2 = _as_matrix(op_type, w, axis_w, "W", "axis_w")
    right = w2 if transposed else w2.T
    if right.shape[0] != x2.shape[1]:
        layout = "[K, N]" if transposed else "[N, K]"
        raise ValueError(f"{op_type}: X flattened is {list(x2.shape)} but W is {list(w.shape)} "
                         f"(read as {layout} at axis_w {axis_w}): K must match")
    return right


def _fc_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w):
        def fc(x, w, b):
            _same_dtype(op_type, X=x, W=w)
            x2 = _as_matrix(op_type, x, axis, "X", "axis")
            right = _fc_weights(op_type, x2, w, axis_w, transposed)
            n = right.shape[1]
            if b.size != n:
                raise ValueError(f"{op_type}: b is {list(b.shape)} but W {list(w.shape)} gives N = {n}")
            y = np.dot(x2, right)
            y += b.reshape(n)  # y is ours: the bias goes in without another array
            return y.reshape(x.shape[:axis % x.ndim] + (n,))
        return fc
    return factory


def _fc_gradient_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w, num_outputs):
        def fc_gradient(x, w, dy):
            x2 = _as_matrix(op_type, x, axis, "X", "axis")
            right = _fc_weights(op_type, x2, w, axis_w, transposed)
            m, n = x2.shape[0], right.shape[1]
            if dy.size != m * n:
                raise ValueError(f"{op_type}: dY is {list(dy.shape)} but Y has [M, N] = [{m}, {n}]")
            dy2 = dy.reshape(m, n)
            # dW in W's own layout: [K, N] = X^T dY, or its transpose dY^T X for [N, K].
            dw = np.dot(x2.T, dy2) if transposed else np.dot(dy2.T, x2)
            db = dy2.sum(axis=0)
            if num_outputs < 3:
                return dw.reshape(w.shape), db
            return dw.reshape(w.shape), db, np.dot(dy2, right.T).reshape(x.shape)
        return fc_gradient
    return factory


register_cpu("FC", specialize=True)(_fc_factory("FC", transposed=False))
register_cpu("FCTransposed", specialize=True)(_fc_factory("FCTransposed", transposed=True))
register_cpu("FCGradient", specialize=True)(_fc_gradient_factory("FCGradient", transposed=False))
register_cpu("FCTransposedGradient", specialize=True)(
    _fc_gradient_factory("FCTransposedGradient", transposed=True))
# FC's gradient op outputs dW, db, dX (Caffe2's order).
gradient_op("FC", "I0 I1 GO0", "GI1 GI2 GI0")
gradient_op("FCTransposed", "I0 I1 GO0", "GI1 GI2 GI0")


@register_cpu("MatMul", specialize=True)
def matmul(*, axis_a, axis_b, trans_a, trans_b):
    def run(a, b, shape_like=None):
        _same_dtype("MatMul", A=a, B=b)
        a2 = _as_matrix("MatMul", a, axis_a, "A", "axis_a")
        b2 = _as_matrix("MatMul", b, axis_b, "B", "axis_b")
        a2, b2 = (a2.T if trans_a else a2), (b2.T if trans_b else b2)
        if a2.shape[1] != b2.shape[0]:
            raise ValueError(f"MatMul: A {list(a.shape)} gives [M, K] = {list(a2.shape)} but B "
                             f"{list(b.shape)} gives [K, N] = {list(b2.shape)}: K must match")
        y = np.dot(a2, b2)
        if shape_like is None:
            return y
        if shape_like.size != y.size:
            raise ValueError(f"MatMul: the product is {list(y.shape)} but input 2 is "
                             f"{list(shape_like.shape)}: element counts must match")
        return y.reshape(shape_like.shape)
    return run


@register_gradient("MatMul")
def _(g):
    """With Y = op(A) op(B) and G = dY read as [M, N] (flattened at axis 1):
    dA = G op(B)^T, or op(B) G^T when A is stored transposed; dB = op(A)^T G,
    or G^T op(A) when B is stored transposed. Each product takes its input's
    shape through MatMul's third input, so A or B is flattened at its own axis.
    As in Caffe2, a forward third input must keep M as dY's first dim."""
    trans_a, trans_b = int(g.arg("trans_a")), int(g.arg("trans_b"))
    a, b, dy = g.I(0), g.I(1), g.GO(0)

    def matmul(left, right, like, out, ta, tb, axis_a=1, axis_b=1):
        return g.Op("MatMul", [left, right, like], [out], inherit_args=False,
                    trans_a=int(ta), trans_b=int(tb), axis_a=axis_a, axis_b=axis_b)
    if trans_a:
        da = matmul(b, dy, a, g.GI(0), trans_b, 1, axis_a=g.arg("axis_b"))
    else:
        da = matmul(dy, b, a, g.GI(0), 0, not trans_b, axis_b=g.arg("axis_b"))
    if trans_b:
        db = matmul(dy, a, b, g.GI(1), 1, trans_a, axis_b=g.arg("axis_a"))
    else:
        db = matmul(a, dy, b, g.GI(1), not trans_a, 0, axis_a=g.arg("axis_a"))
    return [da, db]


def _batch_shape(a: np.ndarray, b: np.ndarray, broadcast: bool) -> None:
    """Raise unless the batch dims of A and B fit (equal, or broadcastable)."""
    if not broadcast:
        if a.ndim < 2 or b.ndim != a.ndim or a.shape[:-2] != b.shape[:-2]:
            raise ValueError(f"BatchMatMul: A {list(a.shape)} and B {list(b.shape)} must have "
                             "rank >= 2 and the same batch dims (or set broadcast=1)")
        return
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"BatchMatMul: batch dims of A {list(a.shape)} and B "
                         f"{list(b.shape)} do not broadcast") from None


@register_cpu("BatchMatMul", specialize=True)
def batch_matmul(*, trans_a, trans_b, broadcast):
    def run(a, b):
        _same_dtype("BatchMatMul", A=a, B=b)
        _batch_shape(a, b, broadcast)
        # A 1-D operand is a vector (its own transpose), promoted as numpy.matmul does.
        left = np.swapaxes(a, -1, -2) if trans_a and a.ndim > 1 else a
        right = np.swapaxes(b, -1, -2) if trans_b and b.ndim > 1 else b
        k_left = left.shape[-1]
        k_right = right.shape[0] if right.ndim == 1 else right.shape[-2]
        if k_left != k_right:
            raise ValueError(f"BatchMatMul: A {list(a.shape)} has K = {k_left} but B "
                             f"{list(b.shape)} has K = {k_right}: K must match")
        y = np.matmul(left, right)
        return y.reshape(1) if y.ndim == 0 else y  # vector . vector is [1], as in Caffe2
    return run


@register_gradient("BatchMatMul")
def _(g):
    """As MatMul's, batch by batch. Not with broadcast=1 (nor in Caffe2): its
    gradients would need sums over broadcast batch dims and 1-D promotion undone."""
    if g.arg("broadcast"):
        raise GradientError("BatchMatMul: no gradient with broadcast=1")
    trans_a, trans_b = int(g.arg("trans_a")), int(g.arg("trans_b"))
    a, b, dy = g.I(0), g.I(1), g.GO(0)

    def batch_matmul(left, right, out, ta, tb):
        return g.Op("BatchMatMul", [left, right], [out], inherit_args=False,
                    trans_a=int(ta), trans_b=int(tb))
    da = (batch_matmul(b, dy, g.GI(0), trans_b, 1) if trans_a
          else batch_matmul(dy, b, g.GI(0), 0, not trans_b))
    db = (batch_matmul(dy, a, g.GI(1), 1, trans_a) if trans_b
          else batch_matmul(a, dy, g.GI(1), not trans_a, 0))
    return [da, db]
