"""ONNX -> pycaffe2 converters of the tensor layout ops: casts, reshapes, squeezes,
transposes, joins and splits, broadcasts and tiles, pads, shapes and sizes, the
fills (ConstantOfShape, Range, EyeLike), Trilu, DepthToSpace / SpaceToDepth,
CenterCropPad and Identity.

Caffe2's ops and args are used where they fit (Reshape, Flatten, Squeeze,
ExpandDims, Transpose, Concat, Split, Expand, NumpyTile, Cast, Shape, Size,
ConstantFill, Range); the rest are pycaffe2's tensor_extra ops. Attribute-like
inputs go in as runtime inputs wherever the pycaffe2 op takes one (Reshape's
shape, Split's split, Expand's shape, Pad's pads, Trilu's k...), so the net stays
static, and no converter here needs a value at translation time.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from pycaffe2.onnx.registry import Unsupported, converter

# ONNX TensorProto.DataType -> the type name pycaffe2's Cast takes (Caffe2's names,
# plus UINT32 and UINT64, which Caffe2's enum lacks and Cast takes by name).
ONNX_TYPE_NAMES = {
    1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
}
NUMPY_TYPE_NAMES = {
    "float32": "FLOAT", "uint8": "UINT8", "int8": "INT8", "uint16": "UINT16", "int16": "INT16",
    "int32": "INT32", "int64": "INT64", "bool": "BOOL", "float16": "FLOAT16", "float64": "DOUBLE",
    "uint32": "UINT32", "uint64": "UINT64",
}
# Cast names ConstantFill's `dtype` (a Caffe2 TensorProto.DataType) has too.
FILL_TYPES = {"FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "BOOL", "FLOAT16", "DOUBLE"}


def onnx_type_name(to, what: str = "to") -> str:
    """The pycaffe2 type name of an ONNX data type (a number, or a name as Cast-1 wrote it)."""
    if isinstance(to, str):
        name = to.upper()
        if name in ONNX_TYPE_NAMES.values():
            return name
    elif to in ONNX_TYPE_NAMES:
        return ONNX_TYPE_NAMES[to]
    shown = TensorProto.DataType.Name(to) if to in TensorProto.DataType.values() else to
    raise Unsupported(f"{what} {shown} (pycaffe2 tensors hold {', '.join(ONNX_TYPE_NAMES.values())})")


def numpy_type_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in NUMPY_TYPE_NAMES:
        raise Unsupported(f"data type {name}")
    return NUMPY_TYPE_NAMES[name]


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


# -- casts ------------------------------------------------------------------------------

@converter("Cast")
def _cast(node, ctx):
    ctx.op("Cast", [node.input(0)], node.outputs, to=onnx_type_name(node.attr("to")))


@converter("CastLike")
def _cast_like(node, ctx):
    dtype = ctx.dtype(node.input(1))
    if dtype is None:  # the target's type is known only at run time
        ctx.op("CastLike", [node.input(0), node.input(1)], node.outputs)
    else:
        ctx.op("Cast", [node.input(0)], node.outputs, to=numpy_type_name(dtype))


@converter("Identity")
def _identity(node, ctx):
    ctx.op("Copy", [node.input(0)], node.outputs)


# -- reshapes -----------------------------------------------------------------------------

@converter("Reshape", since=5)
def _reshape(node, ctx):
    ctx.op("Reshape", [node.input(0), node.input(1)], node.outputs[:1],
           allowzero=node.attr("allowzero", 0))


@converter("Reshape")
def _reshape1(node, ctx):
    ctx.op("Reshape", [node.input(0)], node.outputs[:1], shape=node.attr("shape"))


@converter("Flatten")
def _flatten(node, ctx):
    ctx.op("Flatten", [node.input(0)], node.outputs, axis=node.attr("axis", 1))


def _dims(node, ctx) -> tuple[list[str], dict]:
    """Squeeze's / ExpandDims's (extra inputs, args) from the axes attribute (opset < 13)
    or input 1: its values as the arg when known, else the input read at run time."""
    if node.opset < 13 or node.has_attr("axes"):
        axes = node.attr("axes")
        return [], ({"dims": list(axes)} if axes else {})
    name = node.input(1)
    if name is None:
        return [], {}
    axes = ctx.value(name)
    if axes is None:
        return [name], {}
    return [], ({"dims": _ints(axes)} if axes.size else {})


@converter("Squeeze")
def _squeeze(node, ctx):
    extra, args = _dims(node, ctx)
    ctx.op("Squeeze", [node.input(0), *extra], node.outputs, **args)


@converter("Unsqueeze")
def _unsqueeze(node, ctx):
    extra, args = _dims(node, ctx)
    if not (extra or args):
        raise Unsupported("Unsqueeze without axes")
    ctx.op("ExpandDims", [node.input(0), *extra], node.outputs, **args)


@converter("Transpose")
def _transpose(node, ctx):
    perm = node.attr("perm")
    ctx.op("Transpose", [node.input(0)], node.outputs, **({"axes": list(perm)} if perm else {}))


# -- joins and splits ---------------------------------------------------------------------------

@converter("Concat")
def _concat(node, ctx):
    inputs = [name for name in node.inputs if name]
    ctx.op("Concat", inputs, [node.output(0), ctx.fresh("concat_split_info")],
           axis=node.attr("axis", 1))


@converter("Split")
def _split(node, ctx):
    axis, outputs = node.attr("axis", 0), list(node.outputs)
    if node.input(1) is not None and (node.opset >= 13 or node.opset < 2):
        ctx.op("Split", [node.input(0), node.input(1)], outputs, axis=axis)
        return
    split = node.attr("split")
    if split:
        ctx.op("Split", [node.input(0)], outputs, axis=axis, split=list(split))
        return
    count = node.attr("num_outputs", len(outputs))
    if count != len(outputs):
        raise Unsupported(f"num_outputs {count} for {len(outputs)} outputs")
    # num_outputs (opset 18): parts of ceil(size / count), the last one smaller
    ctx.op("Split", [node.input(0)], outputs, axis=axis, uneven=int(node.has_attr("num_outputs")))


# -- broadcasts, tiles and pads -----------------------------------------------------------------

@converter("Expand")
def _expand(node, ctx):
    ctx.op("Expand", [node.input(0), node.input(1)], node.outputs)


@converter("Tile", since=6)
def _tile(node, ctx):
    ctx.op("NumpyTile", [node.input(0), node.input(1)], node.outputs)


@converter("Tile")
def _tile1(node, ctx):
    # Tile-1 is Caffe2's: tiles and axis as one-element inputs.
    ctx.op("Tile", [node.input(0), node.input(1), node.input(2)], node.outputs)


@converter("Pad", since=11)
def _pad(node, ctx):
    inputs = [node.input(0), node.input(1)]
    if node.input(3) is not None:  # axes: constant_value's slot must be filled
        inputs += [node.input(2) or ctx.constant(np.zeros((), np.float32)), node.input(3)]
    elif node.input(2) is not None:
        inputs.append(node.input(2))
    ctx.op("Pad", inputs, node.outputs, mode=node.attr("mode", "constant"))


@converter("Pad")
def _pad2(node, ctx):
    pads = node.attr("pads", node.attr("paddings"))
    ctx.op("Pad", [node.input(0)], node.outputs, mode=node.attr("mode", "constant"),
           pads=list(pads), value=float(node.attr("value", 0.0)))


@converter("CenterCropPad")
def _center_crop_pad(node, ctx):
    axes = node.attr("axes")
    ctx.op("CenterCropPad", [node.input(0), node.input(1)], node.outputs,
           **({"axes": list(axes)} if axes else {}))


# -- shapes ----------------------------------------------------------------------------------------

@converter("Shape")
def _shape(node, ctx):
    args = {}
    if node.has_attr("start"):
        args["start"] = node.attr("start")
    if node.has_attr("end"):
        args["end"] = node.attr("end")
    ctx.op("Shape", [node.input(0)], node.outputs, **args)


@converter("Size")
def _size(node, ctx):
    ctx.op("Size", [node.input(0)], node.outputs)


# -- fills -------------------------------------------------------------------------------------------

@converter("ConstantOfShape")
def _constant_of_shape(node, ctx):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    if value.size != 1:
        raise Unsupported(f"value of {value.size} elements (one is needed)")
    name = numpy_type_name(value.dtype)
    item = value.reshape(-1)[0].item()
    fill_name = name if name in FILL_TYPES else "INT64"
    if isinstance(item, bool) or name in ("UINT32", "UINT64") or value.dtype.kind in "iu":
        item = int(item)
    out = node.output(0) if fill_name == name else ctx.fresh("constant_of_shape")
    ctx.op("ConstantFill", [node.input(0)], [out], input_as_shape=1, value=item, dtype=fill_name)
    if out != node.output(0):  # UINT32/UINT64: ConstantFill's dtype has no number for them
        ctx.op("Cast", [out], [node.output(0)], to=name)


@converter("Range")
def _range(node, ctx):
    ctx.op("Range", [node.input(0), node.input(1), node.input(2)], node.outputs)


@converter("EyeLike")
def _eye_like(node, ctx):
    args = {"k": node.attr("k", 0)}
    if node.has_attr("dtype"):
        args["dtype"] = onnx_type_name(node.attr("dtype"), "dtype")
    ctx.op("EyeLike", [node.input(0)], node.outputs, **args)


@converter("Trilu")
def _trilu(node, ctx):
    inputs = [node.input(0)] + ([node.input(1)] if node.input(1) is not None else [])
    ctx.op("Trilu", inputs, node.outputs, upper=node.attr("upper", 1))


@converter("DepthToSpace", "SpaceToDepth")
def _depth_space(node, ctx):
    ctx.op(node.op_type, [node.input(0)], node.outputs, blocksize=node.attr("blocksize"),
           mode=node.attr("mode", "DCR"))
