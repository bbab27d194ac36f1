"""Inference rules of the boolean_mask family (BooleanMask and its gradient,
BooleanMaskLengths, BooleanUnmask), and the checks its kernels share with them.
BooleanMask's outputs have a length that depends on the mask's values: unknown here.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector


def bool_vector(name: str, shape, dtype) -> None:
    """Raise unless input `name` is a 1-D bool tensor."""
    if len(shape) != 1 or (dtype is not None and str(dtype) != "bool"):
        raise ShapeError(f"{name} must be a 1-D bool tensor, got {list(shape)} {dtype}")


def boolean_mask_inputs(data, mask, mask_dtype) -> None:
    if len(data) < 1:
        raise ShapeError(f"data must have rank >= 1, got {list(data)}")
    bool_vector("mask", mask, mask_dtype)
    if mask[0] != data[0]:
        raise ShapeError(f"mask {list(mask)} must have one entry per row of data {list(data)}")


def boolean_mask_gradient_inputs(mask, mask_dtype, dy) -> None:
    bool_vector("mask", mask, mask_dtype)
    if len(dy) < 1:
        raise ShapeError(f"dY must have rank >= 1, got {list(dy)}")


def lengths_inputs(lengths, dtype, mask, mask_dtype) -> None:
    index_vector("lengths", lengths, dtype)
    bool_vector("mask", mask, mask_dtype)


def unmask_inputs(pairs: list) -> None:
    """pairs: (mask shape, mask dtype, values shape) per pair; masks of one size, values 1-D."""
    size = None
    for i, (mask, mask_dtype, values) in enumerate(pairs):
        if mask is not None:
            bool_vector(f"mask_{i}", mask, mask_dtype)
            if size is not None and mask[0] != size:
                raise ShapeError(f"mask_{i} {list(mask)} must have the size of mask_0 ({size})")
            size = mask[0] if size is None else size
        if values is not None and len(values) != 1:
            raise ShapeError(f"values_{i} must be 1-D, got {list(values)}")


@rule("boolean_mask_boolean_mask")
def boolean_mask(op: OpView, inputs: list) -> list:
    """Both outputs' lengths depend on the mask's values."""
    data, mask = inputs
    if data is not None and mask is not None:
        boolean_mask_inputs(data.shape, mask.shape, mask.dtype)
    return [None] * op.n_outputs


@rule("boolean_mask_gradient")
def boolean_mask_gradient(op: OpView, inputs: list) -> list:
    """dX is [len(mask)] + dY's dims after the first, of dY's type."""
    mask, dy = inputs
    if mask is None or dy is None:
        return [None]
    boolean_mask_gradient_inputs(mask.shape, mask.dtype, dy.shape)
    return [TensorInfo((mask.shape[0], *dy.shape[1:]), dy.dtype)]


@rule("boolean_mask_lengths")
def boolean_mask_lengths(op: OpView, inputs: list) -> list:
    """masked_lengths is like lengths."""
    lengths, mask = inputs
    if lengths is None or mask is None:
        return [lengths]
    lengths_inputs(lengths.shape, lengths.dtype, mask.shape, mask.dtype)
    return [lengths]


@rule("boolean_mask_unmask")
def boolean_unmask(op: OpView, inputs: list) -> list:
    """The output is 1-D of the masks' size and values_0's type."""
    pairs = [(None if m is None else m.shape, None if m is None else m.dtype, None if v is None else v.shape)
             for m, v in zip(inputs[::2], inputs[1::2])]
    unmask_inputs(pairs)
    mask, values = inputs[0], inputs[1]
    if mask is None or values is None:
        return [None]
    return [TensorInfo((mask.shape[0],), values.dtype)]
