"""grid family (GridSample, AffineGrid): each op against loop references written here
from ONNX's definitions (PyTorch's grid_sample and affine_grid), shape inference
against the kernels, and errors (one message from inference and the kernel)."""
import itertools

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer


def randn(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def fold(v, lo, hi):
    """v mirrored at lo and hi until inside them."""
    if hi <= lo:
        return lo
    while v < lo or v > hi:
        v = 2 * lo - v if v < lo else 2 * hi - v
    return v


def keys(t, a=-0.75):
    t = abs(t)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a if t < 2 else 0.0


def grid_sample_reference(x, grid, mode="linear", padding_mode="zeros", align_corners=0):
    n_img, c = x.shape[:2]
    dims = x.shape[2:]
    nd = len(dims)
    y = np.zeros((n_img, c) + grid.shape[1:-1])
    for n in range(n_img):
        for out in itertools.product(*map(range, grid.shape[1:-1])):
            coords, bounds = [], []
            for a, size in enumerate(dims):
                g = float(grid[(n, *out, nd - 1 - a)])
                lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
                v = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
                if mode == "nearest":
                    v = float(np.round(v))  # half to even
                if padding_mode == "border" and not lo <= v <= hi:
                    v = min(max(v, 0.0), size - 1.0)
                elif padding_mode == "reflection" and not lo <= v <= hi:
                    v = fold(v, lo, hi)
                coords.append(v)
                bounds.append((lo, hi))

            def pixel(cell, n=n, bounds=bounds):
                fixed = []
                for a, (i, size) in enumerate(zip(cell, dims)):
                    if padding_mode == "zeros" and not 0 <= i < size:
                        return np.zeros(c)
                    if padding_mode == "reflection":
                        i = int(fold(float(i), *bounds[a]))
                    fixed.append(min(max(i, 0), size - 1))
                return x[(n, slice(None), *fixed)]

            if mode == "nearest":
                y[(n, slice(None), *out)] = pixel([int(v) for v in coords])
                continue
            offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
            for taps in itertools.product(offsets, repeat=nd):
                weight, cell = 1.0, []
                for v, o in zip(coords, taps):
                    i = int(np.floor(v)) + o
                    weight *= (1 - abs(v - i)) if mode == "linear" else keys(v - i)
                    cell.append(i)
                y[(n, slice(None), *out)] += weight * pixel(cell)
    return y


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d(mode, padding_mode, align_corners):
    x = randn((2, 3, 4, 5), 1)
    grid = np.random.default_rng(2).uniform(-1.6, 1.6, (2, 3, 4, 2)).astype(np.float32)
    args = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    check_reference("GridSample", [x, grid], grid_sample_reference, args, atol=1e-4)


@pytest.mark.parametrize("mode, padding_mode", [("linear", "zeros"), ("nearest", "reflection"), ("linear", "border")])
def test_grid_sample_1d_and_3d(mode, padding_mode):
    args = {"mode": mode, "padding_mode": padding_mode}
    x, grid = randn((1, 2, 5), 3), np.random.default_rng(4).uniform(-1.3, 1.3, (1, 4, 1)).astype(np.float32)
    check_reference("GridSample", [x, grid], grid_sample_reference, args)
    x, grid = randn((1, 2, 3, 4, 3), 5), np.random.default_rng(6).uniform(-1.3, 1.3, (1, 2, 2, 3, 3)).astype(np.float32)
    check_reference("GridSample", [x, grid], grid_sample_reference, args)


def away_from_kinks(grid, sizes, align_corners, margin=0.02):
    """The grid nudged so no unnormalised coordinate sits within `margin` of an integer or
    a half (where the weights' slopes, nearest rounding or the reflection change)."""
    nd = len(sizes)
    out = grid.copy()
    for a, size in enumerate(sizes):
        g = out[..., nd - 1 - a]
        x = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
        frac = np.mod(2 * x, 1.0)
        x = np.where(np.minimum(frac, 1 - frac) < margin, x + 2 * margin, x)
        out[..., nd - 1 - a] = 2 * x / (size - 1) - 1 if align_corners else (2 * x + 1) / size - 1
    return out


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_gradient(mode, padding_mode, align_corners):
    x = randn((2, 2, 4, 5), 13).astype(np.float64)
    grid = np.random.default_rng(14).uniform(-1.4, 1.4, (2, 3, 2, 2))
    grid = away_from_kinks(grid, (4, 5), align_corners)
    args = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    (y,) = run_op("GridSample", [x, grid], args)
    dy = randn(y.shape, 15).astype(np.float64)
    check_gradient_op("GridSample", [x, grid], "GridSampleGradient", [x, grid, dy], {0: 0, 1: 1}, [dy], args,
                      atol=1e-4, rtol=1e-3)  # central differences of the cubic: ~1e-5 off


def test_grid_sample_gradient_3d():
    x = randn((1, 2, 3, 4, 3), 16).astype(np.float64)
    grid = away_from_kinks(np.random.default_rng(17).uniform(-1.2, 1.2, (1, 2, 2, 2, 3)), (3, 4, 3), 0)
    (y,) = run_op("GridSample", [x, grid])
    dy = randn(y.shape, 18).astype(np.float64)
    check_gradient_op("GridSample", [x, grid], "GridSampleGradient", [x, grid, dy], {0: 0, 1: 1}, [dy],
                      atol=1e-5, rtol=1e-4)
    grad_ops, g_input = GetGradientForOp(make_op("GridSample", ["X", "G"], ["Y"]), ["Y_grad"])
    assert [list(o.input) for o in grad_ops] == [["X", "G", "Y_grad"]] and g_input == ["X_grad", "G_grad"]


def affine_grid_reference(theta, size, align_corners=0):
    spatial = size[2:]
    nd = len(spatial)

    def normalised(i, n):
        if align_corners:
            return -1 + 2 * i / (n - 1) if n > 1 else 0.0
        return (2 * i + 1) / n - 1

    grid = np.zeros((size[0], *spatial, nd))
    for n in range(size[0]):
        for cell in itertools.product(*map(range, spatial)):
            point = [normalised(i, s) for i, s in zip(cell[::-1], spatial[::-1])] + [1.0]  # x first
            grid[(n, *cell)] = theta[n] @ np.array(point)
    return grid


@pytest.mark.parametrize("size", [[2, 3, 4, 5], [1, 2, 3, 1], [2, 1, 2, 3, 4]])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid(size, align_corners):
    nd = len(size) - 2
    theta = randn((size[0], nd, nd + 1), 7)
    check_reference("AffineGrid", [theta], affine_grid_reference, {"size": size, "align_corners": align_corners})


@pytest.mark.parametrize("size, align_corners", [([2, 3, 4, 5], 0), ([1, 2, 3, 2, 4], 1)])
def test_affine_grid_gradient(size, align_corners):
    nd = len(size) - 2
    theta = randn((size[0], nd, nd + 1), 11).astype(np.float64)
    args = {"size": size, "align_corners": align_corners}
    (grid,) = run_op("AffineGrid", [theta], args)
    dgrid = randn(grid.shape, 12).astype(np.float64)
    check_gradient_op("AffineGrid", [theta], "AffineGridGradient", [dgrid], {0: 0}, [dgrid], args, atol=1e-6, rtol=1e-6)


def test_inference_matches_the_kernels():
    x, grid = randn((2, 3, 4, 5), 8), randn((2, 6, 7, 2), 9)
    (y,) = run_op("GridSample", [x, grid])
    assert infer("GridSample", [x.shape, grid.shape]) == [TensorInfo(y.shape, "float32")]
    (g,) = run_op("AffineGrid", [randn((2, 3, 4), 10)], {"size": [2, 1, 3, 4, 5]})
    assert infer("AffineGrid", [(2, 3, 4)], size=[2, 1, 3, 4, 5]) == [TensorInfo(g.shape, "float32")]


# (op type, inputs, args, message)
ERRORS = [
    ("GridSampleGradient", lambda: [randn((1, 2, 3, 4)), randn((1, 5, 5, 2)), randn((1, 2, 5, 4))], {},
     r"dY is \[1, 2, 5, 4\] but GridSample's Y is \[1, 2, 5, 5\]"),
    ("AffineGridGradient", lambda: [randn((1, 3, 4, 3))], {"size": [1, 1, 3, 4]},
     r"dgrid \[1, 3, 4, 3\] must be \[N, H, W, 2\] or \[N, D, H, W, 3\]"),
    ("GridSample", lambda: [randn((1, 2, 3, 4)), randn((1, 5, 5, 3))], {},
     r"grid \[1, 5, 5, 3\] must be \[N, out..., 2\] for X \[1, 2, 3, 4\]"),
    ("GridSample", lambda: [randn((1, 2)), randn((1, 2))], {},
     r"X \[1, 2\] must be \[N, C, spatial...\] with 1 to 3 spatial dims"),
    ("AffineGrid", lambda: [randn((2, 2, 3))], {"size": [1, 1, 3, 3]},
     r"theta \[2, 2, 3\] must be \[1, 2, 3\] for size \[1, 1, 3, 3\]"),
    ("AffineGrid", lambda: [randn((1, 2, 3))], {"size": [1, 1, 3]},
     r"size \[1, 1, 3\] must be \[N, C, H, W\] or \[N, C, D, H, W\]"),
]


@pytest.mark.parametrize("op_type, make_inputs, args, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args)
