"""Tensor_extra kernels (NumPy): ONNX's layout ops that Caffe2 lacks. Pad (every ONNX
mode; negative pads crop) with PadGradient, Trilu, EyeLike, DepthToSpace and
SpaceToDepth (each the other's gradient), CenterCropPad and CastLike. The checks are
schema.inference.tensor_extra's, shared with the rules; outputs whose size comes from
an input's values are checked with files.check_alloc before they are allocated.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.operators.tensor import int_values
from pycaffe2.schema.inference.tensor_extra import (
    cast_like_input,
    crop_pad_axes,
    depth_to_space_dims,
    eye_dtype,
    matrices,
    one_value,
    pad_amounts,
    padded_dims,
    space_to_depth_dims,
    unpadded_dims,
)


def _one_int(tensor, name: str) -> int:
    tensor = np.asarray(tensor)
    one_value(name, tensor.shape, tensor.dtype.name)
    return int(tensor.reshape(-1)[0])


# -- Pad ----------------------------------------------------------------------------------

def _amounts(dims, pads_tensor, axes_tensor, pads, axes) -> list[tuple[int, int]]:
    """(before, after) per dim, pads and axes from their inputs when given."""
    if pads_tensor is not None:
        pads = int_values(pads_tensor, "pads")
    if axes_tensor is not None:
        axes = int_values(axes_tensor, "axes")
    return pad_amounts(dims, pads or [], axes or [])


def source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position along one dim, the input position it copies (-1: the
    constant fill). Negative pads crop first; the other side then pads the cropped data
    (as np.pad of the crop: wrap and reflect see only what is kept)."""
    lo, kept = max(-before, 0), n - max(-before, 0) - max(-after, 0)
    p = np.arange(-max(before, 0), kept + max(after, 0))
    if mode == "constant":
        index = np.where((p >= 0) & (p < kept), p, -1 - lo)
    elif mode == "edge":
        index = np.clip(p, 0, kept - 1)
    elif mode == "wrap":
        index = p % kept
    elif kept == 1:  # reflect: the mirror of one element is itself
        index = np.zeros_like(p)
    else:
        period = 2 * (kept - 1)
        index = np.where(p % period < kept, p % period, period - p % period)
    return index + lo


def _constant_pad(data, amounts, out_dims, fill):
    out = np.full(out_dims, fill, dtype=data.dtype)
    src, dst = [], []
    for n, (before, after) in zip(data.shape, amounts):
        start, stop = max(-before, 0), n - max(-after, 0)
        src.append(slice(start, max(stop, start)))
        dst.append(slice(max(before, 0), max(before, 0) + max(stop - start, 0)))
    out[tuple(dst)] = data[tuple(src)]
    return out


@register_cpu("Pad")
def pad(data, pads_tensor=None, value_tensor=None, axes_tensor=None, *, mode, pads, value, axes):
    amounts = _amounts(data.shape, pads_tensor, axes_tensor, pads, axes)
    out_dims = check_alloc(padded_dims(data.shape, amounts, mode), data.dtype)
    if mode == "constant":
        if value_tensor is not None:
            one_value("constant_value", np.shape(value_tensor))
            value = np.asarray(value_tensor).reshape(-1)[0]
        return _constant_pad(data, amounts, out_dims, value)
    out = data
    for axis, (before, after) in enumerate(amounts):
        if before or after:
            out = np.take(out, source_index(data.shape[axis], before, after, mode), axis=axis)
    return np.array(out, copy=True) if out is data else out


@register_gradient("Pad")
def _pad_gradient(g):
    return [g.Op("PadGradient", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]


@register_cpu("PadGradient")
def pad_gradient(dy, pads_tensor=None, value_tensor=None, axes_tensor=None, *, mode, pads, value, axes):
    amounts = _amounts(dy.shape, pads_tensor, axes_tensor, pads, axes)
    dims = unpadded_dims(dy.shape, amounts)
    grad = dy
    for axis, (before, after) in enumerate(amounts):
        if not (before or after):
            continue
        index = source_index(dims[axis], before, after, mode)
        keep = index >= 0
        summed = np.zeros(grad.shape[:axis] + (dims[axis],) + grad.shape[axis + 1:], dtype=dy.dtype)
        np.add.at(np.moveaxis(summed, axis, 0), index[keep], np.moveaxis(grad, axis, 0)[keep])
        grad = summed
    return np.array(grad, copy=True) if grad is dy else grad


# -- triangles and diagonals ------------------------------------------------------------

@register_cpu("Trilu")
def trilu(x, k_tensor=None, *, upper, k):
    matrices(x.shape)
    if k_tensor is not None:
        k = _one_int(k_tensor, "k")
    return np.triu(x, k) if upper else np.tril(x, k)


@register_gradient("Trilu")
def _trilu_gradient(g):
    # The mask is linear and its own adjoint: the same Trilu on dY.
    return [g.Op("Trilu", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]


@register_cpu("EyeLike")
def eye_like(x, *, k, dtype):
    out_dtype = eye_dtype(x.shape, dtype, x.dtype.name)
    return np.eye(x.shape[0], x.shape[1], k, dtype=out_dtype)


# -- depth and space ------------------------------------------------------------------

@register_cpu("DepthToSpace")
def depth_to_space(x, *, blocksize, mode):
    out_dims = depth_to_space_dims(x.shape, blocksize)
    n, _, h, w = x.shape
    b, channels = blocksize, out_dims[1]
    if mode == "DCR":  # channel = (i * b + j) * C' + c'
        blocks = x.reshape(n, b, b, channels, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:  # CRD: channel = c' * b * b + i * b + j
        blocks = x.reshape(n, channels, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return blocks.reshape(out_dims)


@register_cpu("SpaceToDepth")
def space_to_depth(x, *, blocksize, mode):
    out_dims = space_to_depth_dims(x.shape, blocksize)
    n, c, h, w = x.shape
    b = blocksize
    blocks = x.reshape(n, c, h // b, b, w // b, b)
    order = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    return blocks.transpose(order).reshape(out_dims)


gradient_op("DepthToSpace", "GO0", gradient_type="SpaceToDepth")
gradient_op("SpaceToDepth", "GO0", gradient_type="DepthToSpace")


# -- centred crops and pads, type copies ------------------------------------------------

@register_cpu("CenterCropPad")
def center_crop_pad(x, sizes, *, axes):
    targets = crop_pad_axes(x.shape, int_values(sizes, "shape"), axes or [])
    out_dims = list(x.shape)
    src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    for axis, size in targets:
        dim, out_dims[axis] = x.shape[axis], size
        if size <= dim:  # crop: the window starts at floor((dim - size) / 2)
            start = (dim - size) // 2
            src[axis] = slice(start, start + size)
        else:  # pad: the odd element goes at the end
            start = (size - dim) // 2
            dst[axis] = slice(start, start + dim)
    out = np.zeros(check_alloc(out_dims, x.dtype), dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


@register_gradient("CenterCropPad")
def _center_crop_pad_gradient(g):
    # Centring back to the input's shape undoes it: a crop's window is where the pad put
    # the data, and the other way round.
    dims = f"_{g.I(0)}_dims"
    return [g.Op("Shape", [g.I(0)], [dims], inherit_args=False),
            g.Op("CenterCropPad", [g.GO(0), dims], [g.GI(0)], inherit_args=False)]


@register_cpu("CastLike")
def cast_like(x, target):
    cast_like_input(x.shape, x.dtype.name)
    cast_like_input(target.shape, target.dtype.name)
    return x if x.dtype == target.dtype else x.astype(target.dtype)


gradient_op("CastLike", "GO0 I0", gradient_type="CastLike")
