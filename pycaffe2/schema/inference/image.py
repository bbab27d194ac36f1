"""Inference rules of the image family (ImageInput, PadImage, the NHWC/NCHW
transposes) and the arg and shape checks its kernels share with them.

ImageInput's outputs follow from its args alone: data is float32
[batch_size, crop, crop, C]; the label's shape from label_type and num_labels
(its type is the records', so only label_type 3's float32 is known here).
PadImage reads Conv's pad spellings (conv's `_pads`), negative pads included.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.conv import _pads, image_shape, spatial_shape

SINGLE_LABELS = (0, 4)  # label_type values with one label per image
WEIGHTED_SPARSE = 3
WEIGHT_TENSOR = (3, 4)  # label_type values whose records hold a weight tensor after the label


def normalisation(args: dict) -> tuple[list, list]:
    """(mean, std) per channel, 3 values each; the per-channel args replace mean and std."""
    mean = list(args.get("mean_per_channel") or [args["mean"]])
    std = list(args.get("std_per_channel") or [args["std"]])
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise ShapeError(f"mean {mean} and std {std} must have one length, 1 or 3")
    if 0.0 in std:
        raise ShapeError(f"std {std} must not hold 0")
    return mean * (3 // len(mean)), std * (3 // len(std))


def resize_target(args: dict) -> tuple[int, int]:
    """(scale, minsize): exactly one positive (random_scale [lo, hi] sets minsize to lo),
    and at least crop."""
    scale, minsize = args["scale"], args["minsize"]
    random_scale = args.get("random_scale")
    if random_scale:
        if len(random_scale) != 2 or random_scale[0] > random_scale[1]:
            raise ShapeError(f"random_scale {list(random_scale)} must be [min, max] with min <= max")
        minsize = random_scale[0]
    if (scale > 0) == (minsize > 0):
        raise ShapeError(f"give exactly one of scale ({scale}) and minsize ({minsize}) as a positive size")
    if max(scale, minsize) < args["crop"]:
        raise ShapeError(f"scale/minsize {max(scale, minsize)} must be at least crop {args['crop']}")
    return scale, minsize


def extra_sizes(args: dict, n_outputs: int) -> list[int]:
    """Values per record of each output after the label (output_sizes, default 1 each)."""
    sizes = list(args.get("output_sizes") or [1] * (n_outputs - 2))
    if len(sizes) != n_outputs - 2:
        raise ShapeError(f"output_sizes {sizes} needs one size per extra output ({n_outputs - 2})")
    if any(s < 1 for s in sizes):
        raise ShapeError(f"output_sizes {sizes} must be positive")
    return sizes


def check_image_input(args: dict, n_outputs: int) -> None:
    """Every arg check of ImageInput, at validation and when the kernel is made."""
    normalisation(args)
    resize_target(args)
    extra_sizes(args, n_outputs)
    if args["label_type"] not in SINGLE_LABELS and args["num_labels"] < 1:
        raise ShapeError(f"label_type {args['label_type']} needs num_labels (the label width)")
    if args["use_caffe_datum"] and (n_outputs != 2 or args["label_type"] not in SINGLE_LABELS):
        raise ShapeError("Caffe Datum records (use_caffe_datum=1) hold one int label: the op takes 2 "
                         "outputs and label_type 0 or 4")
    if str(args["output_type"]).upper() not in ("FLOAT", "FLOAT16", "1", "12"):
        raise ShapeError(f"output_type {args['output_type']} must be FLOAT or FLOAT16")


def label_shape(args: dict) -> tuple[int, ...]:
    if args["label_type"] in SINGLE_LABELS:
        return (args["batch_size"],)
    return (args["batch_size"], args["num_labels"])


@rule("image_image_input")
def image_input(op: OpView, inputs: list) -> list:
    args = op.args
    check_image_input(args, op.n_outputs)
    channels = 3 if args["color"] else 1
    data = TensorInfo((args["batch_size"], args["crop"], args["crop"], channels), "float32")
    label = TensorInfo(label_shape(args), "float32") if args["label_type"] == WEIGHTED_SPARSE else None
    return [data, label] + [None] * (op.n_outputs - 2)


def image_pads(args: dict) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from any of Conv's pad spellings (0 when none is given)."""
    return tuple(_pads(args, 2) or (0, 0, 0, 0))


def padded_image(shape, args: dict) -> tuple[int, ...]:
    """PadImage's Y shape for X of `shape`; refuses non-4-D X and pads that crop it away."""
    if len(shape) != 4:
        raise ShapeError(f"X {list(shape)} must be a 4-D image")
    order = args["order"]
    top, left, bottom, right = image_pads(args)
    height, width = spatial_shape(shape, order)
    out = (height + top + bottom, width + left + right)
    if min(out) < 1:
        raise ShapeError(f"pads [t {top}, l {left}, b {bottom}, r {right}] leave nothing of X {list(shape)}")
    if args["mode"] == "reflect" and (max(top, bottom) >= height or max(left, right) >= width):
        raise ShapeError(f"reflect pads [t {top}, l {left}, b {bottom}, r {right}] must be smaller "
                         f"than X's spatial dims {list(shape)}")
    channels = shape[1] if order == "NCHW" else shape[3]
    return image_shape(shape[0], channels, out, order)


def unpadded_image(shape, args: dict) -> tuple[int, ...]:
    """PadImageGradient's dX shape for dY of `shape`."""
    if len(shape) != 4:
        raise ShapeError(f"dY {list(shape)} must be a 4-D image")
    top, left, bottom, right = image_pads(args)
    height, width = spatial_shape(shape, args["order"])
    out = (height - top - bottom, width - left - right)
    if min(out) < 1:
        raise ShapeError(f"dY {list(shape)} is not larger than the pads [t {top}, l {left}, "
                         f"b {bottom}, r {right}]")
    channels = shape[1] if args["order"] == "NCHW" else shape[3]
    return image_shape(shape[0], channels, out, args["order"])


@rule("image_pad_image")
def pad_image(op: OpView, inputs: list) -> list:
    x = inputs[0]
    image_pads(op.args)
    return [None if x is None else TensorInfo(padded_image(x.shape, op.args), x.dtype)]


@rule("image_pad_image_gradient")
def pad_image_gradient(op: OpView, inputs: list) -> list:
    dy = inputs[0]
    image_pads(op.args)
    return [None if dy is None else TensorInfo(unpadded_image(dy.shape, op.args), dy.dtype)]


def check_rank3(shape, name: str = "X") -> None:
    if len(shape) < 3:
        raise ShapeError(f"{name} {list(shape)} needs rank 3 or more (N, spatial..., C)")


@rule("image_nhwc2nchw")
def nhwc2nchw(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None]
    check_rank3(x.shape)
    return [TensorInfo((x.shape[0], x.shape[-1], *x.shape[1:-1]), x.dtype)]


@rule("image_nchw2nhwc")
def nchw2nhwc(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None]
    check_rank3(x.shape)
    return [TensorInfo((x.shape[0], *x.shape[2:], x.shape[1]), x.dtype)]
