"""Interpolation weights shared by Resize (resize.py) and GridSample (grid.py); not a
family. Resize is separable: along each axis, output position o reads source
coordinate x(o) (ONNX's coordinate transformation modes) through a few taps whose
weights come from the mode's kernel, so one [out, in] weight matrix per axis does
nearest, linear, cubic, antialias and exclude_outside alike."""
from __future__ import annotations

import numpy as np


def cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient `a` at distances t."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def source_coordinates(mode: str, n_in: int, n_out: int, scale: float, roi) -> np.ndarray:
    """x(o) for every output position o along one axis (ONNX's Resize formulas; the
    'output width' of align_corners and tf_crop_and_resize is scale * n_in, a float)."""
    o = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    if mode == "asymmetric":
        return o / scale
    if mode == "align_corners":
        return np.zeros(n_out) if width == 1 else o * (n_in - 1) / (width - 1)
    if mode == "tf_crop_and_resize":
        start, end = roi
        x = np.full(n_out, (end - start) * (n_in - 1) / 2) if width == 1 else o * (end - start) * (n_in - 1) / (width - 1)
        return x + start * (n_in - 1)
    if mode == "pytorch_half_pixel" and width == 1:
        return np.full(n_out, -0.5)
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    x = (o + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        x += n_in / 2 * (1 - n_out / width)
    return x


def _taps(mode: str, scale: float, antialias: bool) -> tuple[int, float]:
    """(first tap relative to ceil(x) - 1, kernel scale) of linear or cubic."""
    s = min(scale, 1.0) if antialias else 1.0
    reach = 1 if mode == "linear" else 2
    return (int(np.floor(-reach / s)) + 1 if antialias else 1 - reach), s


def _nearest_upper(r: np.ndarray, nearest_mode: str) -> np.ndarray:
    """Whether nearest takes ceil(x) (tap 1) rather than ceil(x) - 1, given r in (0, 1]."""
    upper = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5,
             "floor": np.zeros(r.shape, bool), "ceil": np.ones(r.shape, bool)}[nearest_mode]
    return upper | (r == 1)  # x an integer: x itself


def axis_weights(x: np.ndarray, n_in: int, scale: float, args: dict) -> np.ndarray:
    """[len(x), n_in] weights reading source coordinates x along one axis; taps past
    the edge read the edge (or, with exclude_outside, drop out and the rest renormalise)."""
    base = np.ceil(x).astype(np.int64) - 1
    r = x - base  # in (0, 1]
    mode = args["mode"]
    if mode == "nearest":
        idx = base[:, None] + _nearest_upper(r, args["nearest_mode"])[:, None]
        w = np.ones(idx.shape)
    else:
        start, s = _taps(mode, scale, args["antialias"])
        offsets = np.arange(start, 2 - start)
        idx = base[:, None] + offsets
        t = (offsets[None, :] - r[:, None]) * s
        w = np.maximum(0.0, 1 - np.abs(t)) if mode == "linear" else cubic_kernel(t, args["cubic_coeff_a"])
        if args["antialias"]:
            w = w / w.sum(axis=1, keepdims=True)
    if args["exclude_outside"]:
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    matrix = np.zeros((len(x), n_in))
    rows = np.broadcast_to(np.arange(len(x))[:, None], idx.shape)
    np.add.at(matrix, (rows, np.clip(idx, 0, n_in - 1)), w)
    return matrix
