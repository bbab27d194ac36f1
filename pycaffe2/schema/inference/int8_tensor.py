"""Inference rules of the int8_tensor family: the float ops' rules (tensor and
indexing) applied to the codes, the output shown as uint8; plus Int8Concat's default
axis, Int8Slice's dim/start_idx/end_idx and Int8ResizeNearest's size."""
from __future__ import annotations

from pycaffe2.schema.inference import RULES, OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.int8 import UINT8, check_blob_size
from pycaffe2.schema.inference.tensor import concat_axis


def _codes(info):
    return None if info is None else TensorInfo(info.shape, UINT8)


def _float_rule(name: str, op: OpView, inputs: list, args: dict | None = None) -> list:
    view = op if args is None else OpView(op.type, {**op.args, **args}, op.n_inputs, op.n_outputs)
    outputs = RULES[name](view, inputs)
    return [_codes(outputs[0])] + list(outputs[1:])


def int8_concat_axis(axis, order) -> int:
    """Int8Concat's axis: the arg, else 3 (NHWC), 1 (NCHW), or 0 without an order."""
    if axis is not None:
        return axis
    return {"NHWC": 3, "NCHW": 1}.get(order, 0)


def concat_shape(shapes: list, axis: int, add_axis: bool) -> tuple:
    axis = concat_axis(shapes, [UINT8] * len(shapes), axis, add_axis)
    first = shapes[0]
    if add_axis:
        return first[:axis] + (len(shapes),) + first[axis:]
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]


def slice_bounds(args: dict, rank: int):
    """(starts, ends) from starts/ends, or from dim/start_idx/end_idx (None when not given)."""
    by_dim = [args.get(name) for name in ("dim", "start_idx", "end_idx")]
    if all(v is None for v in by_dim):
        return args.get("starts"), args.get("ends")
    if any(v is None for v in by_dim):
        raise ShapeError("give all of dim, start_idx and end_idx, or none")
    dim, start, end = by_dim
    if dim >= rank:
        raise ShapeError(f"dim {dim} is out of range for data of rank {rank}")
    starts, ends = [0] * rank, [-1] * rank
    starts[dim], ends[dim] = start, end
    return starts, ends


def resized_shape(x_shape, height_scale: float, width_scale: float) -> tuple:
    if len(x_shape) != 4:
        raise ShapeError(f"X {list(x_shape)} must be an NHWC image [N, H, W, C]")
    n, h, w, c = x_shape
    shape = (n, int(h * height_scale), int(w * width_scale), c)
    check_blob_size(shape)
    return shape


@rule("int8_tensor_reshape")
def reshape(op: OpView, inputs: list) -> list:
    return _float_rule("tensor_reshape", op, inputs)


@rule("int8_tensor_flatten")
def flatten(op: OpView, inputs: list) -> list:
    return _float_rule("tensor_flatten", op, inputs)


@rule("int8_tensor_transpose")
def transpose(op: OpView, inputs: list) -> list:
    return _float_rule("tensor_transpose", op, inputs)


@rule("int8_tensor_channel_shuffle")
def channel_shuffle(op: OpView, inputs: list) -> list:
    return _float_rule("tensor_channel_shuffle", op, inputs)


@rule("int8_tensor_concat")
def concat(op: OpView, inputs: list) -> list:
    split_info = TensorInfo((len(inputs),), "int32")
    if any(info is None for info in inputs):
        return [None, split_info][:op.n_outputs]
    axis = int8_concat_axis(op.arg("axis"), op.arg("order"))
    shape = concat_shape([info.shape for info in inputs], axis, op.arg("add_axis"))
    return [TensorInfo(shape, UINT8), split_info][:op.n_outputs]


@rule("int8_tensor_slice")
def slice_op(op: OpView, inputs: list) -> list:
    data = inputs[0]
    if data is None or op.n_inputs > 1:
        return _float_rule("indexing_slice", op, inputs) if op.n_inputs > 1 else [None]
    starts, ends = slice_bounds(op.args, len(data.shape))
    return _float_rule("indexing_slice", op, inputs, {"starts": starts, "ends": ends})


@rule("int8_tensor_resize_nearest")
def resize_nearest(op: OpView, inputs: list) -> list:
    x = inputs[0]
    if x is None:
        return [None]
    return [TensorInfo(resized_shape(x.shape, op.arg("height_scale"), op.arg("width_scale")), UINT8)]
