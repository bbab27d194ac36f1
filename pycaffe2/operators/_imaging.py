"""Pixel work of ImageInput (not a family: load_kernels skips it): decoding,
colour conversion and resizing of uint8 HWC images in Caffe2's BGR order, done
in NumPy where Caffe2 called OpenCV.

resize_area follows OpenCV's cv::resize with INTER_AREA, which Caffe2's
ImageInput uses (not INTER_LINEAR):
- when neither side grows, each output pixel is the mean of the source area it
  covers (source pixel s has weight overlap([s, s+1), [d*r, (d+1)*r)) / r with
  r = source size / output size);
- when a side grows, OpenCV blends two neighbours per axis with its area-mode
  coefficients: s = floor(d*r), f = (d+1) - (s+1)/r, f = 0 if f <= 0 else
  frac(f), clamped at the last source pixel (mostly copies, blending only
  where an output pixel straddles a source edge), on both axes.
The sums are exact here and rounded half to even to uint8 at the end; OpenCV
rounds its fixed-point sums on the way, so a pixel may differ from OpenCV's by 1.
"""
from __future__ import annotations

import io
import math

import numpy as np

# OpenCV's 8-bit BGR -> gray: 0.114 B + 0.587 G + 0.299 R in 14-bit fixed point, rounded.
_GRAY_WEIGHTS = np.array([1868, 9617, 4899], dtype=np.int64)


def bgr_to_gray(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] BGR uint8 -> [H, W, 1] gray uint8."""
    gray = (image.astype(np.int64) @ _GRAY_WEIGHTS + (1 << 13)) >> 14
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


def _area_weights(size: int, out: int) -> np.ndarray:
    """[out, size] weights of a shrinking (or equal) axis: each output pixel's share of each source pixel."""
    ratio = size / out
    lo = np.arange(out)[:, None] * ratio
    src = np.arange(size)[None, :]
    overlap = np.minimum(src + 1, lo + ratio) - np.maximum(src, lo)
    return np.clip(overlap, 0, None) / ratio


def _area_linear_weights(size: int, out: int) -> np.ndarray:
    """[out, size] weights of OpenCV's area-mode linear blend (used when some side grows)."""
    ratio, inverse = size / out, out / size
    weights = np.zeros((out, size))
    for d in range(out):
        s = math.floor(d * ratio)
        f = (d + 1) - (s + 1) * inverse
        f = 0.0 if f <= 0 else f - math.floor(f)
        if s >= size - 1:
            s, f = size - 1, 0.0
        weights[d, s] += 1.0 - f
        if f:
            weights[d, s + 1] += f
    return weights


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, C] uint8 resized to [height, width, C] as OpenCV's INTER_AREA (see the module doc)."""
    h, w = image.shape[:2]
    shrinking = height <= h and width <= w
    make = _area_weights if shrinking else _area_linear_weights
    rows, cols = make(h, height), make(w, width)
    out = np.einsum("yh,hwc,xw->yxc", rows, image.astype(np.float64), cols, optimize=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


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
