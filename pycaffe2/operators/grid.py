"""grid family kernels (NumPy, CPU): GridSample and AffineGrid, ONNX's semantics. GridSample
works per spatial axis: each axis gives every output position a few taps (source
index, weight, inside-X mask) after the padding mode, and the taps of all axes combine
as an outer product gathered from X in one indexing per combination."""
from __future__ import annotations

import itertools

import numpy as np

from pycaffe2.operators._resample import cubic_kernel
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference.grid import (
    affine_grid_shape,
    affine_grid_theta_shape,
    check_dy,
    grid_sample_shape,
)


def _reflect(x: np.ndarray, low: float, high: float):
    """(x reflected at low and high until inside them (PyTorch's rule), dreflected/dx)."""
    span = high - low
    if span <= 0:
        return np.full(x.shape, low), np.zeros(x.shape)
    below, above = x < low, x > high
    d = np.where(below, low - x, x - high)
    n = np.floor(d / span)
    r = d - n * span
    even = n % 2 == 0
    inside_low, inside_high = low + r, high - r
    folded = np.where(below, np.where(even, inside_low, inside_high),
                      np.where(above, np.where(even, inside_high, inside_low), x))
    return folded, np.where((below | above) & even, -1.0, 1.0)


def _fetch(i: np.ndarray, size: int, bounds, padding_mode: str):
    """(index into X, inside mask) of integer taps i along an axis of `size`."""
    if padding_mode == "zeros":
        return np.clip(i, 0, size - 1), (i >= 0) & (i < size)
    if padding_mode == "border":
        return np.clip(i, 0, size - 1), None
    return np.clip(np.trunc(_reflect(i.astype(np.float64), *bounds)[0]).astype(np.int64), 0, size - 1), None


def _kernel_slope(u: np.ndarray, mode: str) -> np.ndarray:
    """d kernel(u) / du of linear (1 - |u|) or Keys' cubic (a = -0.75)."""
    if mode == "linear":
        return -np.sign(u)
    a, t = -0.75, np.abs(u)
    near = 3 * (a + 2) * t * t - 2 * (a + 3) * t
    far = 3 * a * t * t - 10 * a * t + 8 * a
    return np.sign(u) * np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _axis_taps(g: np.ndarray, size: int, mode: str, padding_mode: str, align_corners: bool):
    """[(index, weight, inside mask, d weight / d g)] per tap along one spatial axis."""
    x = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
    dx = np.full(x.shape, (size - 1) / 2 if align_corners else size / 2)
    bounds = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    if mode == "nearest":
        x = np.rint(x)
    if padding_mode == "border":
        outside = (x < bounds[0]) | (x > bounds[1])
        x, dx = np.where(outside, np.clip(x, 0, size - 1), x), np.where(outside, 0.0, dx)
    elif padding_mode == "reflection":
        x, sign = _reflect(x, *bounds)
        dx = dx * sign
    if mode == "nearest":
        index, inside = _fetch(np.trunc(x).astype(np.int64), size, bounds, padding_mode)
        return [(index, np.ones(x.shape), inside, np.zeros(x.shape))]
    base = np.floor(x)
    t = x - base
    taps = []
    for o in (0, 1) if mode == "linear" else (-1, 0, 1, 2):
        w = 1 - np.abs(o - t) if mode == "linear" else cubic_kernel(o - t, -0.75)
        index, inside = _fetch(base.astype(np.int64) + o, size, bounds, padding_mode)
        taps.append((index, w, inside, -_kernel_slope(o - t, mode) * dx))
    return taps


def _taps_of(x, grid, mode, padding_mode, align_corners):
    """Per spatial axis of X, the taps of every output position (the grid's coordinates
    run x first, so axis a reads the grid's coordinate nd - 1 - a)."""
    nd = x.ndim - 2
    g = grid.astype(np.float64)
    return [_axis_taps(g[..., nd - 1 - a], x.shape[2 + a], mode, padding_mode, align_corners) for a in range(nd)]


def _masked(w, inside):
    return w if inside is None else np.where(inside, w, 0.0)


@register_cpu("GridSample")
def grid_sample(x, grid, *, mode, padding_mode, align_corners):
    shape = grid_sample_shape(x.shape, grid.shape, x.dtype.name)
    nd = x.ndim - 2
    n_index = np.arange(x.shape[0]).reshape((-1,) + (1,) * nd)
    y = np.zeros(shape[:1] + shape[2:] + shape[1:2])  # [N, out..., C] while summing
    for combo in itertools.product(*_taps_of(x, grid, mode, padding_mode, align_corners)):
        weight = np.prod([_masked(w, inside) for _, w, inside, _ in combo], axis=0)
        values = x[(n_index, slice(None)) + tuple(index for index, _, _, _ in combo)]  # [N, out..., C]
        y += values * weight[..., None]
    return np.moveaxis(y, -1, 1).astype(x.dtype)


@register_gradient("GridSample")
def make_grid_sample_gradient(g):
    return [g.Op("GridSampleGradient", [g.I(0), g.I(1), g.GO(0)], [g.GI(0), g.GI(1)])]


@register_cpu("GridSampleGradient")
def grid_sample_gradient(x, grid, dy, *, mode, padding_mode, align_corners):
    """dX: each dY spread over the taps it read, by their weights; dgrid: dY times the
    taps' values times the weights' slopes along each coordinate."""
    shape = grid_sample_shape(x.shape, grid.shape, x.dtype.name)
    check_dy(dy.shape, shape)
    nd = x.ndim - 2
    n_index = np.arange(x.shape[0]).reshape((-1,) + (1,) * nd)
    dyc = np.moveaxis(dy.astype(np.float64), 1, -1)  # [N, out..., C]
    dx, dgrid = np.zeros(x.shape), np.zeros(grid.shape)
    for combo in itertools.product(*_taps_of(x, grid, mode, padding_mode, align_corners)):
        weights = [_masked(w, inside) for _, w, inside, _ in combo]
        where = (n_index, slice(None)) + tuple(index for index, _, _, _ in combo)
        np.add.at(dx, where, dyc * np.prod(weights, axis=0)[..., None])
        read = np.sum(x[where] * dyc, axis=-1)  # [N, out...]
        for a, (_, _, inside, slope) in enumerate(combo):
            others = np.prod([w for b, w in enumerate(weights) if b != a], axis=0) if nd > 1 else 1.0
            dgrid[..., nd - 1 - a] += read * _masked(slope, inside) * others
    return dx.astype(dy.dtype), dgrid.astype(grid.dtype)


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
