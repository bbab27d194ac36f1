"""Inference rules of the tensor family (reshapes, joins, slices, casts, gathers).

Shapes that depend on the values of an input (a shape, split or slice given
as a tensor) are unknown here, so those outputs are None. `canonical_axis`
and `size` are shared with the reduction and linalg families.
"""
from __future__ import annotations

import math

from pycaffe2.schema.args import DTYPE_BY_NUMBER
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

INDEX_TYPES = ("int32", "int64")
# TensorProto.DataType name -> NumPy dtype name (strings are object arrays).
NUMPY_NAMES = {
    "FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "INT32": "int32",
    "INT64": "int64", "INT16": "int16", "INT8": "int8", "UINT16": "uint16", "UINT8": "uint8",
    "BYTE": "uint8", "BOOL": "bool", "STRING": "object",
}
ORDER_CHANNEL_AXIS = {"NCHW": 1, "NHWC": 3}


def size(dims) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return math.prod(dims)


def canonical_axis(op: OpView, axis: int, rank: int, what: str = "axis", where: str = "") -> int:
    """`axis` counted from the front; negative counts from the end of `rank` dims.
    `what` names the arg and `where` the input in the error message."""
    if not -rank <= axis < rank:
        detail = f" ({where})" if where else ""
        raise ShapeError(f"{op.type}: {what} {axis} is out of range for rank {rank}{detail}")
    return axis % rank


def _order_axis(op: OpView) -> int:
    """Concat/Split axis: the `axis` arg, else the channel axis of `order`."""
    if op.has("axis"):
        if op.has("order"):
            raise ShapeError(f"{op.type}: give `axis` or `order`, not both")
        return op.arg("axis")
    return ORDER_CHANNEL_AXIS[op.arg("order", "NCHW")]


def reshaped_dims(op_type: str, dims: tuple, shape: list) -> tuple:
    """Reshape's new dims: a 0 copies the input dim at its position, one -1 is inferred.
    Shared with the Reshape kernel (the shape may come from an input there)."""
    out = []
    for index, dim in enumerate(shape):
        if dim == 0:
            if index >= len(dims):
                raise ShapeError(f"{op_type}: shape {shape} copies dim {index} (0) but the "
                                 f"input {list(dims)} has only {len(dims)} dims")
            dim = dims[index]
        elif dim < -1:
            raise ShapeError(f"{op_type}: shape {shape} has a negative dim other than -1")
        out.append(dim)
    if out.count(-1) > 1:
        raise ShapeError(f"{op_type}: shape {shape} has more than one -1")
    known = size(d for d in out if d != -1)
    if -1 in out:
        if known == 0 or size(dims) % known:
            raise ShapeError(f"{op_type}: cannot infer the -1 in {shape} for input {list(dims)}")
        out[out.index(-1)] = size(dims) // known
    elif known != size(dims):
        raise ShapeError(f"{op_type}: input {list(dims)} has {size(dims)} elements, "
                         f"shape {shape} needs {known}")
    return tuple(out)


@rule("tensor_reshape")
def reshape(op: OpView, inputs: list) -> list:
    """Reshape: new shape from the `shape` arg (0 copies, -1 inferred); old shape as int64."""
    data = inputs[0]
    if op.n_inputs > 1 and op.has("shape"):
        raise ShapeError(f"{op.type}: the new shape comes from input 1; do not also give `shape`")
    if op.n_inputs == 1 and not op.has("shape"):
        raise ShapeError(f"{op.type}: needs the `shape` arg or a second input")
    if data is None:
        return [None, None]
    old_shape = TensorInfo((len(data.shape),), "int64")
    if op.n_inputs > 1:
        return [None, old_shape]
    return [TensorInfo(reshaped_dims(op.type, data.shape, list(op.arg("shape"))), data.dtype), old_shape]


@rule("tensor_flatten")
def flatten(op: OpView, inputs: list) -> list:
    """Flatten: [product of dims before axis, product of the rest]."""
    data = inputs[0]
    if data is None:
        return [None]
    rank = len(data.shape)
    axis = canonical_axis(op, op.arg("axis"), rank + 1, where=f"input {list(data.shape)}")
    return [TensorInfo((size(data.shape[:axis]), size(data.shape[axis:])), data.dtype)]


@rule("tensor_flatten_to_vec")
def flatten_to_vec(op: OpView, inputs: list) -> list:
    """FlattenToVec: one dim holding every element."""
    data = inputs[0]
    return [None if data is None else TensorInfo((size(data.shape),), data.dtype)]


@rule("tensor_resize_like")
def resize_like(op: OpView, inputs: list) -> list:
    """ResizeLike: input 1's shape, input 0's type; the element counts must match."""
    data, like = inputs
    if data is None or like is None:
        return [None]
    if size(data.shape) != size(like.shape):
        raise ShapeError(f"{op.type}: data {list(data.shape)} and shape_tensor "
                         f"{list(like.shape)} hold different numbers of elements")
    return [TensorInfo(like.shape, data.dtype)]


@rule("tensor_transpose")
def transpose(op: OpView, inputs: list) -> list:
    """Transpose: output dim i is input dim axes[i] (reversed by default)."""
    data = inputs[0]
    if data is None:
        return [None]
    rank = len(data.shape)
    axes = list(op.arg("axes") or range(rank - 1, -1, -1))
    if sorted(axes) != list(range(rank)):
        raise ShapeError(f"{op.type}: axes {axes} is not a permutation of the "
                         f"{rank} dims of input {list(data.shape)}")
    return [TensorInfo(tuple(data.shape[a] for a in axes), data.dtype)]


def _check_concat_input(op: OpView, first, index: int, info, axis: int | None) -> None:
    same = len(info.shape) == len(first.shape) and all(
        a == b for i, (a, b) in enumerate(zip(first.shape, info.shape)) if i != axis)
    if not same:
        where = "every dim" if axis is None else f"every dim but {axis}"
        raise ShapeError(f"{op.type}: input {index} is {list(info.shape)} but input 0 is "
                         f"{list(first.shape)}: they must agree on {where}")


@rule("tensor_concat")
def concat(op: OpView, inputs: list) -> list:
    """Concat: sizes along the axis add up (add_axis stacks); split_info is int32 [n]."""
    split_info = TensorInfo((len(inputs),), "int32")
    axis_arg, add_axis = _order_axis(op), op.arg("add_axis")
    if any(info is None for info in inputs):
        return [None, split_info]
    first = inputs[0]
    axis = canonical_axis(op, axis_arg, len(first.shape) + (1 if add_axis else 0))
    for index, info in enumerate(inputs[1:], 1):
        _check_concat_input(op, first, index, info, None if add_axis else axis)
    if add_axis:
        shape = first.shape[:axis] + (len(inputs),) + first.shape[axis:]
    else:
        total = sum(info.shape[axis] for info in inputs)
        shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
    return [TensorInfo(shape, first.dtype), split_info]


def _split_sizes(op: OpView, dim: int) -> list:
    sizes = op.arg("split")
    if sizes:
        if len(sizes) != op.n_outputs:
            raise ShapeError(f"{op.type}: split {sizes} gives {len(sizes)} sizes "
                             f"for {op.n_outputs} outputs")
        if sum(sizes) != dim:
            raise ShapeError(f"{op.type}: split {sizes} adds up to {sum(sizes)}, "
                             f"but the axis has size {dim}")
        return list(sizes)
    if dim % op.n_outputs:
        raise ShapeError(f"{op.type}: axis of size {dim} does not split into "
                         f"{op.n_outputs} equal parts")
    return [dim // op.n_outputs] * op.n_outputs


@rule("tensor_split")
def split(op: OpView, inputs: list) -> list:
    """Split: sizes from `split` or equal parts; add_axis drops the (size 1) axis."""
    data = inputs[0]
    if op.n_inputs > 1 and op.has("split"):
        raise ShapeError(f"{op.type}: the sizes come from input 1; do not also give `split`")
    axis_arg = _order_axis(op)
    if data is None or op.n_inputs > 1:
        return [None] * op.n_outputs
    axis = canonical_axis(op, axis_arg, len(data.shape))
    sizes = _split_sizes(op, data.shape[axis])
    if op.arg("add_axis"):
        if any(part != 1 for part in sizes):
            raise ShapeError(f"{op.type}: add_axis=1 needs parts of size 1 along axis {axis}, "
                             f"got {sizes}")
        return [TensorInfo(data.shape[:axis] + data.shape[axis + 1:], data.dtype)] * len(sizes)
    return [TensorInfo(data.shape[:axis] + (part,) + data.shape[axis + 1:], data.dtype)
            for part in sizes]


@rule("tensor_channel_shuffle")
def channel_shuffle(op: OpView, inputs: list) -> list:
    """ChannelShuffle and its gradient: same shape; `group` must divide the channels."""
    data = inputs[0]
    if data is None:
        return [None]
    if len(data.shape) < 2:
        raise ShapeError(f"{op.type}: input {list(data.shape)} has no channel axis")
    channels = data.shape[1 if op.arg("order") == "NCHW" else -1]
    if channels % op.arg("group"):
        raise ShapeError(f"{op.type}: group {op.arg('group')} does not divide the "
                         f"{channels} channels of input {list(data.shape)}")
    return [data]


def slice_bounds(op_type: str, dim: int, start: int, end: int) -> tuple[int, int]:
    """Caffe2's [start, end) in a dim: negatives count from one past the end, values
    past the end are clipped. Shared with the Slice kernels."""
    if dim == 0:
        return 0, 0
    start = dim + 1 + start if start < 0 else start
    end = dim + 1 + end if end < 0 else end
    start, end = min(start, dim), min(end, dim)
    if start < 0 or end < start:
        raise ShapeError(f"{op_type}: [{start}, {end}) is not a slice of a dim of size {dim}")
    return start, end


@rule("tensor_slice")
def slice_op(op: OpView, inputs: list) -> list:
    """Slice: Caffe2 index rules (negative counts from one past the end); one dim cut at most."""
    data = inputs[0]
    if op.n_inputs > 1:
        return [None]
    starts, ends = op.arg("starts") or [], op.arg("ends") or []
    if len(starts) != len(ends):
        raise ShapeError(f"{op.type}: starts {starts} and ends {ends} differ in length")
    if data is None:
        return [None]
    if len(starts) > len(data.shape):
        raise ShapeError(f"{op.type}: {len(starts)} starts for input {list(data.shape)} "
                         f"of rank {len(data.shape)}")
    shape = list(data.shape)
    for index, (start, end) in enumerate(zip(starts, ends)):
        start, end = slice_bounds(op.type, shape[index], start, end)
        shape[index] = end - start
    cut = [i for i, (a, b) in enumerate(zip(shape, data.shape)) if a != b]
    if len(cut) > 1:
        raise ShapeError(f"{op.type}: only one dim may be sliced, starts {starts} and ends "
                         f"{ends} cut dims {cut} of input {list(data.shape)}")
    return [TensorInfo(tuple(shape), data.dtype)]


@rule("tensor_squeeze")
def squeeze(op: OpView, inputs: list) -> list:
    """Squeeze: drops the listed dims, which must have size 1."""
    data = inputs[0]
    if data is None:
        return [None]
    dims = sorted(set(op.arg("dims")))
    for dim in dims:
        if dim >= len(data.shape) or data.shape[dim] != 1:
            raise ShapeError(f"{op.type}: dim {dim} of input {list(data.shape)} is not of size 1")
    return [TensorInfo(tuple(d for i, d in enumerate(data.shape) if i not in dims), data.dtype)]


@rule("tensor_expand_dims")
def expand_dims(op: OpView, inputs: list) -> list:
    """ExpandDims: inserts size-1 dims at the listed output positions."""
    data = inputs[0]
    if data is None:
        return [None]
    dims = sorted(set(op.arg("dims")))
    shape = list(data.shape)
    for dim in dims:
        if dim > len(shape):
            raise ShapeError(f"{op.type}: cannot insert dim {dim} into input "
                             f"{list(data.shape)} (dims {dims})")
        shape.insert(dim, 1)
    return [TensorInfo(tuple(shape), data.dtype)]


def dtype_name(op: OpView, value) -> str:
    """NumPy name of a TensorProto.DataType given by number or by name."""
    name = value.upper() if isinstance(value, str) else DTYPE_BY_NUMBER.get(value, str(value))
    if name not in NUMPY_NAMES:
        raise ShapeError(f"{op.type}: {name} is not a data type a tensor can hold")
    return NUMPY_NAMES[name]


@rule("tensor_cast")
def cast(op: OpView, inputs: list) -> list:
    """Cast: input's shape, type `to`."""
    dtype = dtype_name(op, op.arg("to"))
    data = inputs[0]
    return [None if data is None else TensorInfo(data.shape, dtype)]


def _check_indices(op: OpView, indices) -> None:
    if indices is not None and indices.dtype not in INDEX_TYPES:
        raise ShapeError(f"{op.type}: indices must be int32 or int64, got {indices.describe()}")


@rule("tensor_gather")
def gather(op: OpView, inputs: list) -> list:
    """Gather: DATA dims before axis + INDICES' shape + DATA dims after axis."""
    data, indices = inputs
    _check_indices(op, indices)
    if data is None or indices is None:
        return [None]
    if not data.shape:
        raise ShapeError(f"{op.type}: DATA must have rank >= 1, got {list(data.shape)}")
    axis = canonical_axis(op, op.arg("axis"), len(data.shape))
    index_shape = indices.shape
    if op.arg("match_outer"):
        if indices.shape[:axis] != data.shape[:axis]:
            raise ShapeError(f"{op.type}: with match_outer INDICES {list(indices.shape)} must "
                             f"start with DATA's dims before axis {list(data.shape[:axis])}")
        index_shape = indices.shape[axis:]
    return [TensorInfo(data.shape[:axis] + index_shape + data.shape[axis + 1:], data.dtype)]


@rule("tensor_sparse_to_dense")
def sparse_to_dense(op: OpView, inputs: list) -> list:
    """SparseToDense: [first dim, values' dims after the first]; indices 1-D, one per row."""
    indices, values = inputs[0], inputs[1]
    like = inputs[2] if len(inputs) > 2 else None
    _check_indices(op, indices)
    if op.n_inputs > 2 and op.arg("output_first_dim"):
        raise ShapeError(f"{op.type}: the first dim comes from data_to_infer_dim; "
                         "do not also give output_first_dim")
    if indices is not None and len(indices.shape) != 1:
        raise ShapeError(f"{op.type}: indices must be 1-D, got {list(indices.shape)}")
    if values is None:
        return [None]
    if indices is not None and (not values.shape or values.shape[0] != indices.shape[0]):
        raise ShapeError(f"{op.type}: values {list(values.shape)} must have one row per "
                         f"index ({indices.shape[0]})")
    if op.n_inputs > 2:
        first = None if like is None or not like.shape else like.shape[0]
    else:
        first = op.arg("output_first_dim") or None
    return [None if first is None else TensorInfo((first,) + values.shape[1:], values.dtype)]


@rule("tensor_shape")
def shape_op(op: OpView, inputs: list) -> list:
    """Shape: int64 [rank], or [len(axes)] when `axes` is given."""
    data, axes = inputs[0], op.arg("axes")
    if axes and data is not None:
        for axis in axes:
            canonical_axis(op, axis, len(data.shape), "axes entry")
    if axes:
        return [TensorInfo((len(axes),), "int64")]
    return [None if data is None else TensorInfo((len(data.shape),), "int64")]


def _tiled_axis(op: OpView, data) -> int:
    if not data.shape:
        raise ShapeError(f"{op.type}: cannot tile a scalar along an axis")
    return canonical_axis(op, op.arg("axis"), len(data.shape))


@rule("tensor_tile")
def tile(op: OpView, inputs: list) -> list:
    """Tile: dim `axis` times `tiles` (unknown when tiles or axis come from inputs)."""
    data = inputs[0]
    if data is None or op.n_inputs > 1:
        return [None]
    axis = _tiled_axis(op, data)
    shape = list(data.shape)
    shape[axis] *= op.arg("tiles")
    return [TensorInfo(tuple(shape), data.dtype)]


@rule("tensor_tile_gradient")
def tile_gradient(op: OpView, inputs: list) -> list:
    """TileGradient: dim `axis` divided by `tiles`, which must divide it."""
    grad = inputs[0]
    if grad is None or op.n_inputs > 1:
        return [None]
    axis, tiles = _tiled_axis(op, grad), op.arg("tiles")
    if grad.shape[axis] % tiles:
        raise ShapeError(f"{op.type}: dY {list(grad.shape)} is not {tiles} copies "
                         f"along axis {axis}")
    shape = list(grad.shape)
    shape[axis] //= tiles
    return [TensorInfo(tuple(shape), grad.dtype)]
