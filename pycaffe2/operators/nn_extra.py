"""nn_extra family kernels (NumPy, CPU): Hardmax, MaxPoolWithArgmax, MaxUnpool and
MeanVarianceNormalization, ONNX's semantics; the checks are the schema's
(schema/inference/nn_extra.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators._conv_pool import register_factory, windows
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.nn_extra import argmax_window, axes_of, one_axis, unpooled_shape


@register_cpu("Hardmax")
def hardmax(x, *, axis):
    axis = one_axis(x.shape, axis)
    y = np.zeros_like(x)
    if x.size:
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return y


def _lowest(dtype):
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


@register_factory("MaxPoolWithArgmax")
def max_pool_with_argmax(**args):
    def run(x):
        g = argmax_window(args, x.shape)
        nd = len(g.kernel)
        padded = np.full(x.shape[:2] + tuple(h + s + t for h, s, t in zip(g.head, x.shape[2:], g.tail)),
                         _lowest(x.dtype), x.dtype)
        padded[(slice(None), slice(None)) + tuple(slice(h, h + s) for h, s in zip(g.head, x.shape[2:]))] = x
        view = windows(padded, g.__class__(g.kernel, g.stride, g.dilation, (0,) * nd, (0,) * nd, g.out))
        flat = view.reshape(view.shape[:2 + nd] + (-1,))
        best = flat.argmax(axis=-1)
        y = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
        offsets = np.unravel_index(best, g.kernel)
        cells = []
        for a in range(nd):
            out = np.arange(g.out[a]).reshape((-1,) + (1,) * (nd - 1 - a))
            cells.append(out * g.stride[a] - g.head[a] + offsets[a] * g.dilation[a])
        spatial = x.shape[2:]
        if args["storage_order"] == 1:
            cells, spatial = cells[::-1], spatial[::-1]
        index = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * nd)
        for c, size in zip(cells, spatial):
            index = index * size + c
        return y, index.astype(np.int64)
    return run


@register_cpu("MaxUnpool")
def max_unpool(x, indices, *, kernels, strides, pads, output_shape):
    inferred, out = unpooled_shape(x.shape, indices.shape, kernels, strides, pads, output_shape)
    flat = np.zeros(int(np.prod(inferred)), x.dtype)
    where = indices.reshape(-1)
    if where.size and (where.min() < 0 or where.max() >= flat.size):
        from pycaffe2.schema.inference import ShapeError
        raise ShapeError(f"Indices must lie in [0, {flat.size}) (the unpooled {list(inferred)})")
    flat[where] = x.reshape(-1)
    y = np.zeros(out, x.dtype)
    y[tuple(slice(0, n) for n in inferred)] = flat.reshape(inferred)
    return y


@register_cpu("MeanVarianceNormalization")
def mean_variance_normalization(x, *, axes):
    axes = axes_of(x.shape, axes)
    mean = np.mean(x, axis=axes, keepdims=True)
    std = np.sqrt(np.mean(np.square(x), axis=axes, keepdims=True) - np.square(mean))
    return ((x - mean) / (std + x.dtype.type(1e-9))).astype(x.dtype)
