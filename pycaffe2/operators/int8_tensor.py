"""Caffe2's Int8 ops that move codes (Int8Reshape, Int8Flatten, Int8Concat,
Int8Transpose, Int8ChannelShuffle, Int8Slice, Int8ResizeNearest): the float kernels
of tensor.py and indexing.py run on the uint8 data, and Y keeps X's quantization."""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import ShapeError
from pycaffe2.operators.indexing import slice_
from pycaffe2.operators.int8 import int8_input
from pycaffe2.operators.int8_nn import kept_quantization
from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.tensor import channel_shuffle, flatten, reshape, transpose
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.schema.inference.int8_tensor import (
    concat_shape,
    int8_concat_axis,
    resized_shape,
    slice_bounds,
)
from pycaffe2.schema.inference.tensor import concat_axis


def _like(x: Int8Tensor, data: np.ndarray, y_scale, y_zero_point) -> Int8Tensor:
    scale, zero_point = kept_quantization(x, y_scale, y_zero_point)
    return Int8Tensor(np.array(data, dtype=np.uint8, copy=True), scale, zero_point)


@register_cpu("Int8Reshape")
def int8_reshape(data, new_shape=None, *, shape, Y_scale, Y_zero_point, num_outputs):
    x = int8_input(data, "data")
    reshaped, old_shape = reshape(x.data, new_shape, shape=shape, num_outputs=num_outputs)
    return _like(x, reshaped, Y_scale, Y_zero_point), old_shape


@register_cpu("Int8Flatten")
def int8_flatten(x, *, axis, Y_scale, Y_zero_point):
    x = int8_input(x, "input")
    return _like(x, flatten(x.data, axis=axis), Y_scale, Y_zero_point)


@register_cpu("Int8Transpose")
def int8_transpose(data, *, axes, Y_scale, Y_zero_point):
    x = int8_input(data, "data")
    return _like(x, transpose(x.data, axes=axes), Y_scale, Y_zero_point)


@register_cpu("Int8ChannelShuffle")
def int8_channel_shuffle(x, *, group, order, Y_scale, Y_zero_point):
    x = int8_input(x, "X")
    return _like(x, channel_shuffle(x.data, group=group, order=order), Y_scale, Y_zero_point)


@register_cpu("Int8Concat")
def int8_concat(*inputs, axis, order, add_axis, Y_scale, Y_zero_point):
    xs = [int8_input(x, f"input {i}") for i, x in enumerate(inputs)]
    for i, x in enumerate(xs[1:], 1):
        if (np.float32(x.scale), x.zero_point) != (np.float32(xs[0].scale), xs[0].zero_point):
            raise ShapeError(f"input {i} has scale {x.scale} and zero point {x.zero_point} but input 0 "
                             f"has {xs[0].scale} and {xs[0].zero_point}: the codes must share them")
    shapes = [x.shape for x in xs]
    wanted = int8_concat_axis(axis, order)
    concat_shape(shapes, wanted, add_axis)  # the checks
    at = concat_axis(shapes, ["uint8"] * len(xs), wanted, add_axis)
    if add_axis:
        data, sizes = np.stack([x.data for x in xs], axis=at), np.ones(len(xs), np.int32)
    else:
        data = np.concatenate([x.data for x in xs], axis=at)
        sizes = np.array([s[at] for s in shapes], np.int32)
    return _like(xs[0], data, Y_scale, Y_zero_point), sizes


@register_cpu("Int8Slice")
def int8_slice(data, start_tensor=None, end_tensor=None, *, starts, ends, dim, start_idx, end_idx,
               Y_scale, Y_zero_point):
    x = int8_input(data, "data")
    if start_tensor is None:
        starts, ends = slice_bounds({"starts": starts, "ends": ends, "dim": dim, "start_idx": start_idx,
                                     "end_idx": end_idx}, x.data.ndim)
    return _like(x, slice_(x.data, start_tensor, end_tensor, starts=starts, ends=ends), Y_scale, Y_zero_point)


@register_cpu("Int8ResizeNearest")
def int8_resize_nearest(x, *, width_scale, height_scale, Y_scale, Y_zero_point):
    x = int8_input(x, "X")
    _, out_h, out_w, _ = resized_shape(x.shape, height_scale, width_scale)
    _, h, w, _ = x.shape
    rows = np.minimum((np.arange(out_h, dtype=np.float32) / np.float32(height_scale)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(out_w, dtype=np.float32) / np.float32(width_scale)).astype(np.int64), w - 1)
    return _like(x, x.data[:, rows][:, :, cols], Y_scale, Y_zero_point)
