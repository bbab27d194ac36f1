"""nn_extra family kernels (NumPy, CPU): Hardmax, MaxPoolWithArgmax, MaxUnpool and
MeanVarianceNormalization, ONNX's semantics; the checks are the schema's
(schema/inference/nn_extra.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators._conv_pool import padded, register_factory, windows
from pycaffe2.operators.registry import ALL_SCHEMA_ARGS, gradient_op, register_cpu
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.conv import Window
from pycaffe2.schema.inference.nn_extra import (
    argmax_window,
    axes_of,
    check_argmax_gradient,
    col2im_shape,
    deform_conv_shape,
    im2col_shape,
    one_axis,
    sliding_out,
    unpooled_shape,
)


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
        # padded with the lowest value (never a max), then windowed as if unpadded
        view = windows(padded(x, g, _lowest(x.dtype)), g._replace(head=(0,) * nd, tail=(0,) * nd))
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


gradient_op("MaxPoolWithArgmax", "I0 O1 GO0")


@register_cpu("MaxPoolWithArgmaxGradient", args=ALL_SCHEMA_ARGS)
def max_pool_with_argmax_gradient(x, indices, dy, **args):
    check_argmax_gradient(x.shape, indices.shape, dy.shape)
    flat = indices.reshape(-1)
    if args.get("storage_order") == 1:  # column-major planes back to row-major
        h, w = x.shape[2:]
        plane, within = np.divmod(flat, h * w)
        flat = plane * h * w + (within % h) * w + within // h
    dx = np.zeros(x.size, dy.dtype)
    np.add.at(dx, flat, dy.reshape(-1))
    return dx.reshape(x.shape)


@register_cpu("MaxUnpool")
def max_unpool(x, indices, *, kernels, strides, pads, output_shape):
    inferred, out = unpooled_shape(x.shape, indices.shape, kernels, strides, pads, output_shape)
    flat = np.zeros(int(np.prod(inferred)), x.dtype)
    where = indices.reshape(-1)
    if where.size and (where.min() < 0 or where.max() >= flat.size):
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


@register_cpu("Col2ImND")
def col2im_nd(x, *, image_shape, block_shape, dilations, pads, strides):
    shape = col2im_shape(x.shape, image_shape, block_shape, dilations, pads, strides)
    nd = len(image_shape)
    dilations, strides = dilations or [1] * nd, strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    out = sliding_out(image_shape, block_shape, dilations, pads, strides)
    columns = x.reshape(shape[:2] + tuple(block_shape) + out)
    image = np.zeros(shape[:2] + tuple(i + pads[a] + pads[nd + a] for a, i in enumerate(image_shape)), x.dtype)
    for offset in np.ndindex(*block_shape):
        cells = tuple(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offset, dilations, strides, out))
        image[(slice(None), slice(None)) + cells] += columns[(slice(None), slice(None)) + offset]
    return image[(slice(None), slice(None)) + tuple(slice(pads[a], pads[a] + i) for a, i in enumerate(image_shape))]


gradient_op("Col2ImND", "GO0")


@register_cpu("Col2ImNDGradient")
def col2im_nd_gradient(dy, *, image_shape, block_shape, dilations, pads, strides):
    shape = im2col_shape(dy.shape, image_shape, block_shape, dilations, pads, strides)
    nd = len(image_shape)
    g = Window(tuple(block_shape), tuple(strides or [1] * nd), tuple(dilations or [1] * nd),
               tuple((pads or [0] * 2 * nd)[:nd]), tuple((pads or [0] * 2 * nd)[nd:]),
               sliding_out(image_shape, block_shape, dilations or [1] * nd, pads or [0] * 2 * nd, strides or [1] * nd))
    view = windows(dy, g)  # [N, C, out..., block...]
    view = np.moveaxis(view, tuple(range(2 + nd, 2 + 2 * nd)), tuple(range(2, 2 + nd)))  # [N, C, block..., out...]
    return np.ascontiguousarray(view).reshape(shape)


def _deformed_columns(x, offset, mask, kernel, out, dilations, pads, strides, offset_group):
    """[N, C, kernel..., out...]: X read bilinearly at each tap's offset position (zero outside),
    times the mask."""
    n, c = x.shape[:2]
    nd = len(kernel)
    offset = offset.reshape((n, offset_group, *kernel, nd, *out)).astype(np.float64)
    grid = np.meshgrid(*[np.arange(k) for k in kernel], *[np.arange(o) for o in out], indexing="ij")
    points = [grid[a] * dilations[a] + grid[nd + a] * strides[a] - pads[a] + offset[(Ellipsis, a) + (slice(None),) * nd]
              for a in range(nd)]  # each [N, G, kernel..., out...]
    weight_mask = np.ones(points[0].shape) if mask is None else mask.reshape(points[0].shape)
    xg = x.reshape((n, offset_group, c // offset_group) + x.shape[2:])
    lead = np.ix_(np.arange(n), np.arange(offset_group))
    lead = tuple(i.reshape(i.shape + (1,) * (2 * nd)) for i in lead)
    columns = np.zeros(points[0].shape + (c // offset_group,))
    for corner in np.ndindex(*(2,) * nd):
        weight, index = weight_mask, []
        for a, bit in enumerate(corner):
            i = np.floor(points[a]).astype(np.int64) + bit
            inside = (i >= 0) & (i < x.shape[2 + a])
            weight = weight * np.where(inside, 1 - np.abs(points[a] - i), 0.0)
            index.append(np.clip(i, 0, x.shape[2 + a] - 1))
        columns += xg[(lead[0], lead[1], slice(None), *index)] * weight[..., None]
    columns = np.moveaxis(columns, -1, 2)  # [N, G, C/G, kernel..., out...]
    return columns.reshape((n, c) + tuple(kernel) + tuple(out))


@register_cpu("DeformConv")
def deform_conv(x, w, offset, *rest, group, offset_group, dilations, pads, strides):
    bias, mask = (list(rest) + [None, None])[:2]
    shape = deform_conv_shape(x.shape, w.shape, offset.shape, None if bias is None else bias.shape,
                              None if mask is None else mask.shape, group, offset_group, dilations, pads, strides)
    nd = x.ndim - 2
    dilations, strides = dilations or [1] * nd, strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    columns = _deformed_columns(x, offset, mask, w.shape[2:], shape[2:], dilations, pads, strides, offset_group)
    n, m = x.shape[0], w.shape[0]
    columns = columns.reshape(n, group, -1, int(np.prod(shape[2:])))
    weights = w.reshape(group, m // group, -1).astype(np.float64)
    y = np.einsum("gmk,ngko->ngmo", weights, columns).reshape(shape)
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * nd)
    return y.astype(x.dtype)
