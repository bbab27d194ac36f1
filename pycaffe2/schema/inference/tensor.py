"""Inference rules of the tensor family (reshapes, transposes, joins and splits,
channel shuffles, tiles, casts, copies), and each op's shape and arg checks.

The checks are plain functions of shapes, dtypes and args that raise ShapeError:
the rules call them with TensorInfo shapes, and the CPU kernels and CUDA
launchers (operators/tensor.py) with their arrays' shapes, so `validate` and a
run say the same words. Shapes that depend on the values of an input (a shape,
split or tiles given as a tensor) are unknown here, so those outputs are None.
`axis_index`, `canonical_axis`, `size` and `int_tensor` are shared with the
indexing, reduction and linalg families.
"""
from __future__ import annotations

import math

from pycaffe2.schema.args import DTYPE_BY_NUMBER
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

# TensorProto.DataType name -> NumPy dtype name (strings are object arrays). UINT32 and
# UINT64 are ONNX's, named only (Caffe2's enum has no number for them).
NUMPY_NAMES = {
    "FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "INT32": "int32",
    "INT64": "int64", "INT16": "int16", "INT8": "int8", "UINT16": "uint16", "UINT8": "uint8",
    "BYTE": "uint8", "BOOL": "bool", "STRING": "object", "UINT32": "uint32", "UINT64": "uint64",
}
ORDER_CHANNEL_AXIS = {"NCHW": 1, "NHWC": 3}


def size(dims) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return math.prod(dims)


def axis_index(axis: int, rank: int, what: str = "axis", where: str = "") -> int:
    """`axis` counted from the front; negative counts from the end of `rank` dims.
    `what` names the arg and `where` the input in the error message."""
    if not -rank <= axis < rank:
        detail = f" ({where})" if where else ""
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}{detail}")
    return axis % rank


def canonical_axis(op: OpView, axis: int, rank: int, what: str = "axis", where: str = "") -> int:
    """axis_index for rules holding an OpView (the linalg family's)."""
    return axis_index(axis, rank, what, where)


def int_tensor(name: str, shape, dtype: str, scalar: bool = False) -> None:
    """An input holding ints the op reads as args (a shape, sizes, starts, tiles...):
    1-D, of an integer type, and of one element when `scalar`."""
    if not dtype.startswith(("int", "uint")) or len(shape) != 1:
        raise ShapeError(f"input {name} must be a 1-D int tensor, got {list(shape)} {dtype}")
    if scalar and shape[0] != 1:
        raise ShapeError(f"input {name} must hold one value, got {shape[0]}")


def _check_int_inputs(inputs: list, names, scalar: bool = False) -> None:
    for info, name in zip(inputs, names):
        if info is not None:
            int_tensor(name, info.shape, info.dtype, scalar)


def arg_or_input(arg: str, given: bool, input_name: str, has_input: bool, needed: bool = True) -> None:
    """An arg that an input may give instead: never both, and (when `needed`) one of them."""
    if has_input and given:
        raise ShapeError(f"{arg} comes from input {input_name}; do not also give the `{arg}` arg")
    if needed and not (has_input or given):
        raise ShapeError(f"needs the `{arg}` arg or a {input_name} input")


# -- reshapes ---------------------------------------------------------------------------------

def reshaped_dims(dims: tuple, shape: list, allowzero: bool = False) -> tuple:
    """Reshape's new dims: a 0 copies the input dim at its position (a literal 0 with
    allowzero, ONNX's), one -1 is inferred. An empty input keeps Caffe2's rules for it:
    a 0 stays a 0 dim and a -1 becomes 0."""
    if allowzero:
        return _reshaped_allowzero(dims, shape)
    empty = size(dims) == 0
    out = []
    for index, dim in enumerate(shape):
        if dim == 0 and not empty:
            if index >= len(dims):
                raise ShapeError(f"shape {shape} copies dim {index} (0) but the "
                                 f"input {list(dims)} has only {len(dims)} dims")
            dim = dims[index]
        elif dim < -1:
            raise ShapeError(f"shape {shape} has a negative dim other than -1")
        out.append(dim)
    if out.count(-1) > 1:
        raise ShapeError(f"shape {shape} has more than one -1")
    known = size(d for d in out if d != -1)
    if -1 in out:
        if not empty and (known == 0 or size(dims) % known):
            raise ShapeError(f"cannot infer the -1 in {shape} for input {list(dims)}")
        out[out.index(-1)] = 0 if empty else size(dims) // known
    elif known != size(dims):
        raise ShapeError(f"input {list(dims)} has {size(dims)} elements, shape {shape} needs {known}")
    return tuple(out)


def _reshaped_allowzero(dims: tuple, shape: list) -> tuple:
    """ONNX's allowzero=1: every 0 is a 0 dim; a -1 beside a 0 cannot be inferred."""
    if any(d < -1 for d in shape) or list(shape).count(-1) > 1:
        raise ShapeError(f"shape {shape} has a negative dim other than one -1")
    known = size(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size(dims) % known:
            raise ShapeError(f"cannot infer the -1 in {shape} for input {list(dims)}")
        return tuple(size(dims) // known if d == -1 else d for d in shape)
    if known != size(dims):
        raise ShapeError(f"input {list(dims)} has {size(dims)} elements, shape {shape} needs {known}")
    return tuple(shape)


@rule("tensor_reshape")
def reshape(op: OpView, inputs: list) -> list:
    """Reshape: new shape from the `shape` arg (0 copies, -1 inferred); old shape as int64."""
    data = inputs[0]
    arg_or_input("shape", op.has("shape"), "new_shape", op.n_inputs > 1)
    _check_int_inputs(inputs[1:], ["new_shape"])
    if data is None:
        return [None, None]
    old_shape = TensorInfo((len(data.shape),), "int64")
    if op.n_inputs > 1:
        return [None, old_shape]
    dims = reshaped_dims(data.shape, list(op.arg("shape")), op.arg("allowzero"))
    return [TensorInfo(dims, data.dtype), old_shape]


def flattened_dims(dims: tuple, axis: int) -> tuple:
    """Flatten's [product of dims before axis, product of the rest]; axis is in [-rank,
    rank], a negative one counting from the end as in ONNX (-1: the last dim alone)."""
    if not -len(dims) <= axis <= len(dims):
        raise ShapeError(f"axis {axis} is out of range for rank {len(dims)} (input {list(dims)})")
    axis = axis + len(dims) if axis < 0 else axis
    return size(dims[:axis]), size(dims[axis:])


@rule("tensor_flatten")
def flatten(op: OpView, inputs: list) -> list:
    """Flatten: [product of dims before axis, product of the rest]."""
    data = inputs[0]
    return [None if data is None else TensorInfo(flattened_dims(data.shape, op.arg("axis")), data.dtype)]


@rule("tensor_flatten_to_vec")
def flatten_to_vec(op: OpView, inputs: list) -> list:
    """FlattenToVec: one dim holding every element."""
    data = inputs[0]
    return [None if data is None else TensorInfo((size(data.shape),), data.dtype)]


def same_size(dims: tuple, like: tuple) -> None:
    """ResizeLike: the data and the shape it takes hold as many elements."""
    if size(dims) != size(like):
        raise ShapeError(f"data {list(dims)} and shape_tensor {list(like)} hold different "
                         f"numbers of elements")


@rule("tensor_resize_like")
def resize_like(op: OpView, inputs: list) -> list:
    """ResizeLike: input 1's shape, input 0's type; the element counts must match."""
    data, like = inputs
    if data is None or like is None:
        return [None]
    same_size(data.shape, like.shape)
    return [TensorInfo(like.shape, data.dtype)]


def squeezed_dims(dims: tuple, squeeze) -> tuple:
    """Squeeze: `dims` without the listed ones (negative count from the end), which must
    have size 1; no dims listed drops every size-1 dim (ONNX's Squeeze without axes)."""
    if not squeeze:
        return tuple(d for d in dims if d != 1)
    for dim in squeeze:
        if not -len(dims) <= dim < len(dims) or dims[dim] != 1:
            raise ShapeError(f"dim {dim} of input {list(dims)} is not of size 1")
    squeeze = {dim % len(dims) for dim in squeeze}
    return tuple(d for i, d in enumerate(dims) if i not in squeeze)


def expanded_dims(dims: tuple, expand) -> tuple:
    """ExpandDims: size-1 dims inserted at the listed output positions (negative count
    from the end of the output)."""
    rank, given = len(dims) + len(set(expand)), list(expand)
    expand, shape = sorted({dim + rank if dim < 0 else dim for dim in expand}), list(dims)
    for dim in expand:
        if not 0 <= dim <= len(shape):
            raise ShapeError(f"cannot insert dim {dim} into input {list(dims)} (dims {given})")
        shape.insert(dim, 1)
    return tuple(shape)


@rule("tensor_squeeze")
def squeeze(op: OpView, inputs: list) -> list:
    """Squeeze: drops the listed dims (from the arg or the dims input), which must have size 1."""
    data = inputs[0]
    arg_or_input("dims", bool(op.arg("dims")), "dims", op.n_inputs > 1, needed=False)
    _check_int_inputs(inputs[1:], ["dims"])
    if data is None or op.n_inputs > 1:
        return [None]
    return [TensorInfo(squeezed_dims(data.shape, op.arg("dims")), data.dtype)]


@rule("tensor_expand_dims")
def expand_dims(op: OpView, inputs: list) -> list:
    """ExpandDims: inserts size-1 dims at the listed output positions (arg or dims input)."""
    data = inputs[0]
    arg_or_input("dims", bool(op.arg("dims")), "dims", op.n_inputs > 1)
    _check_int_inputs(inputs[1:], ["dims"])
    if data is None or op.n_inputs > 1:
        return [None]
    return [TensorInfo(expanded_dims(data.shape, op.arg("dims")), data.dtype)]


def transpose_axes(dims: tuple, axes) -> list[int]:
    """Transpose's permutation: `axes`, reversed dims by default."""
    axes = list(axes) if axes else list(range(len(dims) - 1, -1, -1))
    if sorted(axes) != list(range(len(dims))):
        raise ShapeError(f"axes {axes} is not a permutation of the {len(dims)} dims of "
                         f"input {list(dims)}")
    return axes


@rule("tensor_transpose")
def transpose(op: OpView, inputs: list) -> list:
    """Transpose: output dim i is input dim axes[i] (reversed by default)."""
    data = inputs[0]
    if data is None:
        return [None]
    axes = transpose_axes(data.shape, op.arg("axes"))
    return [TensorInfo(tuple(data.shape[a] for a in axes), data.dtype)]


# -- joins and splits -------------------------------------------------------------------------

def join_axis(axis, order) -> int:
    """Concat/Split axis before canonicalisation: `axis`, else the channel axis of `order`."""
    if axis is not None:
        if order is not None:
            raise ShapeError("give `axis` or `order`, not both")
        return axis
    return ORDER_CHANNEL_AXIS["NCHW" if order is None else order]


def concat_axis(shapes: list, dtypes: list, axis: int, add_axis: bool) -> int:
    """Concat's axis counted from the front (of the output); the inputs must agree on
    every other dim (on every dim with add_axis) and on the dtype."""
    first = shapes[0]
    axis = axis_index(axis, len(first) + (1 if add_axis else 0), where=f"input 0 {list(first)}")
    for index, (dims, dtype) in enumerate(zip(shapes[1:], dtypes[1:]), 1):
        same = len(dims) == len(first) and all(
            a == b for i, (a, b) in enumerate(zip(dims, first)) if add_axis or i != axis)
        if not same:
            where = "every dim" if add_axis else f"every dim but {axis}"
            raise ShapeError(f"input {index} is {list(dims)} but input 0 is {list(first)}: "
                             f"they must agree on {where}")
        if dtype != dtypes[0]:
            raise ShapeError(f"input {index} is {dtype} but input 0 is {dtypes[0]}")
    return axis


@rule("tensor_concat")
def concat(op: OpView, inputs: list) -> list:
    """Concat: sizes along the axis add up (add_axis stacks); split_info is int32 [n]."""
    split_info = TensorInfo((len(inputs),), "int32")
    axis_arg, add_axis = join_axis(op.arg("axis"), op.arg("order")), op.arg("add_axis")
    if any(info is None for info in inputs):
        return [None, split_info]
    first = inputs[0]
    axis = concat_axis([i.shape for i in inputs], [i.dtype for i in inputs], axis_arg, add_axis)
    if add_axis:
        shape = first.shape[:axis] + (len(inputs),) + first.shape[axis:]
    else:
        total = sum(info.shape[axis] for info in inputs)
        shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
    return [TensorInfo(shape, first.dtype), split_info]


def split_sizes(split, dim: int, count: int, uneven: bool = False) -> list[int]:
    """Each part's size along the axis: `split`, else `count` equal parts (with `uneven`,
    ONNX's num_outputs: parts of ceil(dim / count), the last one smaller)."""
    if split is None:
        if dim % count == 0:
            return [dim // count] * count
        chunk = -(-dim // count)
        if not uneven or dim - chunk * (count - 1) < 0:
            raise ShapeError(f"axis of size {dim} does not split into {count} "
                             f"{'parts of ' + str(chunk) if uneven else 'equal parts'}")
        return [chunk] * (count - 1) + [dim - chunk * (count - 1)]
    if len(split) != count:
        raise ShapeError(f"split {list(split)} gives {len(split)} sizes for {count} outputs")
    if min(split) < 0:
        raise ShapeError(f"split {list(split)} has a negative size")
    if sum(split) != dim:
        raise ShapeError(f"split {list(split)} adds up to {sum(split)}, but the axis has size {dim}")
    return list(split)


def split_parts(dims: tuple, axis: int, split, add_axis: bool, count: int,
                uneven: bool = False) -> tuple[int, list[int]]:
    """Split's axis counted from the front and each part's size along it."""
    axis = axis_index(axis, len(dims), where=f"input {list(dims)}")
    parts = split_sizes(split, dims[axis], count, uneven)
    if add_axis and any(part != 1 for part in parts):
        raise ShapeError(f"add_axis=1 needs parts of size 1 along axis {axis}, got {parts}")
    return axis, parts


@rule("tensor_split")
def split(op: OpView, inputs: list) -> list:
    """Split: sizes from `split` or equal parts; add_axis drops the (size 1) axis."""
    data = inputs[0]
    arg_or_input("split", op.has("split"), "split", op.n_inputs > 1, needed=False)
    _check_int_inputs(inputs[1:], ["split"])
    axis_arg = join_axis(op.arg("axis"), op.arg("order"))
    if data is None or op.n_inputs > 1:
        return [None] * op.n_outputs
    axis, sizes = split_parts(data.shape, axis_arg, op.arg("split"), op.arg("add_axis"), op.n_outputs,
                              op.arg("uneven"))
    if op.arg("add_axis"):
        return [TensorInfo(data.shape[:axis] + data.shape[axis + 1:], data.dtype)] * len(sizes)
    return [TensorInfo(data.shape[:axis] + (part,) + data.shape[axis + 1:], data.dtype)
            for part in sizes]


def shuffled_axis(dims: tuple, group: int, order: str) -> int:
    """ChannelShuffle's channel axis; `group` must divide the channels."""
    if len(dims) < 2:
        raise ShapeError(f"input {list(dims)} has no channel axis")
    axis = 1 if order == "NCHW" else len(dims) - 1
    if dims[axis] % group:
        raise ShapeError(f"group {group} does not divide the {dims[axis]} channels of "
                         f"input {list(dims)}")
    return axis


@rule("tensor_channel_shuffle")
def channel_shuffle(op: OpView, inputs: list) -> list:
    """ChannelShuffle and its gradient: same shape; `group` must divide the channels."""
    data = inputs[0]
    if data is not None:
        shuffled_axis(data.shape, op.arg("group"), op.arg("order"))
    return [data]


# -- tiles --------------------------------------------------------------------------------------

def tiled_axis(dims: tuple, tiles: int, axis: int) -> int:
    """Tile's axis counted from the front; at least one copy, of a tensor with axes."""
    if tiles < 1:
        raise ShapeError(f"tiles must be >= 1, got {tiles}")
    if not dims:
        raise ShapeError("cannot tile a scalar along an axis")
    return axis_index(axis, len(dims), where=f"input {list(dims)}")


def untiled_axis(dims: tuple, tiles: int, axis: int) -> int:
    """TileGradient's axis: dY must hold `tiles` copies along it."""
    axis = tiled_axis(dims, tiles, axis)
    if dims[axis] % tiles:
        raise ShapeError(f"dY {list(dims)} is not {tiles} copies along axis {axis}")
    return axis


def _tile_rule(op: OpView, inputs: list, axis_of, resize) -> list:
    data = inputs[0]
    _check_int_inputs(inputs[1:], ["tiles", "axis"], scalar=True)
    if data is None or op.n_inputs > 1:
        return [None]
    axis = axis_of(data.shape, op.arg("tiles"), op.arg("axis"))
    shape = list(data.shape)
    shape[axis] = resize(shape[axis], op.arg("tiles"))
    return [TensorInfo(tuple(shape), data.dtype)]


@rule("tensor_tile")
def tile(op: OpView, inputs: list) -> list:
    """Tile: dim `axis` times `tiles` (unknown when tiles or axis come from inputs)."""
    return _tile_rule(op, inputs, tiled_axis, lambda dim, tiles: dim * tiles)


@rule("tensor_tile_gradient")
def tile_gradient(op: OpView, inputs: list) -> list:
    """TileGradient: dim `axis` divided by `tiles`, which must divide it."""
    return _tile_rule(op, inputs, untiled_axis, lambda dim, tiles: dim // tiles)


# -- casts and shapes ---------------------------------------------------------------------------

def cast_dtype(to) -> str:
    """NumPy name of Cast's `to`, a TensorProto.DataType given by number or by name."""
    name = to.upper() if isinstance(to, str) else DTYPE_BY_NUMBER.get(to, str(to))
    if name not in NUMPY_NAMES:
        raise ShapeError(f"`to` {name} is not a data type a tensor can hold")
    return NUMPY_NAMES[name]


def cast_input(dims: tuple, dtype: str) -> None:
    """Cast converts numbers (and bools), not strings."""
    if dtype == "object" or dtype.startswith(("str", "bytes")):
        raise ShapeError(f"input {list(dims)} {dtype} is not numeric")


@rule("tensor_cast")
def cast(op: OpView, inputs: list) -> list:
    """Cast: input's shape, type `to`."""
    dtype, data = cast_dtype(op.arg("to")), inputs[0]
    if data is None:
        return [None]
    cast_input(data.shape, data.dtype)
    return [TensorInfo(data.shape, dtype)]


def shape_axes(dims: tuple, axes, start: int = 0, end: int | None = None) -> list[int]:
    """Shape's `axes` counted from the front (all dims when empty), or ONNX's slice
    start:end of the dims (negative counts from the end; clamped to the rank)."""
    if not axes:
        rank = len(dims)
        bounds = [min(max(b + rank if b < 0 else b, 0), rank) for b in (start, rank if end is None else end)]
        return list(range(*bounds))
    if start or end is not None:
        raise ShapeError("give `axes` or `start`/`end`, not both")
    return [axis_index(axis, len(dims), "axes entry", f"input {list(dims)}") for axis in axes]


@rule("tensor_shape")
def shape_op(op: OpView, inputs: list) -> list:
    """Shape: int64 [rank], [len(axes)] when `axes` is given, or the start:end slice's length."""
    data, axes = inputs[0], op.arg("axes")
    if data is not None:
        return [TensorInfo((len(shape_axes(data.shape, axes, op.arg("start"), op.arg("end"))),), "int64")]
    return [TensorInfo((len(axes),), "int64") if axes else None]
