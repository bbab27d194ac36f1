"""Inference rules of the signal family (ONNX's windows, DFT, STFT, MelWeightMatrix and
TfIdfVectorizer), and the checks its kernels share with them. A window's or matrix's size
is a value (unknown here); DFT's and STFT's complex values are a last dimension of 2
(real signals: 1).
"""
from __future__ import annotations

import itertools
import math

from pycaffe2.schema.args import DTYPE_BY_NUMBER
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.fill import NUMPY_NAMES
from pycaffe2.schema.inference.segment import INDEX_TYPES

# ONNX lets a window be of any numeric type (T2); the values are cast from float64
WINDOW_TYPES = FLOAT_TYPES + ("int8", "int16", "int32", "int64", "uint8", "uint16")


def output_dtype(dtype: int, allowed=FLOAT_TYPES) -> str:
    """The NumPy name of an output_datatype arg (a TensorProto.DataType), checked."""
    name = NUMPY_NAMES.get(DTYPE_BY_NUMBER.get(dtype, ""))
    if name not in allowed:
        raise ShapeError(f"output_datatype {DTYPE_BY_NUMBER.get(dtype, dtype)} is not one of "
                         f"{', '.join(allowed)}")
    return name


def scalar(name: str, shape, dtype=None, types=None) -> None:
    if math.prod(shape) != 1 or (types and dtype is not None and str(dtype) not in types):
        kinds = f" {' or '.join(types)}" if types else ""
        raise ShapeError(f"{name} must be one{kinds} value, got {list(shape)} {dtype or ''}".rstrip())


def complex_input(name: str, shape, dtype) -> None:
    """[..., 1] (real) or [..., 2] (complex) of a float type."""
    if len(shape) < 2 or shape[-1] not in (1, 2):
        raise ShapeError(f"{name} must be [..., 1] (real) or [..., 2] (complex) with rank >= 2, got {list(shape)}")
    if str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"{name} must be float, got {dtype}")


def dft_axis(axis: int, rank: int) -> int:
    """The signal axis DFT transforms: in [-r, -2] or [0, r - 2] (the last one holds real/imag)."""
    if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
        raise ShapeError(f"axis {axis} is out of [-{rank}, -2] and [0, {rank - 2}] for an input of rank {rank}")
    return axis + rank if axis < 0 else axis


def dft_shape(shape, axis: int, inverse: int, onesided: int, length: int | None) -> tuple:
    """DFT's output shape; `length` is dft_length (None: the default)."""
    shape = list(shape)
    n = shape[axis]
    if onesided and inverse:
        shape[axis] = length if length is not None else 2 * (n - 1)
        shape[-1] = 1
    else:
        length = n if length is None else length
        shape[axis] = length // 2 + 1 if onesided else length
        shape[-1] = 2
    if shape[axis] < 1:
        raise ShapeError(f"the DFT length along axis {axis} must be positive, got {shape[axis]}")
    return tuple(shape)


@rule("signal_window")
def window(op: OpView, inputs: list) -> list:
    """A window of `size` (a value) elements of output_datatype."""
    output_dtype(op.arg("output_datatype"), WINDOW_TYPES)
    if inputs[0] is not None:
        scalar("size", inputs[0].shape, inputs[0].dtype, INDEX_TYPES)
    return [None]  # the size is a value


@rule("signal_dft")
def dft(op: OpView, inputs: list) -> list:
    x = inputs[0]
    length = inputs[1] if op.n_inputs > 1 else None
    if length is not None and 0 not in length.shape:
        scalar("dft_length", length.shape, length.dtype, INDEX_TYPES)
    if x is None:
        return [None]
    complex_input("input", x.shape, x.dtype)
    axis = dft_axis(op.arg("axis"), len(x.shape))
    if op.arg("onesided") and op.arg("inverse") and x.shape[-1] != 2:
        raise ShapeError("the inverse one-sided DFT takes a complex input ([..., 2])")
    if length is not None and 0 not in length.shape:
        return [None]  # the length is a value
    return [TensorInfo(dft_shape(x.shape, axis, op.arg("inverse"), op.arg("onesided"), None), x.dtype)]


def stft_signal(shape, dtype) -> None:
    if len(shape) != 3 or shape[-1] not in (1, 2) or str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"signal must be float [batch, length, 1] (real) or [batch, length, 2] (complex), "
                         f"got {list(shape)} {dtype}")


@rule("signal_stft")
def stft(op: OpView, inputs: list) -> list:
    signal, step = inputs[:2]
    if signal is not None:
        stft_signal(signal.shape, signal.dtype)
    if step is not None:
        scalar("frame_step", step.shape, step.dtype, INDEX_TYPES)
    if op.n_inputs > 2 and inputs[2] is not None and len(inputs[2].shape) != 1:
        raise ShapeError(f"window must be 1-D, got {list(inputs[2].shape)}")
    return [None]  # the frame count is a value


@rule("signal_mel_weight_matrix")
def mel_weight_matrix(op: OpView, inputs: list) -> list:
    output_dtype(op.arg("output_datatype"))
    names = ("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")
    for name, info in zip(names, inputs):
        if info is not None:
            scalar(name, info.shape, info.dtype, INDEX_TYPES if name in names[:3] else FLOAT_TYPES)
    return [None]


def tfidf_args(pool, counts, indexes, weights, min_gram: int, max_gram: int) -> int:
    """TfIdfVectorizer's args checked together; returns the output width."""
    if not 1 <= min_gram <= max_gram:
        raise ShapeError(f"min_gram_length {min_gram} and max_gram_length {max_gram} must satisfy "
                         f"1 <= min <= max")
    if not indexes:
        raise ShapeError("ngram_indexes must not be empty")
    starts = list(counts) + [len(pool)]
    if any(b < a for a, b in itertools.pairwise(starts)) or (counts and counts[0] != 0):
        raise ShapeError(f"ngram_counts {list(counts)} must start at 0 and rise within the pool of {len(pool)}")
    total = sum((b - a) // (n + 1) for n, (a, b) in enumerate(itertools.pairwise(starts)))
    if any((b - a) % (n + 1) for n, (a, b) in enumerate(itertools.pairwise(starts))):
        raise ShapeError(f"ngram_counts {list(counts)} does not split the pool into whole n-grams")
    if total != len(indexes) or min(indexes) < 0:
        raise ShapeError(f"ngram_indexes must hold {total} non-negative indexes (one per n-gram of the pool), "
                         f"got {len(indexes)}")
    width = max(indexes) + 1
    if weights and len(weights) != width and len(weights) != len(indexes):
        raise ShapeError(f"weights must hold {len(indexes)} values, got {len(weights)}")
    return width


@rule("signal_tfidf_vectorizer")
def tfidf_vectorizer(op: OpView, inputs: list) -> list:
    width = tfidf_args(op.arg("pool_int64s"), op.arg("ngram_counts"), op.arg("ngram_indexes"),
                       op.arg("weights"), op.arg("min_gram_length"), op.arg("max_gram_length"))
    x = inputs[0]
    if x is None:
        return [None]
    tfidf_input(x.shape, x.dtype)
    return [TensorInfo((width,) if len(x.shape) == 1 else (x.shape[0], width), "float32")]


def tfidf_input(shape, dtype) -> None:
    if len(shape) not in (1, 2) or str(dtype) not in INDEX_TYPES:
        raise ShapeError(f"X must be a 1-D or 2-D int32 or int64 tensor, got {list(shape)} {dtype}")
