"""grid family kernels (NumPy, CPU): GridSample and AffineGrid, ONNX's semantics. GridSample
works per spatial axis: each axis gives every output position a few taps (source
index, weight, inside-X mask) after the padding mode, and the taps of all axes combine
as an outer product gathered from X in one indexing per combination."""
from __future__ import annotations

import itertools

import numpy as np

from pycaffe2.operators._resample import cubic_kernel
from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference.grid import affine_grid_shape, affine_grid_theta_shape, grid_sample_shape


def _reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """x reflected at low and high until inside them (PyTorch's rule)."""
    span = high - low
    if span <= 0:
        return np.full(x.shape, low)
    below, above = x < low, x > high
    d = np.where(below, low - x, x - high)
    n = np.floor(d / span)
    r = d - n * span
    even = n % 2 == 0
    inside_low, inside_high = low + r, high - r
    return np.where(below, np.where(even, inside_low, inside_high),
                    np.where(above, np.where(even, inside_high, inside_low), x))


def _fetch(i: np.ndarray, size: int, bounds, padding_mode: str):
    """(index into X, inside mask) of integer taps i along an axis of `size`."""
    if padding_mode == "zeros":
        return np.clip(i, 0, size - 1), (i >= 0) & (i < size)
    if padding_mode == "border":
        return np.clip(i, 0, size - 1), None
    return np.clip(np.trunc(_reflect(i.astype(np.float64), *bounds)).astype(np.int64), 0, size - 1), None


def _axis_taps(g: np.ndarray, size: int, mode: str, padding_mode: str, align_corners: bool):
    """[(index, weight, inside mask)] per tap along one spatial axis."""
    x = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
    bounds = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    if mode == "nearest":
        x = np.rint(x)
    if padding_mode == "border":
        x = np.where((x < bounds[0]) | (x > bounds[1]), np.clip(x, 0, size - 1), x)
    elif padding_mode == "reflection":
        x = _reflect(x, *bounds)
    if mode == "nearest":
        index, inside = _fetch(np.trunc(x).astype(np.int64), size, bounds, padding_mode)
        return [(index, np.ones(x.shape), inside)]
    base = np.floor(x)
    t = x - base
    offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
    taps = []
    for o in offsets:
        w = 1 - np.abs(o - t) if mode == "linear" else cubic_kernel(o - t, -0.75)
        index, inside = _fetch(base.astype(np.int64) + o, size, bounds, padding_mode)
        taps.append((index, w, inside))
    return taps


@register_cpu("GridSample")
def grid_sample(x, grid, *, mode, padding_mode, align_corners):
    shape = grid_sample_shape(x.shape, grid.shape, x.dtype.name)
    nd = x.ndim - 2
    g = grid.astype(np.float64)
    per_axis = [_axis_taps(g[..., nd - 1 - a], x.shape[2 + a], mode, padding_mode, align_corners)
                for a in range(nd)]
    n_index = np.arange(x.shape[0]).reshape((-1,) + (1,) * nd)
    y = np.zeros(shape[:1] + shape[2:] + shape[1:2])  # [N, out..., C] while summing
    for combo in itertools.product(*per_axis):
        weight = np.ones(g.shape[:-1])
        for _, w, inside in combo:
            weight = weight * (w if inside is None else np.where(inside, w, 0.0))
        values = x[(n_index, slice(None)) + tuple(index for index, _, _ in combo)]  # [N, out..., C]
        y += values * weight[..., None]
    return np.moveaxis(y, -1, 1).astype(x.dtype)


def _grid_points(size, align_corners) -> np.ndarray:
    """[spatial..., r + 1]: each output position's (x, y[, z], 1), normalised."""
    axes = []
    for n in size[2:]:
        if align_corners:
            axes.append(np.linspace(-1, 1, n) if n > 1 else np.zeros(n))
        else:
            axes.append((2 * np.arange(n) + 1) / n - 1)
    mesh = np.meshgrid(*axes, indexing="ij")  # D, H, W order
    return np.stack([*mesh[::-1], np.ones(tuple(size[2:]))], axis=-1)


@register_cpu("AffineGrid")
def affine_grid(theta, *, size, align_corners):
    shape = affine_grid_shape(theta.shape, size)
    grid = np.einsum("...k,njk->n...j", _grid_points(size, align_corners), theta.astype(np.float64))
    return grid.reshape(shape).astype(theta.dtype)


gradient_op("AffineGrid", "GO0")


@register_cpu("AffineGridGradient")
def affine_grid_gradient(dgrid, *, size, align_corners):
    shape = affine_grid_theta_shape(dgrid.shape)
    affine_grid_shape(shape, size)
    points = _grid_points(size, align_corners).reshape(-1, shape[2])
    dtheta = np.einsum("npj,pk->njk", dgrid.reshape(shape[0], -1, shape[1]).astype(np.float64), points)
    return dtheta.astype(dgrid.dtype)
