"""Locally connected kernels (NumPy): LC (and LC1D/LC2D/LC3D) and their gradient op.

Everything runs channels-first (NHWC images and filters are viewed as NCHW).
The patches of X are a sliding_window_view of the padded input, copied once as
[out positions, group, C/group * prod(kernel), N]; the filter, one per output
position, is [out positions, group, M/group, C/group * prod(kernel)], so Y is one
batched matmul over positions and groups. The gradients are the two other
products, dX adding the patch gradients back over the kernel offsets (col2im).
Window and every shape check come from the schema's inference.locally_connected.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators._conv_pool import (
    channels_back,
    channels_first,
    inner,
    offset_slices,
    padded_shape,
    register_factory,
    windows,
)
from pycaffe2.operators.conv import conv_maker
from pycaffe2.operators.registry import register_gradient
from pycaffe2.schema.inference.conv import Window, check_dy, check_gradient_outputs, image_shape
from pycaffe2.schema.inference.locally_connected import check_lc_bias, lc_window


def _filter_first(w: np.ndarray, order: str, nd: int) -> np.ndarray:
    """The filter as [out..., M, C/group, kernel...] (a view)."""
    return w if order == "NCHW" else np.moveaxis(w, -1, nd + 1)


def _filter_back(w: np.ndarray, order: str, nd: int) -> np.ndarray:
    return np.ascontiguousarray(w if order == "NCHW" else np.moveaxis(w, nd + 1, -1))


def _patches(x: np.ndarray, g: Window, group: int) -> np.ndarray:
    """[O, group, C/group * prod(kernel), N] from channels-first X [N, C, spatial...]."""
    nd = len(g.kernel)
    spatial = tuple(range(2, 2 + nd))
    view = windows(x, g)  # [N, C, out..., kernel...]
    view = view.transpose((*spatial, 1, *range(2 + nd, 2 + 2 * nd), 0))  # [out..., C, kernel..., N]
    rows = x.shape[1] // group * math.prod(g.kernel)
    return np.ascontiguousarray(view).reshape(math.prod(g.out), group, rows, x.shape[0])


def _filter_matrices(wc: np.ndarray, g: Window, group: int) -> np.ndarray:
    """[O, group, M/group, C/group * prod(kernel)] from the channels-first filter."""
    nd = len(g.kernel)
    m = wc.shape[nd]
    return wc.reshape(math.prod(g.out), group, m // group, -1)


def _output_major(dy: np.ndarray, group: int) -> np.ndarray:
    """[O, group, M/group, N] from channels-first dY [N, M, out...]."""
    n, m = dy.shape[:2]
    moved = np.moveaxis(dy.reshape(n, m, -1), (0, 1), (-1, -2))  # [O, M, N]
    return np.ascontiguousarray(moved).reshape(moved.shape[0], group, m // group, n)


def _setup(args, x, w):
    g, m = lc_window(args, x.shape, w.shape)
    nd = len(g.kernel)
    return channels_first(x, args["order"]), _filter_first(w, args["order"], nd), g, m


@register_factory("LC")
def lc(**args):
    def run(x, w, bias=None):
        xc, wc, g, m = _setup(args, x, w)
        if bias is not None:
            check_lc_bias(bias.shape, g, m)
        group = args["group"]
        y = np.matmul(_filter_matrices(wc, g, group), _patches(xc, g, group))  # [O, group, M/group, N]
        y = y.reshape(math.prod(g.out), m, x.shape[0])
        if bias is not None:
            y = y + bias.reshape(-1, m, 1)
        y = np.moveaxis(y, (-1, -2), (0, 1)).reshape((x.shape[0], m) + g.out)
        return channels_back(y.astype(x.dtype, copy=False), args["order"])
    return run


# Caffe2's maker is Conv's; its LC2D gets LC2DGradient, the alias of the LCGradient made here.
register_gradient("LC")(conv_maker("LCGradient"))


def _col2im(dp: np.ndarray, shape, g: Window) -> np.ndarray:
    """The adjoint of _patches: X's gradient [N, C, spatial...] of `shape` from
    patch gradients [O, group, C/group * prod(kernel), N]."""
    n, c = shape[:2]
    columns = np.moveaxis(dp.reshape(math.prod(g.out), c * math.prod(g.kernel), n), 0, -1)
    columns = columns.reshape((c,) + g.kernel + (n,) + g.out)
    out = np.zeros((c, n) + padded_shape(shape, g)[2:], dp.dtype)
    for offset in np.ndindex(*g.kernel):
        out[offset_slices(g, offset)] += columns[(slice(None),) + offset]
    return np.moveaxis(out[inner(shape, g)], 0, 1)


@register_factory("LCGradient")
def lc_gradient(*, num_outputs, **args):
    def run(x, w, dy):
        xc, wc, g, m = _setup(args, x, w)
        group, order, nd = args["group"], args["order"], len(g.kernel)
        check_dy(dy.shape, image_shape(x.shape[0], m, g.out, order))
        check_gradient_outputs(args["no_bias"], num_outputs)
        dym = _output_major(channels_first(dy, order), group)
        patches = _patches(xc, g, group)
        dfilter = np.matmul(dym, patches.swapaxes(-1, -2)).reshape(wc.shape)
        outputs = [_filter_back(dfilter.astype(w.dtype, copy=False), order, nd)]
        if not args["no_bias"]:
            outputs.append(dym.sum(axis=-1).reshape(g.out + (m,)).astype(dy.dtype, copy=False))
        if num_outputs > len(outputs):
            dp = np.matmul(_filter_matrices(wc, g, group).swapaxes(-1, -2), dym)
            dx = _col2im(dp, xc.shape, g)
            outputs.append(channels_back(dx.astype(x.dtype, copy=False), order))
        return tuple(outputs)
    return run
