"""Inference rules and shape checks of the locally_connected family (LC and its
gradient). The window is Conv's (`inference.conv.window`, every spelling of
kernel, stride, dilation, pads and legacy_pad); the filter carries the output
positions first: [out..., M, C/group, kernel...] (NCHW) or
[out..., M, kernel..., C/group] (NHWC), the bias [out..., M]."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.conv import (
    Window,
    channel_axis,
    check_dy,
    check_gradient_outputs,
    image_shape,
    window,
)


def _layout(order: str) -> str:
    return "[out..., M, C/group, kernel...]" if order == "NCHW" else "[out..., M, kernel..., C/group]"


def lc_window(args: dict, x_shape, w_shape) -> tuple[Window, int]:
    """(window, M) of LC on X of `x_shape` with a filter of `w_shape`, the filter
    checked against X and the window's output size."""
    order, group = args["order"], args["group"]
    rank = len(x_shape)
    if rank < 3:
        where = "[N, C, spatial...]" if order == "NCHW" else "[N, spatial..., C]"
        raise ShapeError(f"X {list(x_shape)} must be {where} with at least one spatial dim")
    nd = rank - 2
    if len(w_shape) != 2 * nd + 2:
        raise ShapeError(f"filter {list(w_shape)} must be {_layout(order)}: rank {2 * nd + 2} "
                         f"for X {list(x_shape)} with {nd} spatial dims")
    m = w_shape[nd]
    if order == "NCHW":
        inner, kernel = w_shape[nd + 1], tuple(w_shape[nd + 2:])
    else:
        inner, kernel = w_shape[-1], tuple(w_shape[nd + 1:-1])
    c = x_shape[channel_axis(rank, order)]
    if c % group or inner * group != c:
        raise ShapeError(f"X {list(x_shape)} has {c} channels but filter {list(w_shape)} "
                         f"({_layout(order)}) takes {inner} per group x group {group} = {inner * group}")
    if m % group:
        raise ShapeError(f"group {group} does not divide the filter's M = {m} output channels "
                         f"(filter {list(w_shape)})")
    g = window(args, x_shape, kernel)
    if tuple(w_shape[:nd]) != tuple(g.out):
        raise ShapeError(f"filter {list(w_shape)} ({_layout(order)}) is for output positions "
                         f"{list(w_shape[:nd])} but the window gives {list(g.out)} on X {list(x_shape)}")
    return g, m


def check_lc_bias(bias_shape, g: Window, m: int) -> None:
    if tuple(bias_shape) != (*g.out, m):
        raise ShapeError(f"bias is {list(bias_shape)} but must be [out..., M] = {[*g.out, m]}")


def _output(op: OpView, x, w, bias):
    if x is None or w is None:
        return None, None
    g, m = lc_window(op.args, x.shape, w.shape)
    if bias is not None:
        check_lc_bias(bias.shape, g, m)
    return g, TensorInfo(image_shape(x.shape[0], m, g.out, op.arg("order")), x.dtype)


@rule("locally_connected_lc")
def lc(op: OpView, inputs: list) -> list:
    """LC: Y [N, M, out...] (or NHWC) from Conv's window and the filter's M."""
    bias = inputs[2] if len(inputs) > 2 else None
    return [_output(op, inputs[0], inputs[1], bias)[1]]


@rule("locally_connected_lc_gradient")
def lc_gradient(op: OpView, inputs: list) -> list:
    """(X, filter, dY) -> dfilter, dbias [out..., M] (unless no_bias), dX."""
    x, w, grad = inputs
    check_gradient_outputs(op.arg("no_bias"), op.n_outputs)
    _, y = _output(op, x, w, None)
    if y is not None and grad is not None:
        check_dy(grad.shape, y.shape)
    if op.arg("no_bias"):
        return [w, x]
    nd = None if w is None else (len(w.shape) - 2) // 2
    dbias = None if w is None else TensorInfo((*w.shape[:nd], w.shape[nd]), w.dtype)
    return [w, dbias, x]
