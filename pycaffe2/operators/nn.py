"""Softmax, LogSoftmax and Dropout kernels (NumPy), with their gradient ops.

The softmax ops see X as a 2-D matrix [prod(dims before axis), prod(dims from
axis)] and normalise each row; they subtract the row max before exponentiating,
so large logits never overflow. They work in X's own float type and write into
temporaries they created themselves, because Softmax is benchmarked against
PyTorch. Dropout draws its mask from the executor's `rng`. The CUDA launchers
(nn.cu, at the end) run one block per row; CUDA Dropout draws one seed from
`rng` per run for a counter-based hash RNG, so its mask differs from the CPU's.
"""
from __future__ import annotations

import functools

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import same_shape
from pycaffe2.schema.inference.nn import dropout_grad_mask, float_type, row_shape


def as_rows(x: np.ndarray, axis: int, name: str = "X") -> np.ndarray:
    """X viewed as 2-D [prod(dims before axis), prod(dims from axis)]."""
    return x.reshape(row_shape(x.shape, axis, name))


@functools.lru_cache(maxsize=32)  # bounded: a row width comes from the data
def constant_row(value, n: int, dtype) -> np.ndarray:
    """A read-only row of `n` copies of `value`, made once for the widths a net keeps using."""
    row = np.full(n, value, dtype)
    row.flags.writeable = False
    return row


def row_sums(rows: np.ndarray) -> np.ndarray:
    """Each row's sum, [rows]: a matrix-vector product with ones (BLAS), twice as fast as .sum."""
    if rows.dtype in (np.float32, np.float64) and rows.shape[1]:
        return rows @ constant_row(1, rows.shape[1], rows.dtype)
    return rows.sum(axis=1)


def softmax_rows(rows: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a 2-D float array, as a new array.

    Subtracting the row max only guards exp against overflow. When no row's exp sum
    overflows and each is at least 1 (so a term lost to underflow weighs < 1e-38), the
    subtraction is skipped: exp(x) / sum equals exp(x - max) / sum within rounding."""
    if rows.dtype == np.float16:  # half rounds each step: the textbook order, as ONNX's reference
        y = np.exp(rows - rows.max(axis=1, keepdims=True))
        return y / y.sum(axis=1, keepdims=True)
    with np.errstate(over="ignore", under="ignore"):
        y = np.exp(rows)
    sums = row_sums(y)
    if not (sums.size and sums.min() >= 1 and sums.max() < np.inf):  # NaN fails too
        np.subtract(rows, rows.max(axis=1, keepdims=True), out=y)
        np.exp(y, out=y)
        sums = row_sums(y)
    y *= np.reciprocal(sums)[:, None]
    return y


def log_softmax_rows(rows: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of a 2-D float array, as a new array."""
    y = rows - rows.max(axis=1, keepdims=True)
    log_sum = np.exp(y).sum(axis=1, keepdims=True)
    np.log(log_sum, out=log_sum)
    y -= log_sum
    return y


@register_cpu("Softmax")
def softmax(x, *, axis):
    float_type(x.dtype)
    if x.size == 0:
        return x.copy()
    return softmax_rows(as_rows(x, axis)).reshape(x.shape)


@register_cpu("SoftmaxGradient")
def softmax_gradient(y, dy, *, axis):
    same_shape(y.shape, dy.shape, ("Y", "dY"))
    if y.size == 0:
        return np.zeros_like(dy)
    y_rows, dy_rows = as_rows(y, axis, "Y"), as_rows(dy, axis, "dY")
    # dX = Y * (dY - <dY, Y> per row); the row dots as a batch of matrix products (BLAS)
    row_dot = np.matmul(dy_rows[:, None, :], y_rows[:, :, None]).reshape(-1, 1)
    dx = np.subtract(dy_rows, row_dot)
    dx *= y_rows
    return dx.reshape(y.shape)


@register_cpu("LogSoftmax")
def log_softmax(x, *, axis):
    float_type(x.dtype)
    if x.size == 0:
        return x.copy()
    return log_softmax_rows(as_rows(x, axis)).reshape(x.shape)


@register_cpu("LogSoftmaxGradient")
def log_softmax_gradient(y, dy, *, axis):
    same_shape(y.shape, dy.shape, ("Y", "dY"))
    if y.size == 0:
        return np.zeros_like(dy)
    y_rows, dy_rows = as_rows(y, axis, "Y"), as_rows(dy, axis, "dY")
    dx = np.exp(y_rows)
    dx *= dy_rows.sum(axis=1, keepdims=True)
    np.subtract(dy_rows, dx, out=dx)
    return dx.reshape(y.shape)


def _keep_scale(ratio: float, dtype) -> np.generic:
    """1 / (1 - ratio), and 0 when everything is dropped (ratio = 1)."""
    return dtype.type(0.0 if ratio >= 1.0 else 1.0 / (1.0 - ratio))


@register_cpu("Dropout")
def dropout(x, *, ratio, is_test, num_outputs, rng):
    if is_test:
        # Y = X; a mask asked for in test mode reports every element as kept.
        return (x,) if num_outputs == 1 else (x, np.ones(x.shape, dtype=bool))
    mask = rng.random(x.shape, dtype=np.float32) >= np.float32(ratio)
    y = x * _keep_scale(ratio, x.dtype)
    y *= mask
    return y, mask


@register_cpu("DropoutGrad")
def dropout_grad(dy, mask=None, *, ratio, is_test):
    if is_test:
        return dy
    dropout_grad_mask(is_test, mask is not None)
    same_shape(dy.shape, mask.shape, ("dY", "mask"))
    dx = dy * _keep_scale(ratio, dy.dtype)
    dx *= mask
    return dx


# Gradient makers. The softmax gradients read Y, so in-place ops stay gradient-safe.
gradient_op("Softmax", "O0 GO0")
gradient_op("LogSoftmax", "O0 GO0")


@register_gradient("Dropout")
def _dropout_gradient(g):
    # The op type is DropoutGrad, as in Caffe2; test mode has no mask to read.
    if g.arg("is_test"):
        return [g.Op("DropoutGrad", [g.GO(0)], [g.GI(0)])]
    if len(g.op.output) < 2:
        raise GradientError("Dropout in training needs its mask output (output 1) for a gradient")
    return [g.Op("DropoutGrad", [g.GO(0), g.O(1)], [g.GI(0)])]


# CUDA launchers (nn.cu); row kernels run through cuda.launch_rows.
def gpu_copy(x):
    """A new GPUArray holding x (PyCUDA cannot memcpy an empty array)."""
    return x.copy() if x.size else cuda.empty_like(x)


def _cuda_rows_forward(op_type: str, kernel: str):
    def run(x, *, axis):
        (x,) = cuda.float32_inputs(x)
        y = cuda.empty_like(x)
        if x.size == 0:
            return y
        rows, cols = row_shape(x.shape, axis)
        cuda.launch_rows("nn.cu", kernel, rows, x, y, np.int64(rows), np.int64(cols))
        return y
    run.__name__ = f"{kernel}_cuda"
    return run


def _cuda_rows_gradient(op_type: str, kernel: str):
    def run(y, dy, *, axis):
        y, dy = cuda.float32_inputs(y, dy)
        same_shape(y.shape, dy.shape, ("Y", "dY"))
        dx = cuda.empty_like(dy)
        if y.size == 0:
            return dx
        rows, cols = row_shape(y.shape, axis, "Y")
        cuda.launch_rows("nn.cu", kernel, rows, y, dy, dx, np.int64(rows),
                    np.int64(cols))
        return dx
    run.__name__ = f"{kernel}_cuda"
    return run


for _type, _kernel in [("Softmax", "softmax_rows"), ("LogSoftmax", "log_softmax_rows")]:
    register_cuda(_type, args=("axis",))(_cuda_rows_forward(_type, _kernel))
    register_cuda(f"{_type}Gradient", args=("axis",))(
        _cuda_rows_gradient(f"{_type}Gradient", _kernel.replace("_rows", "_gradient_rows")))


@register_cuda("Dropout")
def dropout_cuda(x, *, ratio, is_test, num_outputs, rng):
    (x,) = cuda.float32_inputs(x)
    mask = cuda.empty(x.shape, np.bool_)
    if is_test:
        cuda.launch("nn.cu", "mask_all_kept", mask.size, mask, np.int64(mask.size))
        return (gpu_copy(x),) if num_outputs == 1 else (gpu_copy(x), mask)
    seed = rng.integers(0, 2**64, dtype=np.uint64)  # one draw per run seeds the hash RNG
    y = cuda.empty_like(x)
    cuda.launch("nn.cu", "dropout", x.size, x, y, mask,
                _keep_scale(ratio, y.dtype), np.float32(ratio), np.uint64(seed), np.int64(x.size))
    return y, mask


@register_cuda("DropoutGrad")
def dropout_grad_cuda(dy, mask=None, *, ratio, is_test):
    (dy,) = cuda.float32_inputs(dy)
    if is_test:
        return gpu_copy(dy)
    dropout_grad_mask(is_test, mask is not None)
    mask = cuda.as_gpu(mask)
    same_shape(dy.shape, mask.shape, ("dY", "mask"))
    kernels = {np.dtype(np.bool_): "dropout_grad", np.dtype(np.uint8): "dropout_grad",
               np.dtype(np.float32): "dropout_grad_float_mask"}
    if mask.dtype not in kernels:
        raise ValueError(f"the CUDA kernel takes a bool, uint8 or float32 mask, got {mask.dtype}")
    dx = cuda.empty_like(dy)
    cuda.launch("nn.cu", kernels[mask.dtype], dx.size, dy, mask, dx,
                _keep_scale(ratio, dx.dtype), np.int64(dx.size))
    return dx
