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
from pycaffe2.schema.inference.linalg import (
    batch_matmul_shape,
    check_fc_bias,
    check_fc_dy,
    check_same_dtype,
    check_shape_like,
    fc_output_shape,
    fc_sizes,
    matmul_sizes,
)


def _fc_factory(transposed: bool):
    def factory(*, axis, axis_w):
        def fc(x, w, b):
            check_same_dtype(X=x.dtype, W=w.dtype)
            m, k, n = fc_sizes(x.shape, w.shape, axis, axis_w, transposed)
            check_fc_bias(b.shape, w.shape, n)
            y = np.dot(x.reshape(m, k), _fc_right(w, k, n, transposed))
            y += b.reshape(n)  # y is ours: the bias goes in without another array
            return y.reshape(fc_output_shape(x.shape, axis, n))
        return fc
    return factory


def _fc_right(w: np.ndarray, k: int, n: int, transposed: bool) -> np.ndarray:
    """W as the [K, N] right factor of X's [M, K] (a transposed view for FC)."""
    return w.reshape(k, n) if transposed else w.reshape(n, k).T


def _fc_gradient_factory(transposed: bool):
    def factory(*, axis, axis_w, num_outputs):
        def fc_gradient(x, w, dy):
            m, k, n = fc_sizes(x.shape, w.shape, axis, axis_w, transposed)
            check_fc_dy(dy.shape, m, n)
            x2, dy2 = x.reshape(m, k), dy.reshape(m, n)
            # dW in W's own layout: [K, N] = X^T dY, or its transpose dY^T X for [N, K].
            dw = np.dot(x2.T, dy2) if transposed else np.dot(dy2.T, x2)
            db = dy2.sum(axis=0)
            if num_outputs < 3:
                return dw.reshape(w.shape), db
            return dw.reshape(w.shape), db, np.dot(dy2, _fc_right(w, k, n, transposed).T).reshape(x.shape)
        return fc_gradient
    return factory


register_cpu("FC", specialize=True)(_fc_factory(transposed=False))
register_cpu("FCTransposed", specialize=True)(_fc_factory(transposed=True))
register_cpu("FCGradient", specialize=True)(_fc_gradient_factory(transposed=False))
register_cpu("FCTransposedGradient", specialize=True)(_fc_gradient_factory(transposed=True))
# FC's gradient op outputs dW, db, dX (Caffe2's order).
gradient_op("FC", "I0 I1 GO0", "GI1 GI2 GI0")
gradient_op("FCTransposed", "I0 I1 GO0", "GI1 GI2 GI0")


def _matmul_operands(a, b, axis_a, axis_b, trans_a, trans_b, reshape):
    """(A and B as stored matrices, M, N) after the schema's checks; `reshape` is
    NumPy's or cuda.reshape."""
    check_same_dtype(A=a.dtype, B=b.dtype)
    m, k, n = matmul_sizes(a.shape, b.shape, axis_a, axis_b, trans_a, trans_b)
    a2 = reshape(a, (k, m) if trans_a else (m, k))
    b2 = reshape(b, (n, k) if trans_b else (k, n))
    return a2, b2, m, n


def _shaped_like(y, m: int, n: int, shape_like, reshape):
    if shape_like is None:
        return y
    check_shape_like(m, n, shape_like.shape)
    return reshape(y, shape_like.shape)


@register_cpu("MatMul", specialize=True)
def matmul(*, axis_a, axis_b, trans_a, trans_b):
    def run(a, b, shape_like=None):
        a2, b2, m, n = _matmul_operands(a, b, axis_a, axis_b, trans_a, trans_b, np.reshape)
        y = np.dot(a2.T if trans_a else a2, b2.T if trans_b else b2)
        return _shaped_like(y, m, n, shape_like, np.reshape)
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


@register_cpu("BatchMatMul", specialize=True)
def batch_matmul(*, trans_a, trans_b, broadcast):
    def run(a, b):
        check_same_dtype(A=a.dtype, B=b.dtype)
        shape = batch_matmul_shape(a.shape, b.shape, trans_a, trans_b, broadcast)
        # A 1-D operand is a vector (its own transpose), promoted as numpy.matmul does.
        left = np.swapaxes(a, -1, -2) if trans_a and a.ndim > 1 else a
        right = np.swapaxes(b, -1, -2) if trans_b and b.ndim > 1 else b
        if a.dtype == np.float16:  # sums in float32, rounded once (as ONNX Runtime and GPUs do)
            return np.matmul(left.astype(np.float32), right.astype(np.float32)).astype(np.float16).reshape(shape)
        return np.matmul(left, right).reshape(shape)  # vector . vector is [1], as in Caffe2
    return run


@register_gradient("BatchMatMul")
def make_batch_matmul_gradient(g):
    """As MatMul's, batch by batch. Not with broadcast=1 (nor in Caffe2): its
    gradients would need sums over broadcast batch dims and 1-D promotion undone."""
    if g.arg("broadcast"):
        raise GradientError("no gradient with broadcast=1")
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


# CUDA launchers (linalg.cu). Every product runs on `gemm`; shapes are checked by the
# schema's functions, as on the CPU.
GEMM_TILE, GEMM_THREADS = 128, 256  # as TILE and THREADS in linalg.cu
_INT_MAX = 2**31 - 1  # the kernel indexes one matrix with ints
_GRID_MAX = 65535  # grid y and z (the kernel strides over row tiles and batch)
_SUM_CHUNK = 1024  # rows per block in the first of two column-sum passes



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
    a, b = cuda.float32_inputs(a, b)
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


def _fc_cuda_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w):
        def fc(x, w, b):
            x, w, b = cuda.as_gpu(x), cuda.as_gpu(w), cuda.as_gpu(b)
            check_same_dtype(X=x.dtype, W=w.dtype)
            cuda.require_float32(x, w, b)
            m, k, n = fc_sizes(x.shape, w.shape, axis, axis_w, transposed)
            check_fc_bias(b.shape, w.shape, n)
            w2 = cuda.reshape(w, (k, n) if transposed else (n, k))
            y = gemm(cuda.reshape(x, (m, k)), w2, False, not transposed)  # FC's W is [N, K]: Y = X W^T
            cuda.launch("linalg.cu", "add_bias", y.size, y, b, np.int64(n), np.int64(y.size))
            return cuda.reshape(y, fc_output_shape(x.shape, axis, n))
        return fc
    return factory


def _fc_gradient_cuda_factory(op_type: str, transposed: bool):
    def factory(*, axis, axis_w, num_outputs):
        def fc_gradient(x, w, dy):
            x, w, dy = cuda.float32_inputs(x, w, dy)
            m, k, n = fc_sizes(x.shape, w.shape, axis, axis_w, transposed)
            check_fc_dy(dy.shape, m, n)
            x2, dy2 = cuda.reshape(x, (m, k)), cuda.reshape(dy, (m, n))
            w2 = cuda.reshape(w, (k, n) if transposed else (n, k))
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
        cuda.require_float32(a, b)
        a2, b2, m, n = _matmul_operands(a, b, axis_a, axis_b, trans_a, trans_b, cuda.reshape)
        y = gemm(a2, b2, bool(trans_a), bool(trans_b))
        return _shaped_like(y, m, n, shape_like, cuda.reshape)
    return run


@register_cuda("BatchMatMul", specialize=True)
def batch_matmul_cuda(*, trans_a, trans_b, broadcast):
    if broadcast:
        raise ValueError("broadcast=1 has no CUDA kernel; run this op on the CPU")

    def run(a, b):
        a, b = cuda.as_gpu(a), cuda.as_gpu(b)
        check_same_dtype(A=a.dtype, B=b.dtype)
        cuda.require_float32(a, b)
        shape = batch_matmul_shape(a.shape, b.shape, trans_a, trans_b, broadcast)
        count = math.prod(a.shape[:-2])
        y = gemm(cuda.reshape(a, (count, *a.shape[-2:])), cuda.reshape(b, (count, *b.shape[-2:])),
                 bool(trans_a), bool(trans_b))
        return cuda.reshape(y, shape)
    return run
