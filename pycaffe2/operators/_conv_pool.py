"""What the conv and pooling families share (not a family: load_kernels skips it).

Kernel registration from the conv_pool schemas (one factory per op and its ~20 arg
spellings, under every alias), channels-first views of NHWC arrays, the padding and
kernel-offset slices of a window on the CPU, and the window's ints as conv_pool.cuh's
POOL_PARAMS take them on CUDA. The window itself is the schema's (inference.conv).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pycaffe2.operators.registry import ALL_SCHEMA_ARGS, register_cpu, register_cuda
from pycaffe2.schema import get_schema
from pycaffe2.schema.inference.conv import Window, channel_axis, spatial_shape


def register_factory(op_type: str):
    """register_cpu for `op_type` and its aliases, for a factory taking the schema's
    args as **args (the conv_pool group has ~20 spellings)."""
    return register_cpu(op_type, *get_schema(op_type).aliases, specialize=True, args=ALL_SCHEMA_ARGS)


def register_cuda_factory(op_type: str):
    """register_cuda for `op_type` and its aliases, a factory taking register_factory's args."""
    return register_cuda(op_type, *get_schema(op_type).aliases, specialize=True, args=ALL_SCHEMA_ARGS)


def channels_first(array: np.ndarray, order: str) -> np.ndarray:
    return array if order == "NCHW" else np.moveaxis(array, -1, 1)


def channels_back(array: np.ndarray, order: str) -> np.ndarray:
    """A channels-first array (maybe a view) back in `order`, contiguous."""
    return np.ascontiguousarray(array if order == "NCHW" else np.moveaxis(array, 1, -1))


def padded(x: np.ndarray, g: Window, value=0) -> np.ndarray:
    """X [N, C, spatial...] padded by the window's head and tail pads (X itself if none)."""
    if not any(g.head) and not any(g.tail):
        return x
    out = np.full(padded_shape(x.shape, g), value, dtype=x.dtype)
    out[inner(x.shape, g)] = x
    return out


def windows(x: np.ndarray, g: Window) -> np.ndarray:
    """A view of channels-first X's windows, [N, C, out..., kernel...]: padded, then each
    window's taps at the stride and dilation (no copy)."""
    spatial = tuple(range(2, 2 + len(g.kernel)))
    view = sliding_window_view(padded(x, g), g.dilated, axis=spatial)  # [N, C, windows..., extent...]
    return view[(slice(None), slice(None))
                + tuple(slice(0, s * (n - 1) + 1, s) for s, n in zip(g.stride, g.out))
                + tuple(slice(None, None, d) for d in g.dilation)]


def padded_shape(shape, g: Window) -> tuple:
    return tuple(shape[:2]) + tuple(s + h + t for s, h, t in zip(shape[2:], g.head, g.tail))


def inner(shape, g: Window) -> tuple:
    """The slices of a padded array that hold the unpadded one of `shape`."""
    return (slice(None), slice(None)) + tuple(slice(h, h + s) for h, s in zip(g.head, shape[2:]))


def offset_slices(g: Window, offset) -> tuple:
    """The cells of the padded input that kernel offset `offset` reads, one per output position."""
    return (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offset, g.dilation, g.stride, g.out))


# conv_pool.cuh sees every image as 3-D, so 1-D and 2-D windows get leading axes of
# size 1 (kernel 1, stride 1, no padding).

def window_params(shape, order: str, g: Window) -> list:
    """The ints of conv_pool.cuh's POOL_PARAMS for the image of `shape` that window g reads."""
    nd = len(g.kernel)
    if nd > 3:  # a limit of the CUDA kernels, not of the op: the CPU takes any rank
        raise ValueError(f"the CUDA kernels take 1 to 3 spatial dims; X {list(shape)} has {nd}")
    ones, zeros = (1,) * (3 - nd), (0,) * (3 - nd)
    values = [order == "NHWC", shape[channel_axis(len(shape), order)], *ones, *spatial_shape(shape, order),
              *ones, *g.out, *ones, *g.kernel, *ones, *g.stride, *ones, *g.dilation, *zeros, *g.head]
    return [np.int32(v) for v in values]
