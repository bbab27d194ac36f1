"""Inference rules of the conv family, the window arithmetic it shares with pooling,
and the shape checks its kernels call.

`window` reads kernel, stride, dilation and padding from any of Caffe2's
spellings (one value for every spatial axis, a 2-D `_h`/`_w` pair, or a
list), applies `legacy_pad` and returns the resolved per-axis `Window` with
the output size; `transposed_window` does the same for ConvTranspose. Both
take the op's args as a dict (an OpView's `args`, or a kernel factory's
keyword args) and raise ShapeError naming the args and X's shape. The
checks below take plain shapes, so the rules here (with TensorInfo shapes)
and the CPU and CUDA kernels (with their arrays' shapes) refuse the same
inputs in the same words.
"""
from __future__ import annotations

from typing import NamedTuple

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

NOTSET, VALID, SAME, CAFFE_LEGACY_POOLING = 0, 1, 2, 3
LEGACY_NAMES = {VALID: "VALID", SAME: "SAME", CAFFE_LEGACY_POOLING: "Caffe's ceil-mode pooling"}


class Window(NamedTuple):
    """Per spatial axis: kernel, stride, dilation, padding before and after, output size."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    head: tuple[int, ...]
    tail: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def dilated(self) -> tuple[int, ...]:
        """The extent of each kernel on the input: dilation * (kernel - 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


def spatial_shape(shape, order: str) -> tuple[int, ...]:
    """The spatial dims of an image (or filter) shape in `order`."""
    return tuple(shape[2:]) if order == "NCHW" else tuple(shape[1:-1])


def channel_axis(rank: int, order: str) -> int:
    return 1 if order == "NCHW" else rank - 1


def image_shape(n: int, channels: int, spatial, order: str) -> tuple[int, ...]:
    """[N, C, spatial...] or [N, spatial..., C]."""
    return (n, channels, *spatial) if order == "NCHW" else (n, *spatial, channels)


def _spatial(x_shape, order: str) -> tuple[int, ...]:
    if len(x_shape) < 3:
        where = "[N, C, spatial...]" if order == "NCHW" else "[N, spatial..., C]"
        raise ShapeError(f"X {list(x_shape)} must be {where} with at least one spatial dim")
    return spatial_shape(x_shape, order)


def _only_2d(names, values, nd: int) -> None:
    if None in values:
        raise ShapeError(f"give all of {', '.join(names)}, or none")
    if nd != 2:
        raise ShapeError(f"{'/'.join(names)} are for 2-D ops, but X has {nd} spatial dims")


def _agreed(spellings: dict):
    """The one value the given spellings agree on (None when none is given)."""
    values = set(spellings.values())
    if len(values) > 1:
        given = ", ".join(f"{name} {list(value)}" for name, value in spellings.items())
        raise ShapeError(f"the args disagree: {given}")
    return values.pop() if values else None


def _per_axis(args: dict, name: str, nd: int):
    """`name` (kernel, stride, dilation, adj) per spatial axis from its spellings, or None."""
    spellings = {}
    if args.get(name) is not None:
        spellings[name] = (args[name],) * nd
    pair = (f"{name}_h", f"{name}_w")
    if any(args.get(p) is not None for p in pair):
        values = tuple(args.get(p) for p in pair)
        _only_2d(pair, values, nd)
        spellings["/".join(pair)] = values
    if args.get(name + "s") is not None:
        values = tuple(args[name + "s"])
        if len(values) != nd:
            raise ShapeError(f"{name}s {list(values)} has {len(values)} values but X has "
                             f"{nd} spatial dims")
        spellings[name + "s"] = values
    return _agreed(spellings)


def _pads(args: dict, nd: int):
    """Padding as (heads..., tails...) from pad, pad_t/pad_l/pad_b/pad_r or pads; None if not given."""
    spellings = {}
    if args.get("pad") is not None:
        spellings["pad"] = (args["pad"],) * (2 * nd)
    sides = ("pad_t", "pad_l", "pad_b", "pad_r")
    if any(args.get(s) is not None for s in sides):
        values = tuple(args.get(s) for s in sides)
        _only_2d(sides, values, nd)
        spellings["/".join(sides)] = values
    if args.get("pads") is not None:
        values = tuple(args["pads"])
        if len(values) != 2 * nd:
            raise ShapeError(f"pads {list(values)} needs {2 * nd} values ([heads..., tails...]) "
                             f"for {nd} spatial dims")
        spellings["pads"] = values
    return _agreed(spellings)


def _kernel(args: dict, spatial, from_filter):
    """The kernel: the filter's spatial dims (convolutions) or the args (pooling)."""
    given = spatial if args.get("global_pooling") else _per_axis(args, "kernel", len(spatial))
    if from_filter is not None:
        if given is not None and tuple(given) != tuple(from_filter):
            raise ShapeError(f"the kernel args give {list(given)} but the filter's spatial "
                             f"dims are {list(from_filter)}")
        given = from_filter
    if given is None:
        raise ShapeError("no kernel size: give kernel, kernel_h/kernel_w or kernels "
                         "(or global_pooling=1)")
    if min(given) < 1:
        raise ShapeError(f"kernel {list(given)} must be positive")
    return tuple(given)


def _legacy_pads(args: dict, nd: int):
    """(legacy_pad, pads); VALID and SAME compute their own padding, so pads may not be given."""
    legacy = args.get("legacy_pad") or NOTSET
    pads = _pads(args, nd)
    if legacy in (VALID, SAME) and pads is not None:
        raise ShapeError(f"legacy_pad {legacy} ({LEGACY_NAMES[legacy]}) computes the padding "
                         "itself; do not also give pad/pads")
    return legacy, pads or (0,) * (2 * nd)


def _output_size(x_shape, axis, size, dilated, stride, head, tail, legacy):
    """(output size, head pad, tail pad) along one spatial axis."""
    if legacy == VALID:
        head = tail = 0
    elif legacy == SAME:  # ceil(size / stride) outputs; an odd total pad puts the extra at the tail
        need = max(0, (-(-size // stride) - 1) * stride + dilated - size)
        head, tail = need // 2, need - need // 2
    elif legacy == CAFFE_LEGACY_POOLING:
        tail = head  # Caffe pads both ends by the head pad, then enlarges the tail below
    padded = size + head + tail
    if padded < dilated:
        raise ShapeError(f"the kernel (extent {dilated}) is larger than X {list(x_shape)} along "
                         f"spatial axis {axis}: {size} + pads {head} + {tail} = {padded}")
    out = (padded - dilated) // stride + 1
    if legacy == CAFFE_LEGACY_POOLING:
        # Caffe rounds the output size up, but its last window must start inside X or the head pad.
        ceil_out = -(-(padded - dilated) // stride) + 1
        if head > 0 and (ceil_out - 1) * stride >= size + head:
            ceil_out -= 1
        ceil_out = max(ceil_out, out)
        tail, out = tail + stride * (ceil_out - out), ceil_out
    return out, head, tail


def window(args: dict, x_shape, kernel=None) -> Window:
    """The window of Conv or a pooling op on X of `x_shape`; `kernel` is the
    filter's spatial dims (None for pooling, whose kernel comes from the args)."""
    spatial = _spatial(x_shape, args["order"])
    nd = len(spatial)
    kernel = _kernel(args, spatial, kernel)
    stride = _per_axis(args, "stride", nd) or (1,) * nd
    dilation = _per_axis(args, "dilation", nd) or (1,) * nd
    legacy, pads = _legacy_pads(args, nd)
    sizes = [_output_size(x_shape, a, spatial[a], dilation[a] * (kernel[a] - 1) + 1, stride[a],
                          pads[a], pads[nd + a], legacy) for a in range(nd)]
    out, head, tail = zip(*sizes)
    return Window(kernel, stride, dilation, head, tail, out)


def transposed_window(args: dict, x_shape, kernel) -> Window:
    """The window of ConvTranspose: `out` is the size of Y, and the Window read
    as a Conv's maps Y (padded by head/tail) back onto X."""
    spatial = _spatial(x_shape, args["order"])
    nd = len(spatial)
    kernel = _kernel({**args, "global_pooling": 0}, spatial, kernel)
    stride = _per_axis(args, "stride", nd) or (1,) * nd
    dilation = _per_axis(args, "dilation", nd) or (1,) * nd
    adj = _per_axis(args, "adj", nd) or (0,) * nd
    if any(a > s for a, s in zip(adj, stride)):
        raise ShapeError(f"adj {list(adj)} may not exceed stride {list(stride)}")
    legacy, pads = _legacy_pads(args, nd)
    if legacy == CAFFE_LEGACY_POOLING:
        raise ShapeError(f"legacy_pad 3 ({LEGACY_NAMES[legacy]}) is for Conv and pooling only")
    head, tail = pads[:nd], pads[nd:]
    out = tuple((size - 1) * s + d * (k - 1) + 1 + a - h - t
                for size, k, s, d, a, h, t in zip(spatial, kernel, stride, dilation, adj, head, tail))
    if min(out) < 1:
        raise ShapeError(f"pads {list(pads)} leave an empty output {list(out)} for X "
                         f"{list(x_shape)}")
    return Window(kernel, stride, dilation, head, tail, out)


def filter_channels(x_shape, w_shape, order: str, group: int, transposed: bool):
    """(kernel, M) from the filter, checking its rank and channels against X."""
    _spatial(x_shape, order)
    if len(w_shape) != len(x_shape):
        raise ShapeError(f"filter {list(w_shape)} must have X's rank {len(x_shape)} "
                         f"(X {list(x_shape)})")
    c = x_shape[channel_axis(len(x_shape), order)]
    inner = w_shape[channel_axis(len(w_shape), order)]
    if c % group:
        raise ShapeError(f"group {group} does not divide X's {c} channels (X {list(x_shape)})")
    if transposed:
        layout = "[C, M/group, kernel...]" if order == "NCHW" else "[C, kernel..., M/group]"
        if w_shape[0] != c:
            raise ShapeError(f"X {list(x_shape)} has {c} channels but filter {list(w_shape)} "
                             f"({layout}) has {w_shape[0]}")
        return spatial_shape(w_shape, order), inner * group
    layout = "[M, C/group, kernel...]" if order == "NCHW" else "[M, kernel..., C/group]"
    if inner * group != c:
        raise ShapeError(f"X {list(x_shape)} has {c} channels but filter {list(w_shape)} "
                         f"({layout}) takes {inner} per group x group {group} = {inner * group}")
    if w_shape[0] % group:
        raise ShapeError(f"group {group} does not divide the filter's {w_shape[0]} output "
                         f"channels (filter {list(w_shape)})")
    return spatial_shape(w_shape, order), w_shape[0]


def conv_window(args: dict, x_shape, w_shape, transposed: bool) -> tuple[Window, int]:
    """(window, M output channels) of Conv or ConvTranspose, the filter checked against X."""
    kernel, m = filter_channels(x_shape, w_shape, args["order"], args["group"], transposed)
    return (transposed_window if transposed else window)(args, x_shape, kernel), m


def check_bias(bias_shape, w_shape, m: int) -> None:
    if tuple(bias_shape) != (m,):
        raise ShapeError(f"bias is {list(bias_shape)} but the filter {list(w_shape)} gives "
                         f"M = {m} output channels")


def check_dy(dy_shape, y_shape) -> None:
    """A gradient op's dY must have the shape of its forward op's Y."""
    if tuple(dy_shape) != tuple(y_shape):
        raise ShapeError(f"dY is {list(dy_shape)} but Y is {list(y_shape)}")


def check_gradient_outputs(no_bias: bool, num_outputs: int) -> None:
    if no_bias and num_outputs > 2:
        raise ShapeError(f"with no_bias=1 the outputs are dfilter and dX, got {num_outputs}")


def _output_channels(op: OpView, w, transposed: bool):
    if w is None or len(w.shape) < 2:
        return None
    if not transposed:
        return w.shape[0]
    return w.shape[channel_axis(len(w.shape), op.arg("order"))] * op.arg("group")


def _conv_output(op: OpView, inputs: list, transposed: bool):
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    if x is None or w is None:
        m = _output_channels(op, w, transposed)
        if bias is not None and m is not None:
            check_bias(bias.shape, w.shape, m)
        return None
    geometry, m = conv_window(op.args, x.shape, w.shape, transposed)
    if bias is not None:
        check_bias(bias.shape, w.shape, m)
    return TensorInfo(image_shape(x.shape[0], m, geometry.out, op.arg("order")), x.dtype)


def _conv_gradient(op: OpView, inputs: list, transposed: bool) -> list:
    """(X, filter, dY) -> dfilter, dbias (unless no_bias), dX."""
    x, w, grad = inputs
    check_gradient_outputs(op.arg("no_bias"), op.n_outputs)
    y = _conv_output(op, [x, w], transposed)
    if y is not None and grad is not None:
        check_dy(grad.shape, y.shape)
    if op.arg("no_bias"):
        return [w, x]
    m = _output_channels(op, w, transposed)
    return [w, None if m is None else TensorInfo((m,), w.dtype), x]


@rule("conv_conv")
def conv(op: OpView, inputs: list) -> list:
    """Conv: Y [N, M, out...] (or NHWC) from the window and the filter's M."""
    return [_conv_output(op, inputs, transposed=False)]


@rule("conv_conv_gradient")
def conv_gradient(op: OpView, inputs: list) -> list:
    return _conv_gradient(op, inputs, transposed=False)


@rule("conv_conv_transpose")
def conv_transpose(op: OpView, inputs: list) -> list:
    """ConvTranspose: Y [N, M, out...] with M = filter dim 1 (NHWC: last) x group."""
    return [_conv_output(op, inputs, transposed=True)]


@rule("conv_conv_transpose_gradient")
def conv_transpose_gradient(op: OpView, inputs: list) -> list:
    return _conv_gradient(op, inputs, transposed=True)
