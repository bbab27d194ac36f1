"""signal family: the three windows against their cosine sums, DFT and STFT against a
direct O(n^2) transform written here (axes, lengths, inverse, one-sided), MelWeightMatrix
against a per-bin triangle loop, TfIdfVectorizer against a brute-force n-gram count;
inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer

DT = caffe2_pb2.TensorProto
WINDOWS = {"HannWindow": [0.5, -0.5], "HammingWindow": [25 / 46, -21 / 46], "BlackmanWindow": [0.42, -0.5, 0.08]}


def window_reference(op):
    def ref(size, periodic=1, output_datatype=DT.FLOAT):
        n = int(size)
        out = np.zeros(n)
        for i in range(n):
            for k, a in enumerate(WINDOWS[op]):
                out[i] += a * np.cos(2 * np.pi * k * i / (n if periodic else n - 1))
        return out.astype({DT.FLOAT: np.float32, DT.DOUBLE: np.float64, DT.INT32: np.int32}[output_datatype])
    return ref


@pytest.mark.parametrize("op", list(WINDOWS))
@pytest.mark.parametrize("args", [{}, {"periodic": 0}, {"output_datatype": DT.DOUBLE}])
@pytest.mark.parametrize("size", [1 + 9, 7])
def test_windows(op, args, size):
    check_reference(op, [np.array(size, np.int32)], window_reference(op), args)


def test_window_int_output_and_zero_size():
    got = run_op("HannWindow", [np.array([4], np.int64)], {"output_datatype": DT.INT32})[0]
    assert got.dtype == np.int32 and got.shape == (4,)
    assert run_op("BlackmanWindow", [np.array(0, np.int64)])[0].shape == (0,)


def direct_dft(z, axis, n, inverse):
    """Sum over the axis of z (complex), cut or padded to n."""
    z = np.moveaxis(z, axis, -1)
    m = z.shape[-1]
    padded = np.zeros(z.shape[:-1] + (n,), complex)
    padded[..., :min(m, n)] = z[..., :min(m, n)]
    k = np.arange(n)
    sign = 1 if inverse else -1
    basis = np.exp(sign * 2j * np.pi * np.outer(k, k) / n)
    out = padded @ basis.T / (n if inverse else 1)
    return np.moveaxis(out, -1, axis)


def to_complex(x):
    return x[..., 0] + (1j * x[..., 1] if x.shape[-1] == 2 else 0)


def dft_reference(x, *length, axis=1, inverse=0, onesided=0):
    z = to_complex(x.astype(np.float64))
    ax = axis + x.ndim if axis < 0 else axis
    n = int(length[0]) if length else None
    if onesided and inverse:
        m = z.shape[ax]
        n = n or 2 * (m - 1)
        # rebuild the full spectrum from its half by conjugate symmetry
        full = np.zeros(z.shape[:ax] + (n,) + z.shape[ax + 1:], complex)
        idx = [slice(None)] * z.ndim
        for k in range(n):  # bins past n // 2 mirror the first ones; missing bins are zero
            idx[ax] = k
            src = [slice(None)] * z.ndim
            src[ax] = k if k <= n // 2 else n - k
            if src[ax] < m:
                full[tuple(idx)] = z[tuple(src)] if k <= n // 2 else np.conj(z[tuple(src)])
        return direct_dft(full, ax, n, 1).real[..., None].astype(x.dtype)
    n = n or z.shape[ax]
    out = direct_dft(z, ax, n, inverse)
    if onesided:
        out = np.take(out, np.arange(n // 2 + 1), axis=ax)
    return np.stack([out.real, out.imag], -1).astype(x.dtype)


RNG = np.random.default_rng(0)
REAL = RNG.standard_normal((2, 6, 5, 1)).astype(np.float32)
COMPLEX = RNG.standard_normal((2, 6, 5, 2)).astype(np.float32)


@pytest.mark.parametrize("x", [REAL, COMPLEX], ids=["real", "complex"])
@pytest.mark.parametrize("args", [{}, {"axis": 2}, {"axis": -2}, {"axis": 0, "inverse": 1}, {"onesided": 1},
                                  {"axis": 2, "onesided": 1}])
def test_dft(x, args):
    check_reference("DFT", [x], dft_reference, args, atol=1e-4)


@pytest.mark.parametrize("length", [4, 9])
@pytest.mark.parametrize("args", [{}, {"inverse": 1, "axis": 2}, {"onesided": 1}])
def test_dft_length(length, args):
    check_reference("DFT", [COMPLEX, np.array(length, np.int64)], dft_reference, args, atol=1e-4)


@pytest.mark.parametrize("length", [[], [10], [7]])
def test_inverse_one_sided_dft(length):
    half = np.fft.rfft(RNG.standard_normal((3, 10)), axis=1)
    x = np.stack([half.real, half.imag], -1).astype(np.float32)
    inputs = [x] + [np.array(n, np.int32) for n in length]
    check_reference("DFT", inputs, dft_reference, {"onesided": 1, "inverse": 1}, atol=1e-4)


def stft_reference(signal, step, window=None, length=None, onesided=1):
    z = to_complex(signal.astype(np.float64))
    n = int(length) if length is not None else (window.shape[0] if window is not None and window.size else z.shape[1])
    w = window if window is not None and window.size else np.ones(n)
    frames = (z.shape[1] - n) // int(step) + 1
    out = np.stack([direct_dft(z[:, f * int(step):f * int(step) + n] * w, 1, n, 0) for f in range(frames)], 1)
    out = out[:, :, :n // 2 + 1] if onesided else out
    return np.stack([out.real, out.imag], -1).astype(signal.dtype)


@pytest.mark.parametrize("args", [{}, {"onesided": 0}])
def test_stft(args):
    signal = RNG.standard_normal((2, 40, 1)).astype(np.float32)
    window = np.hanning(8).astype(np.float32)
    check_reference("STFT", [signal, np.array(5, np.int64), window], stft_reference, args, atol=1e-4)
    check_reference("STFT", [signal, np.array(6, np.int64), np.zeros(0, np.float32), np.array(10, np.int64)],
                    stft_reference, args, atol=1e-4)
    check_reference("STFT", [signal, np.array(3, np.int64)], stft_reference, args, atol=1e-4)


def test_stft_complex_signal():
    signal = RNG.standard_normal((1, 20, 2)).astype(np.float64)
    check_reference("STFT", [signal, np.array(4, np.int32), np.ones(6)], stft_reference, {"onesided": 0})


def mel_reference(bins, length, rate, low, high, output_datatype=DT.FLOAT):
    bins, length, rate = int(bins), int(length), int(rate)
    to_mel = lambda f: 2595 * np.log10(1 + f / 700)
    mel = [to_mel(float(low)) + i * (to_mel(float(high)) - to_mel(float(low))) / (bins + 2) for i in range(bins + 2)]
    edges = [int((length + 1) * (700 * (10 ** (m / 2595) - 1)) // rate) for m in mel]
    out = np.zeros((length // 2 + 1, bins))
    for b in range(bins):
        lo, mid, hi = edges[b:b + 3]
        for j in range(out.shape[0]):
            if lo <= j <= mid:
                out[j, b] = 1.0 if mid == lo else (j - lo) / (mid - lo)
            if mid <= j < hi:
                out[j, b] = (hi - j) / (hi - mid)
    return out.astype(np.float64 if output_datatype == DT.DOUBLE else np.float32)


@pytest.mark.parametrize("values, args", [((8, 16, 8192, 0.0, 4096.0), {}),
                                          ((5, 64, 16000, 100.0, 6000.0), {"output_datatype": DT.DOUBLE})])
def test_mel_weight_matrix(values, args):
    inputs = [np.array(v, np.int64 if i < 3 else np.float32) for i, v in enumerate(values)]
    check_reference("MelWeightMatrix", inputs, mel_reference, args)


def tfidf_reference(x, mode, min_gram_length, max_gram_length, ngram_counts, ngram_indexes, pool_int64s,
                    max_skip_count=0, weights=()):
    pool, index = [], 0
    bounds = list(ngram_counts) + [len(pool_int64s)]
    for n in range(1, len(bounds)):
        for k in range(bounds[n - 1], bounds[n], n):
            pool.append((tuple(pool_int64s[k:k + n]), ngram_indexes[index]))
            index += 1
    width = max(ngram_indexes) + 1
    rows = np.atleast_2d(x)
    out = np.zeros((rows.shape[0], width))
    for r, row in enumerate(rows):
        for n in range(min_gram_length, max_gram_length + 1):
            for skip in range(max_skip_count + 1 if n > 1 else 1):
                for i in range(len(row)):
                    pos = [i + j * (skip + 1) for j in range(n)]
                    if pos[-1] >= len(row):
                        continue
                    for gram, col in pool:
                        if gram == tuple(row[pos]):
                            out[r, col] += 1
    w = np.array(weights if weights else [1.0] * width)
    out = {"TF": out, "IDF": (out > 0) * w, "TFIDF": out * w}[mode]
    return out.astype(np.float32).reshape(-1) if x.ndim == 1 else out.astype(np.float32)


POOL = {"ngram_counts": [0, 4], "ngram_indexes": [0, 1, 2, 3, 4, 5, 6], "pool_int64s": [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]}


@pytest.mark.parametrize("x", [np.array([1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], np.int32),
                               np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], np.int64)])
@pytest.mark.parametrize("args", [{"mode": "TF", "min_gram_length": 2, "max_gram_length": 2, "max_skip_count": 0},
                                  {"mode": "TF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 5},
                                  {"mode": "IDF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1,
                                   "weights": [0.5, 1, 2, 3, 4, 5, 6]},
                                  {"mode": "TFIDF", "min_gram_length": 1, "max_gram_length": 1,
                                   "weights": [0.5, 1, 2, 3, 4, 5, 6]}])
def test_tfidf_vectorizer(x, args):
    check_reference("TfIdfVectorizer", [x], tfidf_reference, {**POOL, **args})


def test_inference():
    assert infer("DFT", [(2, 6, 5, 1)], axis=2, onesided=1) == [TensorInfo((2, 6, 3, 2))]
    assert infer("DFT", [(2, 6, 2)], inverse=1, onesided=1) == [TensorInfo((2, 10, 1))]
    assert infer("DFT", [(2, 6, 2), TensorInfo((), "int64")]) == [None]
    assert infer("TfIdfVectorizer", [TensorInfo((3, 8), "int32")], **POOL, mode="TF", min_gram_length=1,
                 max_gram_length=2) == [TensorInfo((3, 7))]
    assert infer("STFT", [(1, 128, 1), TensorInfo((), "int64")]) == [None]
    assert infer("HannWindow", [TensorInfo((), "int32")]) == [None]


@pytest.mark.parametrize("op, shapes, args, message", [
    ("DFT", [(2, 6, 5, 3)], {}, r"must be \[..., 1\] \(real\) or \[..., 2\] \(complex\)"),
    ("DFT", [(2, 6, 5, 2)], {"axis": 3}, r"axis 3 is out of \[-4, -2\] and \[0, 2\]"),
    ("DFT", [(2, 6, 1)], {"inverse": 1, "onesided": 1}, "takes a complex input"),
    ("DFT", [(2, 6, 2), (2,)], {}, "dft_length must be one"),
    ("STFT", [(1, 128), TensorInfo((), "int64")], {}, "signal must be float"),
    ("STFT", [(1, 128, 1), TensorInfo((), "float32")], {}, "frame_step must be one int32 or int64"),
    ("HannWindow", [TensorInfo((), "int32")], {"output_datatype": DT.STRING}, "output_datatype STRING"),
    ("MelWeightMatrix", [TensorInfo((), "int32")] * 3 + [(), TensorInfo((), "int64")], {},
     "upper_edge_hertz must be one"),
    ("TfIdfVectorizer", [TensorInfo((3,), "int32")], {**POOL, "mode": "TF", "min_gram_length": 2,
                                                       "max_gram_length": 1}, "must satisfy 1 <= min <= max"),
    ("TfIdfVectorizer", [TensorInfo((3,), "int32")], {**POOL, "ngram_counts": [0, 3], "mode": "TF",
                                                       "min_gram_length": 1, "max_gram_length": 2},
     "does not split the pool"),
    ("TfIdfVectorizer", [TensorInfo((3,), "int32")], {**POOL, "ngram_indexes": [0, 1], "mode": "TF",
                                                       "min_gram_length": 1, "max_gram_length": 2},
     "must hold 7 non-negative indexes"),
    ("TfIdfVectorizer", [TensorInfo((3,), "float32")], {**POOL, "mode": "TF", "min_gram_length": 1,
                                                         "max_gram_length": 2}, "X must be a 1-D or 2-D int32"),
])
def test_errors(op, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op, shapes, **args)


def test_kernel_errors():
    with pytest.raises((OpFailure, NetError), match="size must not be negative"):
        run_op("HannWindow", [np.array(-1, np.int64)])
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("HammingWindow", [np.array(1 << 40, np.int64)])
    with pytest.raises((OpFailure, NetError), match=r"window must be \[10\]"):
        run_op("STFT", [np.zeros((1, 20, 1), np.float32), np.array(2), np.ones(4, np.float32), np.array(10)])
    with pytest.raises((OpFailure, NetError), match="frame_step must be positive"):
        run_op("STFT", [np.zeros((1, 20, 1), np.float32), np.array(0)])
    with pytest.raises((OpFailure, NetError), match="dft_length must be positive"):
        run_op("DFT", [COMPLEX, np.array(0)])
    with pytest.raises((OpFailure, NetError), match="lower_edge_hertz < upper_edge_hertz"):
        run_op("MelWeightMatrix", [np.array(4), np.array(16), np.array(800), np.array(300.0, np.float32),
                                   np.array(100.0, np.float32)])
