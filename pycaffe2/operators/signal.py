"""Signal kernels (NumPy, CPU): ONNX's Hann, Hamming and Blackman windows, DFT, STFT,
MelWeightMatrix, and TfIdfVectorizer's n-gram counts. Transforms run through numpy.fft
(complex64 for float32 data, complex128 for float64) and return the input's float type;
sizes read from values are checked with files.check_alloc before anything is allocated."""
from __future__ import annotations

import itertools

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.segment import INDEX_TYPES
from pycaffe2.schema.inference.signal import (
    WINDOW_TYPES,
    complex_input,
    dft_axis,
    dft_shape,
    output_dtype,
    scalar,
    stft_signal,
    tfidf_args,
    tfidf_input,
)


def _int_value(name: str, value) -> int:
    scalar(name, value.shape, value.dtype, INDEX_TYPES)
    return int(value.reshape(-1)[0])


def _present(value) -> bool:
    return value is not None and value.size > 0


def _window(coefficients, size, periodic, output_datatype):
    """sum_k (-1)^k a_k cos(2 pi k n / N) for n < size."""
    dtype = output_dtype(output_datatype, WINDOW_TYPES)
    length = _int_value("size", size)
    if length < 0:
        raise ShapeError(f"size must not be negative, got {length}")
    check_alloc((length,), dtype, "the window")
    span = length if periodic else max(length - 1, 1)
    phase = 2 * np.pi * np.arange(length) / span
    window = sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefficients))
    return np.asarray(window, np.float64).astype(dtype)


@register_cpu("HannWindow")
def hann_window(size, *, periodic, output_datatype):
    return _window((0.5, 0.5), size, periodic, output_datatype)


@register_cpu("HammingWindow")
def hamming_window(size, *, periodic, output_datatype):
    return _window((25 / 46, 21 / 46), size, periodic, output_datatype)


@register_cpu("BlackmanWindow")
def blackman_window(size, *, periodic, output_datatype):
    return _window((0.42, 0.5, 0.08), size, periodic, output_datatype)


def _as_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1] or [..., 2] float -> complex [...]: complex64 below float64, as numpy.fft
    (and so ONNX's expected outputs) transforms float32 data in single precision."""
    dtype = np.complex128 if x.dtype == np.float64 else np.complex64
    z = x[..., 0].astype(dtype)
    if x.shape[-1] == 2:
        z.imag = x[..., 1]
    return z


def _pack(z: np.ndarray, dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _cut(z: np.ndarray, axis: int, length: int) -> np.ndarray:
    """z cut or zero-padded to `length` along `axis`."""
    n = z.shape[axis]
    if length <= n:
        return np.take(z, np.arange(length), axis=axis)
    pad = [(0, 0)] * z.ndim
    pad[axis] = (0, length - n)
    return np.pad(z, pad)


@register_cpu("DFT")
def dft(x, *length, axis, inverse, onesided):
    complex_input("input", x.shape, x.dtype)
    axis = dft_axis(axis, x.ndim)
    given = _int_value("dft_length", length[0]) if length and _present(length[0]) else None
    if given is not None and given < 1:
        raise ShapeError(f"dft_length must be positive, got {given}")
    shape = dft_shape(x.shape, axis, inverse, onesided, given)
    check_alloc(shape, x.dtype, "the DFT's output")
    z = _as_complex(x)
    if onesided and inverse:
        if x.shape[-1] != 2:
            raise ShapeError("the inverse one-sided DFT takes a complex input ([..., 2])")
        return np.fft.irfft(z, n=shape[axis], axis=axis)[..., None].astype(x.dtype)
    n = x.shape[axis] if given is None else given
    z = _cut(z, axis, n)
    out = np.fft.ifft(z, axis=axis) if inverse else np.fft.fft(z, axis=axis)
    if onesided:
        out = np.take(out, np.arange(n // 2 + 1), axis=axis)
    return _pack(out, x.dtype)


@register_cpu("STFT")
def stft(signal, frame_step, *optional, onesided):
    stft_signal(signal.shape, signal.dtype)
    step = _int_value("frame_step", frame_step)
    window = optional[0] if optional and _present(optional[0]) else None
    length = signal.shape[1] if window is None else window.shape[0]
    if len(optional) > 1 and _present(optional[1]):
        length = _int_value("frame_length", optional[1])
    if window is not None and (window.ndim != 1 or window.shape[0] != length):
        raise ShapeError(f"window must be [{length}] (frame_length), got {list(window.shape)}")
    if step < 1 or not 1 <= length <= signal.shape[1]:
        raise ShapeError(f"frame_step must be positive and frame_length in [1, {signal.shape[1]}] "
                         f"(the signal's length), got {step} and {length}")
    frames = (signal.shape[1] - length) // step + 1
    bins = length // 2 + 1 if onesided else length
    check_alloc((signal.shape[0], frames, bins, 2), signal.dtype, "the STFT's output")
    z = _as_complex(signal)
    starts = np.arange(frames) * step
    framed = z[:, starts[:, None] + np.arange(length)]  # [batch, frames, length]
    if window is not None:
        framed = framed * window.astype(z.real.dtype)
    out = np.fft.fft(framed, axis=-1)[..., :bins]
    return _pack(out, signal.dtype)


@register_cpu("MelWeightMatrix")
def mel_weight_matrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *,
                      output_datatype):
    dtype = output_dtype(output_datatype)
    bands, length, rate = (_int_value(n, v) for n, v in (("num_mel_bins", num_mel_bins),
                                                         ("dft_length", dft_length), ("sample_rate", sample_rate)))
    for name, value in (("lower_edge_hertz", lower_edge_hertz), ("upper_edge_hertz", upper_edge_hertz)):
        scalar(name, value.shape, value.dtype, FLOAT_TYPES)
    low, high = float(lower_edge_hertz.reshape(-1)[0]), float(upper_edge_hertz.reshape(-1)[0])
    if bands < 1 or length < 1 or rate < 1 or not 0 <= low < high:
        raise ShapeError(f"num_mel_bins, dft_length and sample_rate must be positive and 0 <= "
                         f"lower_edge_hertz < upper_edge_hertz, got {bands}, {length}, {rate}, {low}, {high}")
    rows = length // 2 + 1
    check_alloc((rows, bands), dtype, "the mel weight matrix")
    mel_low, mel_high = (2595 * np.log10(1 + f / 700) for f in (low, high))
    # ONNX's reference spaces num_mel_bins + 2 edges by (high - low) / (num_mel_bins + 2)
    mels = mel_low + np.arange(bands + 2) * (mel_high - mel_low) / (bands + 2)
    edges = ((length + 1) * (700 * (10 ** (mels / 2595) - 1)) // rate).astype(np.int64)
    edges = np.clip(edges, 0, rows - 1)
    out = np.zeros((rows, bands))
    j = np.arange(rows)
    for band in range(bands):
        left, centre, right = edges[band:band + 3]
        if centre == left:
            out[centre, band] = 1.0
        else:
            rising = (j >= left) & (j <= centre)
            out[rising, band] = (j[rising] - left) / (centre - left)
        if right > centre:
            falling = (j >= centre) & (j < right)
            out[falling, band] = (right - j[falling]) / (right - centre)
    return out.astype(dtype)


def _pool(pool, counts):
    """{n-gram tuple: its index in the pool} over every n-gram length."""
    starts = list(counts) + [len(pool)]
    grams, index = {}, 0
    for n, (a, b) in enumerate(itertools.pairwise(starts), start=1):
        for k in range(a, b, n):
            grams[tuple(pool[k:k + n])] = index
            index += 1
    return grams


@register_cpu("TfIdfVectorizer")
def tfidf_vectorizer(x, *, mode, min_gram_length, max_gram_length, max_skip_count, ngram_counts,
                     ngram_indexes, pool_int64s, weights):
    width = tfidf_args(pool_int64s, ngram_counts, ngram_indexes, weights, min_gram_length, max_gram_length)
    tfidf_input(x.shape, x.dtype)
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    grams = _pool(pool_int64s, ngram_counts)
    check_alloc((rows.shape[0], width), np.float32, "the n-gram counts")
    counts = np.zeros((rows.shape[0], width), np.float64)
    for r, row in enumerate(rows.tolist()):
        for n in range(min_gram_length, max_gram_length + 1):
            for stride in range(1, (max_skip_count + 2) if n > 1 else 2):  # 1-grams count once
                for start in range(len(row) - (n - 1) * stride):
                    hit = grams.get(tuple(row[start:start + (n - 1) * stride + 1:stride]))
                    if hit is not None:
                        counts[r, ngram_indexes[hit]] += 1
    scale = np.asarray(weights[:width], np.float64) if weights else 1.0
    if mode == "IDF":
        counts = (counts > 0) * scale
    elif mode == "TFIDF":
        counts = counts * scale
    out = counts.astype(np.float32)
    return out[0] if x.ndim == 1 else out
