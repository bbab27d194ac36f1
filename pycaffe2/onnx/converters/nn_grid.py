"""Converters of ONNX's resampling ops: Resize and Upsample (pycaffe2's Resize, its
scales/sizes/roi/axes as args read at translation time), GridSample, AffineGrid,
RoiAlign (Caffe2's RoIAlign on [batch index, box] rows), Col2Im and DeformConv."""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.registry import Unsupported, converter

_RESIZE_ATTRS = ("coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
                 "extrapolation_value", "antialias", "keep_aspect_ratio_policy")


def _values(ctx, name, what: str):
    """An optional attribute-like input as a list (None when omitted or empty)."""
    if not name:
        return None
    value = ctx.require(name, what)
    return None if value is None or value.size == 0 else value.reshape(-1).tolist()


def _mode(node, default="nearest") -> str:
    mode = node.attr("mode", default)
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if mode not in ("nearest", "linear", "cubic"):
        raise Unsupported(f"mode {mode!r} (pycaffe2's Resize has nearest, linear, cubic)")
    return mode


@converter("Resize", since=11)
def _resize11(node, ctx):
    args = {k: node.attr(k) for k in _RESIZE_ATTRS if node.has_attr(k)}
    args["mode"] = _mode(node)
    if node.has_attr("axes"):
        args["axes"] = list(node.attr("axes"))
    roi = _values(ctx, node.input(1), "Resize's roi")
    scales = _values(ctx, node.input(2), "Resize's scales")
    sizes = _values(ctx, node.input(3), "Resize's sizes")
    if (scales is None) == (sizes is None):
        raise Unsupported("Resize needs exactly one of scales and sizes")
    if args.get("coordinate_transformation_mode") == "tf_crop_and_resize" and roi:
        args["roi"] = roi
    if scales is not None:
        args["scales"] = scales
    else:
        args["sizes"] = [int(s) for s in sizes]
    ctx.op("Resize", [node.input(0)], [node.output(0)], **args)


@converter("Resize", since=10)
def _resize10(node, ctx):
    scales = _values(ctx, node.input(1), "Resize's scales")
    ctx.op("Resize", [node.input(0)], [node.output(0)], mode=_mode(node), scales=scales,
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@converter("Upsample")
def _upsample(node, ctx):
    """Upsample (deprecated): Resize with asymmetric coordinates and floored nearest."""
    if node.opset >= 9:
        scales = _values(ctx, node.input(1), "Upsample's scales")
    else:
        scales = list(node.attr("scales", []))
    if not scales:
        raise Unsupported("Upsample without scales")
    ctx.op("Resize", [node.input(0)], [node.output(0)], mode=_mode(node), scales=scales,
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")


@converter("GridSample")
def _grid_sample(node, ctx):
    ctx.op("GridSample", [node.input(0), node.input(1)], [node.output(0)], mode=_mode(node, "linear"),
           padding_mode=node.attr("padding_mode", "zeros"), align_corners=node.attr("align_corners", 0))


@converter("AffineGrid")
def _affine_grid(node, ctx):
    size = [int(v) for v in ctx.require(node.input(1), "AffineGrid's size")]
    ctx.op("AffineGrid", [node.input(0)], [node.output(0)], size=size,
           align_corners=node.attr("align_corners", 0))


@converter("RoiAlign")
def _roi_align(node, ctx):
    """Caffe2's RoIAlign on rows [batch index, x1, y1, x2, y2]; half_pixel is its aligned=1."""
    transform = node.attr("coordinate_transformation_mode", "half_pixel" if node.opset >= 16 else "output_half_pixel")
    x, rois, batch = node.input(0), node.input(1), node.input(2)
    index, column, rows = ctx.fresh("batch_f"), ctx.fresh("batch_col"), ctx.fresh("rois5")
    ctx.op("Cast", [batch], [index], to="FLOAT")
    ctx.op("ExpandDims", [index], [column], dims=[1])
    if ctx.dtype(rois) not in (None, np.dtype(np.float32)):
        cast = ctx.fresh("rois_f")
        ctx.op("Cast", [rois], [cast], to="FLOAT")
        rois = cast
    ctx.op("Concat", [column, rois], [rows, ctx.fresh("split_info")], axis=1)
    ctx.op("RoIAlign", [x, rows], [node.output(0)], spatial_scale=node.attr("spatial_scale", 1.0),
           pooled_h=node.attr("output_height", 1), pooled_w=node.attr("output_width", 1),
           sampling_ratio=node.attr("sampling_ratio", 0), aligned=int(transform == "half_pixel"),
           mode=node.attr("mode", "avg"))


@converter("Col2Im")
def _col2im(node, ctx):
    image = [int(v) for v in ctx.require(node.input(1), "Col2Im's image_shape")]
    block = [int(v) for v in ctx.require(node.input(2), "Col2Im's block_shape")]
    args = {k: list(node.attr(k)) for k in ("dilations", "pads", "strides") if node.has_attr(k)}
    ctx.op("Col2ImND", [node.input(0)], [node.output(0)], image_shape=image, block_shape=block, **args)


@converter("DeformConv")
def _deform_conv(node, ctx):
    inputs = [node.input(0), node.input(1), node.input(2)]
    if node.input(3) or node.input(4):
        if node.input(3):
            inputs.append(node.input(3))
        else:
            shape = ctx.shape(node.input(1))
            if not shape or shape[0] is None:
                raise Unsupported("DeformConv with a mask but no bias, of a filter of unknown shape")
            inputs.append(ctx.constant(np.zeros(shape[0], ctx.dtype(node.input(1)) or np.float32)))
    if node.input(4):
        inputs.append(node.input(4))
    args = {k: list(node.attr(k)) for k in ("dilations", "pads", "strides") if node.has_attr(k)}
    ctx.op("DeformConv", inputs, [node.output(0)], group=node.attr("group", 1),
           offset_group=node.attr("offset_group", 1), **args)


@converter("MaxRoiPool")
def _max_roi_pool(node, ctx):
    """Caffe2's RoIPool: the same rows [batch index, x1, y1, x2, y2] and Caffe's rounding."""
    pooled_h, pooled_w = node.attr("pooled_shape")
    ctx.op("RoIPool", [node.input(0), node.input(1)], [node.output(0)], is_test=1, pooled_h=pooled_h,
           pooled_w=pooled_w, spatial_scale=node.attr("spatial_scale", 1.0))
