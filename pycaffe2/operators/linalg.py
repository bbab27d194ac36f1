"""Matrix-product kernels (NumPy): FC, FCTransposed and their gradient ops,
MatMul and BatchMatMul, and the gradient makers of all four. FC and MatMul
view their inputs as matrices by splitting the dims at an axis (a reshape, so
no copy for contiguous inputs) and make one BLAS call through `np.dot` (faster
than `np.matmul` for thin products such as a one-row batch's dW); transposes
are views that BLAS reads directly. Args decide the layout, so every kernel
here is a factory resolved once at CreateNet. On CUDA the same ops run on
`gemm`, this project's tiled SGEMM (linalg.cu), which other families call too."""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)


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
def make_matmul_gradient(g):
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
def make_batch_matmul_gradient(g):
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


# CUDA launchers (linalg.cu). Every product runs on `gemm`; shapes are checked as on the
# CPU, with the CPU's messages.
GEMM_TILE, GEMM_THREADS = 128, 256  # as TILE and THREADS in linalg.cu
_INT_MAX = 2**31 - 1  # the kernel indexes one matrix with ints
_GRID_MAX = 65535  # grid y and z (the kernel strides over row tiles and batch)
_SUM_CHUNK = 1024  # rows per block in the first of two column-sum passes



def _gpu_matrix(op_type: str, array, axis: int, name: str, arg: str):
    """`array` as [prod(dims before axis), prod(dims from axis)], as `_as_matrix` does."""
    rank = len(array.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"{op_type}: {arg} {axis} is out of range for {name} {list(array.shape)}")
    axis %= rank
    return cuda.reshape(array, (math.prod(array.shape[:axis]), math.prod(array.shape[axis:])))


def _gemm_operand(array, name: str):
    """(batch or None, rows, cols) of a contiguous float32 2-D or 3-D array."""
    if len(array.shape) not in (2, 3):
        raise ValueError(f"gemm: {name} must be 2-D or 3-D (a batch of matrices), got {list(array.shape)}")
    if not array.flags.c_contiguous:
        raise ValueError(f"gemm: {name} must be C-contiguous")
    return (None, *array.shape) if len(array.shape) == 2 else tuple(array.shape)


def gemm(a, b, trans_a: bool, trans_b: bool, out=None, beta: float = 0.0, alpha: float = 1.0):
    """C = alpha * op(A) op(B) + beta * C on the GPU with this project's tiled SGEMM.

    A and B are C-contiguous float32, 2-D or 3-D ([batch, rows, cols]); op() transposes a
    matrix when its flag is set. A 2-D operand (or a batch of one) serves every matrix of
    the other's batch. C is [M, N], or [batch, M, N] when either operand is 3-D: written
    into `out` when given (a contiguous float32 array of that many elements, returned as
    it is; beta scales what it held), else a new array (and beta must be 0).
    """
    a, b = cuda.float32_inputs("gemm", a, b)
    batch_a, rows_a, cols_a = _gemm_operand(a, "A")
    batch_b, rows_b, cols_b = _gemm_operand(b, "B")
    m, k = (cols_a, rows_a) if trans_a else (rows_a, cols_a)
    k_b, n = (cols_b, rows_b) if trans_b else (rows_b, cols_b)
    if k != k_b:
        raise ValueError(f"gemm: op(A) is [{m}, {k}] but op(B) is [{k_b}, {n}]: K must match")
    batches = {size for size in (batch_a, batch_b) if size is not None and size != 1}
    if len(batches) > 1:
        raise ValueError(f"gemm: A {list(a.shape)} and B {list(b.shape)} have different batches")
    batch = batches.pop() if batches else 1
    shape = (m, n) if batch_a is None and batch_b is None else (batch, m, n)
    if max(m, n, k) > _INT_MAX - GEMM_TILE or max(m * k, k * n, m * n) > _INT_MAX:
        raise ValueError(f"gemm: [{m}, {k}] x [{k}, {n}] is too large for the kernel's int indices")
    if out is None:
        if beta != 0:
            raise ValueError("gemm: beta != 0 needs out")
        out = cuda.empty(shape)
    elif out.dtype != np.float32 or out.size != math.prod(shape) or not out.flags.c_contiguous:
        raise ValueError(f"gemm: out must be contiguous float32 with {math.prod(shape)} elements")
    if out.size == 0:
        return out
    kernel = f"gemm_{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}"
    grid = (-(-n // GEMM_TILE), min(-(-m // GEMM_TILE), _GRID_MAX), min(batch, _GRID_MAX))
    cuda.function("linalg.cu", kernel)(
        a if a.size else out, b if b.size else out, out,  # K == 0: A and B are never read
        np.int64(batch), np.int64(m * k if batch_a and batch_a > 1 else 0),
        np.int64(k * n if batch_b and batch_b > 1 else 0), np.int64(m * n),
        np.int32(m), np.int32(n), np.int32(k), np.float32(alpha), np.float32(beta),
        block=(GEMM_THREADS, 1, 1), grid=grid)
    return out


def _column_sums(x2):
    """The [cols] sums over the rows of a [rows, cols] GPUArray: one pass, or for many rows
    a pass writing the sums of row chunks and a second pass adding those up."""
    rows, cols = x2.shape
    out = cuda.empty((cols,))
    if cols == 0 or rows == 0:
        if cols:
            out.fill(np.float32(0))
        return out
    column_sums = cuda.function("linalg.cu", "column_sums")
    blocks = min(-(-cols // 32), _GRID_MAX)
    chunks = min(-(-rows // _SUM_CHUNK), 1024)
    if chunks > 1:
        partial = cuda.empty((chunks, cols))
        column_sums(x2, partial, np.int64(rows), np.int64(cols), block=(32, 16, 1), grid=(blocks, chunks))
        x2, rows = partial, chunks
    column_sums(x2, out, np.int64(rows), np.int64(cols), block=(32, 16, 1), grid=(blocks, 1))
    return out


def _fc_matrices(op_type: str, x, w, axis: int, axis_w: int, transposed: bool):
    """X as [M, K], W as stored ([N, K], or [K, N] for FCTransposed), and N."""
    x2 = _gpu_matrix(op_type, x, axis, "X", "axis")
    w2 = _gpu_matrix(op_type, w, axis_w, "W", "axis_w")
    k, n = w2.shape if transposed else w2.shape[::-1]
    if k != x2.shape[1]:
        layout = "[K, N]" if transposed else "[N, K]"
        raise ValueError(f"{op_type}: X flattened is {list(x2.shape)} but W is {list(w.shape)} "
                         f"(read as {layout} at axis_w {axis_w}): K must match")
    return x2, w2, n


def _fc_cuda_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w):
        def fc(x, w, b):
            x, w, b = cuda.as_gpu(x), cuda.as_gpu(w), cuda.as_gpu(b)
            _same_dtype(op_type, X=x, W=w)
            cuda.require_float32(op_type, x, w, b)
            x2, w2, n = _fc_matrices(op_type, x, w, axis, axis_w, transposed)
            if b.size != n:
                raise ValueError(f"{op_type}: b is {list(b.shape)} but W {list(w.shape)} gives N = {n}")
            y = gemm(x2, w2, False, not transposed)  # FC's W is [N, K]: Y = X W^T
            cuda.launch("linalg.cu", "add_bias", y.size, y, b, np.int64(n), np.int64(y.size))
            return cuda.reshape(y, x.shape[:axis % len(x.shape)] + (n,))
        return fc
    return factory


def _fc_gradient_cuda_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w, num_outputs):
        def fc_gradient(x, w, dy):
            x, w, dy = cuda.float32_inputs(op_type, x, w, dy)
            x2, w2, n = _fc_matrices(op_type, x, w, axis, axis_w, transposed)
            m = x2.shape[0]
            if dy.size != m * n:
                raise ValueError(f"{op_type}: dY is {list(dy.shape)} but Y has [M, N] = [{m}, {n}]")
            dy2 = cuda.reshape(dy, (m, n))
            # dW in W's layout: [K, N] = X^T dY, or [N, K] = dY^T X; dX = dY W^T or dY W.
            dw = gemm(x2, dy2, True, False) if transposed else gemm(dy2, x2, True, False)
            grads = (cuda.reshape(dw, w.shape), _column_sums(dy2))
            if num_outputs < 3:
                return grads
            return grads + (cuda.reshape(gemm(dy2, w2, False, transposed), x.shape),)
        return fc_gradient
    return factory


register_cuda("FC", specialize=True)(_fc_cuda_factory("FC", transposed=False))
register_cuda("FCTransposed", specialize=True)(_fc_cuda_factory("FCTransposed", transposed=True))
register_cuda("FCGradient", specialize=True)(_fc_gradient_cuda_factory("FCGradient", transposed=False))
register_cuda("FCTransposedGradient", specialize=True)(
    _fc_gradient_cuda_factory("FCTransposedGradient", transposed=True))


@register_cuda("MatMul", specialize=True)
def matmul_cuda(*, axis_a, axis_b, trans_a, trans_b):
    def run(a, b, shape_like=None):
        a, b = cuda.as_gpu(a), cuda.as_gpu(b)
        _same_dtype("MatMul", A=a, B=b)
        cuda.require_float32("MatMul", a, b)
        a2 = _gpu_matrix("MatMul", a, axis_a, "A", "axis_a")
        b2 = _gpu_matrix("MatMul", b, axis_b, "B", "axis_b")
        m, k = a2.shape[::-1] if trans_a else a2.shape
        k_b, n = b2.shape[::-1] if trans_b else b2.shape
        if k != k_b:
            raise ValueError(f"MatMul: A {list(a.shape)} gives [M, K] = {[m, k]} but B "
                             f"{list(b.shape)} gives [K, N] = {[k_b, n]}: K must match")
        y = gemm(a2, b2, bool(trans_a), bool(trans_b))
        if shape_like is None:
            return y
        if shape_like.size != y.size:
            raise ValueError(f"MatMul: the product is {list(y.shape)} but input 2 is "
                             f"{list(shape_like.shape)}: element counts must match")
        return cuda.reshape(y, shape_like.shape)
    return run


@register_cuda("BatchMatMul", specialize=True)
def batch_matmul_cuda(*, trans_a, trans_b, broadcast):
    if broadcast:
        raise ValueError("BatchMatMul: broadcast=1 has no CUDA kernel; run this op on the CPU")

    def run(a, b):
        a, b = cuda.as_gpu(a), cuda.as_gpu(b)
        _same_dtype("BatchMatMul", A=a, B=b)
        cuda.require_float32("BatchMatMul", a, b)
        if len(a.shape) < 2 or len(b.shape) != len(a.shape) or a.shape[:-2] != b.shape[:-2]:
            raise ValueError(f"BatchMatMul: A {list(a.shape)} and B {list(b.shape)} must have "
                             "rank >= 2 and the same batch dims (or set broadcast=1)")
        k_a = a.shape[-2] if trans_a else a.shape[-1]
        k_b = b.shape[-1] if trans_b else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"BatchMatMul: A {list(a.shape)} has K = {k_a} but B "
                             f"{list(b.shape)} has K = {k_b}: K must match")
        count = math.prod(a.shape[:-2])
        y = gemm(cuda.reshape(a, (count, *a.shape[-2:])), cuda.reshape(b, (count, *b.shape[-2:])),
                 bool(trans_a), bool(trans_b))
        return cuda.reshape(y, a.shape[:-2] + y.shape[1:])
    return run
