"""Inference rules of the grid family (GridSample, AffineGrid) and the checks its
kernels share with them."""
from __future__ import annotations

from pycaffe2.files import check_alloc
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES


def grid_sample_shape(x, grid, dtype=None) -> tuple:
    """Y's shape [N, C, out...] of GridSample."""
    if dtype is not None and str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"X must be float, got {dtype}")
    nd = len(x) - 2
    if not 1 <= nd <= 3:
        raise ShapeError(f"X {list(x)} must be [N, C, spatial...] with 1 to 3 spatial dims")
    if len(grid) != nd + 2 or grid[-1] != nd or grid[0] != x[0]:
        raise ShapeError(f"grid {list(grid)} must be [N, out..., {nd}] for X {list(x)}")
    return (x[0], x[1], *grid[1:-1])


def affine_grid_shape(theta, size) -> tuple:
    """The grid's shape [N, spatial..., r] of AffineGrid."""
    nd = len(size) - 2
    if nd not in (2, 3):
        raise ShapeError(f"size {list(size)} must be [N, C, H, W] or [N, C, D, H, W]")
    if tuple(theta) != (size[0], nd, nd + 1):
        raise ShapeError(f"theta {list(theta)} must be [{size[0]}, {nd}, {nd + 1}] for size {list(size)}")
    shape = (size[0], *size[2:], nd)
    check_alloc(shape, "float64", "AffineGrid's grid")
    return shape


def check_dy(dy, y) -> None:
    if tuple(dy) != tuple(y):
        raise ShapeError(f"dY is {list(dy)} but GridSample's Y is {list(y)}")


@rule("grid_grid_sample_gradient")
def grid_sample_gradient(op: OpView, inputs: list) -> list:
    """dX like X, dgrid like the grid; dY must have Y's shape."""
    x, grid, dy = inputs
    if x is not None and grid is not None and dy is not None:
        check_dy(dy.shape, grid_sample_shape(x.shape, grid.shape, x.dtype))
    return [x, grid]


@rule("grid_grid_sample")
def grid_sample(op: OpView, inputs: list) -> list:
    x, grid = inputs
    if x is None or grid is None:
        return [None]
    return [TensorInfo(grid_sample_shape(x.shape, grid.shape, x.dtype), x.dtype)]


@rule("grid_affine_grid")
def affine_grid(op: OpView, inputs: list) -> list:
    theta = inputs[0]
    if theta is None:
        return [None]
    return [TensorInfo(affine_grid_shape(theta.shape, op.arg("size")), theta.dtype)]


def affine_grid_theta_shape(dgrid) -> tuple:
    """dtheta's shape [N, r, r + 1] from dgrid [N, spatial..., r]."""
    nd = len(dgrid) - 2
    if nd not in (2, 3) or dgrid[-1] != nd:
        raise ShapeError(f"dgrid {list(dgrid)} must be [N, H, W, 2] or [N, D, H, W, 3]")
    return (dgrid[0], nd, nd + 1)


@rule("grid_affine_grid_gradient")
def affine_grid_gradient(op: OpView, inputs: list) -> list:
    dgrid = inputs[0]
    if dgrid is None:
        return [None]
    affine_grid_shape(affine_grid_theta_shape(dgrid.shape), op.arg("size"))
    return [TensorInfo(affine_grid_theta_shape(dgrid.shape), dgrid.dtype)]
