"""Inference rules of the pooling family (MaxPool, AveragePool, LpPool, LRN), and the shape
checks its kernels call. The window comes from conv's `window` (one geometry for
convolutions and pooling); the checks take plain shapes, so the rules here and the
CPU and CUDA kernels refuse the same inputs in the same words.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.conv import Window, channel_axis, image_shape, window


def pooled(args: dict, x_shape) -> tuple[Window, tuple]:
    """(window, Y's shape) of MaxPool or AveragePool on X of `x_shape`."""
    order = args["order"]
    g = window(args, x_shape)
    return g, image_shape(x_shape[0], x_shape[channel_axis(len(x_shape), order)], g.out, order)


def check_pooled(x_shape, expected, **given) -> None:
    """A pooling gradient op's Y and dY (`given` by name) must have the pooled shape."""
    for name, shape in given.items():
        if tuple(shape) != tuple(expected):
            raise ShapeError(f"{name} is {list(shape)} but pooling X {list(x_shape)} "
                             f"gives {list(expected)}")


def check_lp_norm(p: float) -> None:
    """LpPool takes the 1/p-th power of its sums: p must be positive."""
    if not p > 0:
        raise ShapeError(f"p is {p} but must be positive")


def check_channels(x_shape) -> None:
    """LRN sums over the channel axis: X needs one besides N."""
    if len(x_shape) < 2:
        raise ShapeError(f"X {list(x_shape)} needs a channel axis (rank 2 or more)")


def check_one_shape(x_shape, y_shape, dy_shape) -> None:
    """LRNGradient's X, Y and dY (None where unknown) must have one shape."""
    known = {tuple(s) for s in (x_shape, y_shape, dy_shape) if s is not None}
    if len(known) > 1:
        x, y, dy = (list(s) if s is not None else "unknown" for s in (x_shape, y_shape, dy_shape))
        raise ShapeError(f"X {x}, Y {y} and dY {dy} must have one shape")


@rule("pooling_pool")
def pool(op: OpView, inputs: list) -> list:
    """MaxPool / AveragePool: Y keeps N and C, spatial dims from the window."""
    x = inputs[0]
    if x is None:
        return [None]
    return [TensorInfo(pooled(op.args, x.shape)[1], x.dtype)]


@rule("pooling_pool_gradient")
def pool_gradient(op: OpView, inputs: list) -> list:
    """(X, Y, dY) -> dX like X; Y and dY must have the pooled shape."""
    x, y, grad = inputs
    if x is not None:
        shapes = {name: info.shape for name, info in (("Y", y), ("dY", grad)) if info is not None}
        check_pooled(x.shape, pooled(op.args, x.shape)[1], **shapes)
    return [x]


@rule("pooling_lp_pool")
def lp_pool(op: OpView, inputs: list) -> list:
    """LpPool: MaxPool's shapes, for a positive p."""
    check_lp_norm(op.args["p"])
    return pool(op, inputs)


@rule("pooling_lp_pool_gradient")
def lp_pool_gradient(op: OpView, inputs: list) -> list:
    check_lp_norm(op.args["p"])
    return pool_gradient(op, inputs)


@rule("pooling_lrn")
def lrn(op: OpView, inputs: list) -> list:
    """LRN: Y and the scale like X."""
    x = inputs[0]
    if x is not None:
        check_channels(x.shape)
    return [x] * op.n_outputs


@rule("pooling_lrn_gradient")
def lrn_gradient(op: OpView, inputs: list) -> list:
    """(X, Y, dY) of one shape -> dX like X."""
    x, y, grad = inputs
    check_one_shape(*(None if info is None else info.shape for info in inputs))
    if x is not None:
        check_channels(x.shape)
    return [x or y or grad]
