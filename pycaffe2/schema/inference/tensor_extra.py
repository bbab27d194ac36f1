"""Inference rules of the tensor_extra family (Pad, Trilu, EyeLike, DepthToSpace,
SpaceToDepth, CenterCropPad, CastLike), and each op's shape and arg checks.

As in the tensor family, the checks are plain functions of shapes, dtypes and args
raising ShapeError, called by the rules and by the kernels (operators/tensor_extra.py).
Sizes that come from an input's values (Pad's pads or axes given as tensors,
CenterCropPad's shape, Trilu's k) are unknown here, so those outputs are None.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import arg_or_input, axis_index, cast_dtype, int_tensor

PAD_INPUTS = ("pads", "constant_value", "axes")


def _int_inputs(inputs: list, names, scalar_names=()) -> None:
    for info, name in zip(inputs, names):
        if info is not None and name != "constant_value":
            if name in scalar_names:
                one_value(name, info.shape, info.dtype)
            else:
                int_tensor(name, info.shape, info.dtype)


def one_value(name: str, shape, dtype: str | None = None) -> None:
    """An input holding one number (0-d or one element), an int one when `dtype` is given."""
    if len(shape) > 1 or (shape and shape[0] != 1):
        raise ShapeError(f"input {name} must hold one value, got {list(shape)}")
    if dtype is not None and not dtype.startswith(("int", "uint")):
        raise ShapeError(f"input {name} must be an int tensor, got {dtype}")


def pad_amounts(dims: tuple, pads, axes) -> list[tuple[int, int]]:
    """(before, after) for every dim from ONNX's pads [begins..., ends...] over `axes`
    (every dim when empty; negative axes count from the end)."""
    rank = len(dims)
    axes = [axis_index(a, rank, "axes entry", f"input {list(dims)}") for a in axes] if axes \
        else list(range(rank))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axes {axes} name a dim twice")
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"pads {list(pads)} has {len(pads)} entries, {2 * len(axes)} needed "
                         f"(a begin and an end for each of {len(axes)} axes)")
    amounts = [(0, 0)] * rank
    for index, axis in enumerate(axes):
        amounts[axis] = (int(pads[index]), int(pads[index + len(axes)]))
    return amounts


def padded_dims(dims: tuple, amounts, mode: str) -> tuple:
    """Pad's output dims; negative pads crop first and may not pass the dim, and only
    constant mode pads a dim left empty (the others copy its elements)."""
    out = []
    for dim, (before, after) in zip(dims, amounts):
        kept = dim - max(-before, 0) - max(-after, 0)
        if kept < 0:
            raise ShapeError(f"pads ({before}, {after}) crop more than the dim's {dim} elements "
                             f"of input {list(dims)}")
        if kept == 0 and (before > 0 or after > 0) and mode != "constant":
            raise ShapeError(f"mode {mode} cannot pad an empty dim (input {list(dims)}, "
                             f"pads ({before}, {after}))")
        out.append(dim + before + after)
    return tuple(out)


def unpadded_dims(dims: tuple, amounts) -> tuple:
    """PadGradient's dX dims: dY's without the pads."""
    out = tuple(dim - before - after for dim, (before, after) in zip(dims, amounts))
    if any(d < 0 for d in out):
        raise ShapeError(f"dY {list(dims)} is smaller than its pads {amounts}")
    return out


def _pad_amounts_known(op: OpView, inputs: list):
    """The pads per dim when the args give them (None while an input gives them)."""
    data = inputs[0]
    arg_or_input("pads", op.has("pads"), "pads", op.n_inputs > 1)
    arg_or_input("axes", op.has("axes"), "axes", op.n_inputs > 3, needed=False)
    _int_inputs(inputs[1:], PAD_INPUTS)
    if op.n_inputs > 2 and inputs[2] is not None:
        one_value("constant_value", inputs[2].shape)
    if data is None or op.n_inputs > 1:
        return None
    return pad_amounts(data.shape, op.arg("pads"), op.arg("axes", []))


@rule("tensor_extra_pad")
def pad(op: OpView, inputs: list) -> list:
    """Pad: each dim grows by its pads (known when the args give them)."""
    amounts = _pad_amounts_known(op, inputs)
    if amounts is None:
        return [None]
    return [TensorInfo(padded_dims(inputs[0].shape, amounts, op.arg("mode")), inputs[0].dtype)]


@rule("tensor_extra_pad_gradient")
def pad_gradient(op: OpView, inputs: list) -> list:
    """PadGradient: dY without the pads."""
    amounts = _pad_amounts_known(op, inputs)
    if amounts is None:
        return [None]
    return [TensorInfo(unpadded_dims(inputs[0].shape, amounts), inputs[0].dtype)]


def matrices(dims: tuple) -> None:
    """Trilu's input: matrices in the last two dims."""
    if len(dims) < 2:
        raise ShapeError(f"input {list(dims)} must have at least 2 dims (matrices in the last two)")


@rule("tensor_extra_trilu")
def trilu(op: OpView, inputs: list) -> list:
    """Trilu: input's shape and type."""
    data = inputs[0]
    _int_inputs(inputs[1:], ["k"], scalar_names=["k"])
    if data is not None:
        matrices(data.shape)
    return [data]


def eye_dtype(dims: tuple, dtype_arg, input_dtype: str) -> str:
    """EyeLike's output type: `dtype`, else the input's; the input must be 2-D."""
    if len(dims) != 2:
        raise ShapeError(f"input {list(dims)} must be 2-D")
    return input_dtype if dtype_arg is None else cast_dtype(dtype_arg)


@rule("tensor_extra_eye_like")
def eye_like(op: OpView, inputs: list) -> list:
    """EyeLike: the input's shape, type `dtype` (the input's without it)."""
    data = inputs[0]
    if data is None:
        return [None]
    return [TensorInfo(data.shape, eye_dtype(data.shape, op.arg("dtype"), data.dtype))]


def depth_to_space_dims(dims: tuple, blocksize: int) -> tuple:
    """DepthToSpace: [N, C / b^2, H * b, W * b]; b^2 must divide C."""
    if len(dims) != 4:
        raise ShapeError(f"input {list(dims)} must be 4-D (NCHW)")
    n, c, h, w = dims
    if c % (blocksize * blocksize):
        raise ShapeError(f"blocksize^2 = {blocksize * blocksize} does not divide the {c} channels "
                         f"of input {list(dims)}")
    return n, c // (blocksize * blocksize), h * blocksize, w * blocksize


def space_to_depth_dims(dims: tuple, blocksize: int) -> tuple:
    """SpaceToDepth: [N, C * b^2, H / b, W / b]; b must divide H and W."""
    if len(dims) != 4:
        raise ShapeError(f"input {list(dims)} must be 4-D (NCHW)")
    n, c, h, w = dims
    if h % blocksize or w % blocksize:
        raise ShapeError(f"blocksize {blocksize} does not divide H {h} and W {w} of input {list(dims)}")
    return n, c * blocksize * blocksize, h // blocksize, w // blocksize


@rule("tensor_extra_depth_to_space")
def depth_to_space(op: OpView, inputs: list) -> list:
    """DepthToSpace: channels into spatial blocks."""
    data = inputs[0]
    if data is None:
        return [None]
    return [TensorInfo(depth_to_space_dims(data.shape, op.arg("blocksize")), data.dtype)]


@rule("tensor_extra_space_to_depth")
def space_to_depth(op: OpView, inputs: list) -> list:
    """SpaceToDepth: spatial blocks into channels."""
    data = inputs[0]
    if data is None:
        return [None]
    return [TensorInfo(space_to_depth_dims(data.shape, op.arg("blocksize")), data.dtype)]


def crop_pad_axes(dims: tuple, sizes, axes) -> list[tuple[int, int]]:
    """CenterCropPad: (axis, new size) for each listed axis (every axis without axes)."""
    rank = len(dims)
    axes = [axis_index(a, rank, "axes entry", f"input {list(dims)}") for a in axes] if axes \
        else list(range(rank))
    if len(sizes) != len(axes):
        raise ShapeError(f"shape has {len(sizes)} sizes for {len(axes)} axes of input {list(dims)}")
    if any(s < 0 for s in sizes):
        raise ShapeError(f"shape {list(sizes)} has a negative size")
    return [(axis, int(size)) for axis, size in zip(axes, sizes)]


@rule("tensor_extra_center_crop_pad")
def center_crop_pad(op: OpView, inputs: list) -> list:
    """CenterCropPad: the sizes come from the shape input's values (unknown here)."""
    data, sizes = inputs
    if sizes is not None:
        int_tensor("shape", sizes.shape, sizes.dtype)
        axes = op.arg("axes")
        if data is not None and len(axes or data.shape) != sizes.shape[0]:
            raise ShapeError(f"shape has {sizes.shape[0]} sizes for {len(axes or data.shape)} axes "
                             f"of input {list(data.shape)}")
    return [None]


def cast_like_input(dims: tuple, dtype: str) -> None:
    """CastLike converts numbers (and bools), not strings."""
    if dtype == "object" or dtype.startswith(("str", "bytes")):
        raise ShapeError(f"input {list(dims)} {dtype} is not numeric")


@rule("tensor_extra_cast_like")
def cast_like(op: OpView, inputs: list) -> list:
    """CastLike: input's shape, target_type's type."""
    data, target = inputs
    if data is not None:
        cast_like_input(data.shape, data.dtype)
    if target is not None:
        cast_like_input(target.shape, target.dtype)
    if data is None or target is None:
        return [None]
    return [TensorInfo(data.shape, target.dtype)]
