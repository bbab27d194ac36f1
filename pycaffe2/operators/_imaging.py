"""Pixel work of ImageInput (not a family: load_kernels skips it): decoding,
colour conversion and resizing of uint8 HWC images in Caffe2's BGR order, done
in NumPy where Caffe2 called OpenCV.

resize_area is OpenCV's cv::resize with INTER_AREA for 8-bit images, which Caffe2's
ImageInput uses (not INTER_LINEAR), with OpenCV's own arithmetic:
- when no side grows, each output pixel is the mean of the source area it covers
  (cells of weight overlap / area, as float32 sums in OpenCV's order; a whole-number
  ratio averages its blocks, 2 x 2 blocks rounding halves up);
- when a side grows, two neighbours per axis are blended with OpenCV's area-mode
  coefficients (s = floor(d * r), f = frac((d + 1) - (s + 1) / r) or 0 when that is
  not positive, r = source / output size), mostly copies that blend only where an
  output pixel straddles a source edge, in OpenCV's 11-bit fixed point.
It equals opencv-python 5.0's cv2.resize on the sizes tests/operators/test_image.py
tries (and on 1500 random sizes when it was written).
"""
from __future__ import annotations

import io
import math

import numpy as np

# OpenCV's 8-bit BGR -> gray: 0.114 B + 0.587 G + 0.299 R in 15-bit fixed point, rounded (OpenCV 4
# and later; the 14-bit weights of OpenCV 2 and 3 give at most 1 less or more).
_GRAY_WEIGHTS, _GRAY_SHIFT = np.array([3735, 19235, 9798], dtype=np.int64), 15


def bgr_to_gray(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] BGR uint8 -> [H, W, 1] gray uint8."""
    gray = (image.astype(np.int64) @ _GRAY_WEIGHTS + (1 << (_GRAY_SHIFT - 1))) >> _GRAY_SHIFT
    return gray.astype(np.uint8)[..., None]


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An [H, W, 1 or 3] image with `channels` channels (gray repeated, or BGR -> gray)."""
    if image.shape[2] == channels:
        return image
    return np.repeat(image, 3, axis=2) if channels == 3 else bgr_to_gray(image)


def decode(encoded: bytes, channels: int) -> np.ndarray:
    """An encoded image (PNG, JPEG, ... whatever Pillow reads) as [H, W, channels] uint8 BGR."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("the record holds an encoded image (a STRING tensor), and decoding it "
                         "needs Pillow: pip install pillow (raw BYTE images need nothing)") from None
    try:
        with Image.open(io.BytesIO(encoded)) as picture:
            rgb = np.asarray(picture.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 (Pillow raises many kinds for a bad file)
        raise ValueError(f"cannot decode the encoded image ({len(encoded)} bytes): {exc}") from None
    return to_channels(np.ascontiguousarray(rgb[..., ::-1]), channels)


def resized_size(height: int, width: int, target: int, warp: bool) -> tuple[int, int]:
    """Caffe2's output size: the shorter side becomes `target`, the other keeps the aspect
    ratio (computed in float32 and truncated, as Caffe2 did); warp makes both `target`."""
    if warp:
        return target, target
    if height > width:
        return int(np.float32(height) * np.float32(target) / np.float32(width)), target
    return target, int(np.float32(width) * np.float32(target) / np.float32(height))


def _area_tab(size: int, out: int) -> list[tuple[int, int, np.float32]]:
    """OpenCV's (output index, source index, float32 weight) entries of a shrinking axis, in
    its order: each output pixel's share of the source cells it covers (slivers under 1e-3
    left out)."""
    ratio = 1.0 / (out / size)
    tab = []
    for d in range(out):
        lo = d * ratio
        hi, cell = lo + ratio, min(ratio, size - lo)
        first, last = math.ceil(lo), min(math.floor(hi), size - 1)
        first = min(first, last)
        if first - lo > 1e-3:
            tab.append((d, first - 1, np.float32((first - lo) / cell)))
        tab.extend((d, s, np.float32(1.0 / cell)) for s in range(first, last))
        if hi - last > 1e-3:
            tab.append((d, last, np.float32(min(hi - last, 1.0, cell) / cell)))
    return tab


def _shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's 8-bit INTER_AREA shrink: whole-number ratios average their blocks (2 x 2
    rounding halves up, others in float32); other ratios sum weighted cells in float32,
    row by row, in OpenCV's order."""
    h, w = image.shape[:2]
    if h % height == 0 and w % width == 0:
        ky, kx = h // height, w // width
        sums = image.astype(np.int64).reshape(height, ky, width, kx, -1).sum(axis=(1, 3))
        if ky == kx == 2:
            return ((sums + 2) >> 2).astype(np.uint8)
        return np.clip(np.rint(sums.astype(np.float32) * np.float32(1 / (ky * kx))), 0, 255).astype(np.uint8)
    pixels = image.astype(np.float32)
    columns = np.zeros((h, width, image.shape[2]), dtype=np.float32)
    for d, s, alpha in _area_tab(w, width):
        columns[:, d] += pixels[:, s] * alpha
    out = np.zeros((height, width, image.shape[2]), dtype=np.float32)
    for d, s, beta in _area_tab(h, height):
        out[d] += beta * columns[s]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _area_linear_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's area-mode linear taps of a growing axis: (first source index, weight of it,
    weight of the next), the weights in 11-bit fixed point as OpenCV rounds them."""
    inverse = out / size
    ratio = 1.0 / inverse  # OpenCV's double arithmetic: floor(d * ratio) may fall just short
    first, fractions = np.zeros(out, dtype=np.int64), np.zeros(out, dtype=np.float32)
    for d in range(out):
        s = math.floor(d * ratio)
        f = float(np.float32((d + 1) - (s + 1) * inverse))  # to float before the fraction, as OpenCV
        f = 0.0 if f <= 0 else f - math.floor(f)
        first[d], fractions[d] = (size - 1, 0.0) if s >= size - 1 else (s, f)
    scale = np.float32(_COEF_SCALE)
    return first, np.rint((np.float32(1) - fractions) * scale).astype(np.int64), \
        np.rint(fractions * scale).astype(np.int64)


_COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE


def _grow(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's 8-bit linear pass with area-mode taps: a fixed-point horizontal blend, then a
    vertical one rounded as OpenCV's ((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2."""
    h, w = image.shape[:2]
    xs, x0, x1 = _area_linear_taps(w, width)
    ys, y0, y1 = _area_linear_taps(h, height)
    src = image.astype(np.int64)
    rows = src[:, xs] * x0[None, :, None] + src[:, np.minimum(xs + 1, w - 1)] * x1[None, :, None]
    top, bottom = rows[ys] >> 4, rows[np.minimum(ys + 1, h - 1)] >> 4
    out = (((y0[:, None, None] * top) >> 16) + ((y1[:, None, None] * bottom) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, C] uint8 resized to [height, width, C] as OpenCV's INTER_AREA (see the module doc)."""
    h, w = image.shape[:2]
    if height > h or width > w:
        return _grow(image, height, width)
    return _shrink(image, height, width)


# ---- Caffe2's training-time augmentations (float BGR [crop, crop, 3] images) -------------------

_GRAY_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)
# Caffe2's fixed PCA of ImageNet colours (rows: R, G, B components; eigenvalues per column).
_LIGHTING_VECTORS = np.array([[-144.7125, 183.396, 102.2295], [-148.104, -1.1475, -207.57],
                              [-148.818, -177.174, 107.1765]], dtype=np.float32)
_LIGHTING_VALUES = np.array([0.2175, 0.0188, 0.0045], dtype=np.float32)


def random_sized_crop(image: np.ndarray, crop: int, rng) -> np.ndarray | None:
    """Inception-style scale jitter: a window of 8%-100% of the area with aspect ratio in
    [3/4, 4/3] (10 tries), resized to crop x crop; None when no try fits."""
    height, width = image.shape[:2]
    for _ in range(10):
        area = math.ceil(rng.uniform(0.08, 1.0) * height * width)
        aspect = rng.uniform(3 / 4, 4 / 3)
        h, w = math.floor(math.sqrt(area / aspect)), math.floor(math.sqrt(area * aspect))
        if 1 <= h <= height and 1 <= w <= width:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            return resize_area(image[top:top + h, left:left + w], crop, crop)
    return None


def color_jitter(image: np.ndarray, saturation: float, brightness: float, contrast: float, rng) -> np.ndarray:
    """Saturation, brightness and contrast changes, each by a factor 1 + U(-r, r), in random order."""
    for step in rng.permutation(3):
        alpha = np.float32(1 + rng.uniform(-1, 1) * (saturation, brightness, contrast)[step])
        if step == 0:
            image = image * alpha + (image @ _GRAY_BGR)[..., None] * (1 - alpha)
        elif step == 1:
            image = image * alpha
        else:
            image = image * alpha + (image @ _GRAY_BGR).mean() * (1 - alpha)
    return image.astype(np.float32)


def color_lighting(image: np.ndarray, std: float, rng) -> np.ndarray:
    """AlexNet's PCA lighting noise: adds vectors @ (values * N(0, std)) (RGB) to every pixel."""
    alphas = rng.normal(0.0, std, 3).astype(np.float32)
    delta_rgb = _LIGHTING_VECTORS @ (_LIGHTING_VALUES * alphas)
    return (image + delta_rgb[::-1]).astype(np.float32)
