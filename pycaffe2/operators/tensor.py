"""Tensor manipulation kernels (NumPy): reshapes, transposes, joins and splits,
slices, casts, gathers, tiles and identity copies. Most of them only move data,
so they return NumPy views of their inputs where that is possible (nothing
mutates an array in place, so a view is as good as a copy). Shapes or sizes
that come from an input tensor follow the same rules as the `shape`, `split`,
`starts`/`ends`, `tiles` and `axis` args; the reshape and slice index rules are
shared with the family's shape inference so the two cannot drift apart.
The CUDA launchers (at the end; kernels in tensor.cu) reuse each op's checks, so a
bad input gives the same error on both devices.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._strided import _collapse, _device_ints
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.inference.tensor import ORDER_CHANNEL_AXIS, reshaped_dims, slice_bounds
from pycaffe2.tensor_proto import dtype_of


def _axis(op_type: str, axis: int, rank: int, where: str) -> int:
    """`axis` counted from the front (negative counts from the end of `rank` dims)."""
    if not -rank <= axis < rank:
        raise ValueError(f"{op_type}: axis {axis} is out of range for {where}")
    return axis % rank


def _int_list(op_type: str, tensor: np.ndarray, name: str) -> list[int]:
    """A 1-D integer tensor input (a shape, sizes, starts...) as Python ints."""
    tensor = cuda.copy_to_cpu(tensor) if cuda.is_gpu_array(tensor) else np.asarray(tensor)
    if tensor.dtype.kind not in "iu" or tensor.ndim != 1:
        raise ValueError(f"{op_type}: input {name} must be a 1-D int tensor, got "
                         f"{list(tensor.shape)} {tensor.dtype}")
    return [int(v) for v in tensor]


def _int_scalar(op_type: str, tensor: np.ndarray, name: str) -> int:
    values = _int_list(op_type, tensor, name)
    if len(values) != 1:
        raise ValueError(f"{op_type}: input {name} must hold one value, got {len(values)}")
    return values[0]


# -- reshapes (one kernel for both devices: they read only shapes, see _on_gpu) -----

@register_cpu("Reshape")
def reshape(data, new_shape=None, *, shape):
    if new_shape is not None:
        if shape is not None:
            raise ValueError("Reshape: the new shape comes from input new_shape; "
                             "do not also give the `shape` arg")
        shape = _int_list("Reshape", new_shape, "new_shape")
    elif shape is None:
        raise ValueError("Reshape: needs the `shape` arg or a new_shape input")
    reshaped = cuda.reshape(data, reshaped_dims("Reshape", data.shape, list(shape)))
    return reshaped, np.array(data.shape, dtype=np.int64)


@register_gradient("Reshape")
def _reshape_gradient(g):
    # Reshape dY back to the old shape (output 1); the forward `shape` arg must stay behind.
    return [g.Op("Reshape", [g.GO(0), g.O(1)], [g.GI(0), f"_{g.I(0)}_dims"], inherit_args=False)]


@register_cpu("Flatten")
def flatten(x, *, axis):
    axis = _axis("Flatten", axis, x.ndim + 1, f"input {list(x.shape)}")
    return cuda.reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


@register_cpu("FlattenToVec")
def flatten_to_vec(x):
    return cuda.reshape(x, (x.size,))


gradient_op("Flatten", "GO0 I0", gradient_type="ResizeLike")
gradient_op("FlattenToVec", "GO0 I0", gradient_type="ResizeLike")


@register_cpu("ResizeLike")
def resize_like(data, like):
    if data.size != like.size:
        raise ValueError(f"ResizeLike: data {list(data.shape)} and shape_tensor "
                         f"{list(like.shape)} hold different numbers of elements")
    return cuda.reshape(data, like.shape)


@register_cpu("Squeeze")
def squeeze(data, *, dims):
    dims = sorted(set(dims))
    for dim in dims:
        if dim >= data.ndim or data.shape[dim] != 1:
            raise ValueError(f"Squeeze: dim {dim} of input {list(data.shape)} is not of size 1")
    return cuda.reshape(data, [d for i, d in enumerate(data.shape) if i not in dims])


gradient_op("Squeeze", "GO0", gradient_type="ExpandDims")  # same dims: input numbering = output's


@register_cpu("ExpandDims")
def expand_dims(data, *, dims):
    shape = list(data.shape)
    for dim in sorted(set(dims)):
        if dim > len(shape):
            raise ValueError(f"ExpandDims: cannot insert dim {dim} into input "
                             f"{list(data.shape)} (dims {sorted(set(dims))})")
        shape.insert(dim, 1)
    return cuda.reshape(data, shape)


gradient_op("ExpandDims", "GO0", gradient_type="Squeeze")


@register_cpu("Transpose")
def transpose(data, *, axes):
    axes = _transpose_axes(data, axes)
    # Caffe2 writes a new contiguous tensor; so do we (a strided view would
    # make every later consumer pay for the scattered reads). Not ascontiguousarray:
    # it makes a 0-d input 1-d.
    return data.transpose(axes).copy()


def _transpose_axes(data, axes) -> list[int]:
    axes = list(axes) if axes else list(range(data.ndim - 1, -1, -1))
    if sorted(axes) != list(range(data.ndim)):
        raise ValueError(f"Transpose: axes {axes} is not a permutation of the "
                         f"{data.ndim} dims of input {list(data.shape)}")
    return axes


@register_gradient("Transpose")
def _transpose_gradient(g):
    axes = g.arg("axes")
    if not axes:  # reversing the dims is its own inverse
        return [g.Op("Transpose", [g.GO(0)], [g.GI(0)])]
    return [g.Op("Transpose", [g.GO(0)], [g.GI(0)], axes=[int(i) for i in np.argsort(axes)])]


# -- joins and splits -----------------------------------------------------------

def _join_axis(op_type: str, axis, order) -> int:
    """Concat/Split axis before canonicalisation: `axis`, else the channel axis of `order`."""
    if axis is not None:
        if order is not None:
            raise ValueError(f"{op_type}: give `axis` or `order`, not both")
        return axis
    return ORDER_CHANNEL_AXIS["NCHW" if order is None else order]


@register_cpu("Concat", "DepthConcat")
def concat(*inputs, axis, order, add_axis):
    axis = _concat_axis(inputs, axis, order, add_axis)
    if add_axis:
        return np.stack(inputs, axis=axis), np.ones(len(inputs), dtype=np.int32)
    sizes = np.array([x.shape[axis] for x in inputs], dtype=np.int32)
    return np.concatenate(inputs, axis=axis), sizes


def _concat_axis(inputs, axis, order, add_axis) -> int:
    """Concat's checks (shared by both devices); the axis counted from the front."""
    first = inputs[0]
    axis = _axis("Concat", _join_axis("Concat", axis, order), first.ndim + (1 if add_axis else 0),
                 f"input 0 {list(first.shape)}")
    for index, x in enumerate(inputs[1:], 1):
        same = x.ndim == first.ndim and all(
            a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if add_axis or i != axis)
        if not same:
            where = "every dim" if add_axis else f"every dim but {axis}"
            raise ValueError(f"Concat: input {index} is {list(x.shape)} but input 0 is "
                             f"{list(first.shape)}: they must agree on {where}")
        if x.dtype != first.dtype:
            raise ValueError(f"Concat: input {index} is {x.dtype} but input 0 is {first.dtype}")
    return axis


@register_gradient("Concat")
def _concat_gradient(g):
    # Split dY by split_info (output 1), with the forward axis, order and add_axis.
    if not g.has_GO(0):
        return []
    return [g.Op("Split", [g.GO(0), g.O(1)], [g.GI(i) for i in range(len(g.op.input))])]


def _split_sizes(sizes, split, dim: int, count: int) -> list[int]:
    if sizes is not None:
        if split is not None:
            raise ValueError("Split: the sizes come from input split; do not also give `split`")
        split = _int_list("Split", sizes, "split")
    if split is None:
        if dim % count:
            raise ValueError(f"Split: axis of size {dim} does not split into {count} equal parts")
        return [dim // count] * count
    if len(split) != count:
        raise ValueError(f"Split: split {list(split)} gives {len(split)} sizes for {count} outputs")
    if min(split) < 0:
        raise ValueError(f"Split: split {list(split)} has a negative size")
    if sum(split) != dim:
        raise ValueError(f"Split: split {list(split)} adds up to {sum(split)}, "
                         f"but the axis has size {dim}")
    return list(split)


@register_cpu("Split", "DepthSplit")
def split(x, sizes=None, *, axis, order, split, add_axis, num_outputs):
    axis, parts = _split_parts(x, sizes, axis, order, split, add_axis, num_outputs)
    outputs = np.split(x, np.cumsum(parts)[:-1], axis=axis)
    if add_axis:
        outputs = [np.squeeze(part, axis=axis) for part in outputs]
    return tuple(outputs)


def _split_parts(x, sizes, axis, order, split, add_axis, num_outputs) -> tuple[int, list[int]]:
    """Split's checks (shared by both devices): the axis and each part's size along it."""
    axis = _axis("Split", _join_axis("Split", axis, order), x.ndim, f"input {list(x.shape)}")
    parts = _split_sizes(sizes, split, x.shape[axis], num_outputs)
    if add_axis and any(part != 1 for part in parts):
        raise ValueError(f"Split: add_axis=1 needs parts of size 1 along axis {axis}, "
                         f"got {parts}")
    return axis, parts


@register_gradient("Split")
def _split_gradient(g):
    # Concat the parts' gradients. Caffe2 concatenates only the ones present, which
    # gives dX the wrong shape; a part without a gradient gets zeros of its shape here
    # (ConstantFill, FLOAT as in Caffe2).
    fills, parts = [], []
    for i in range(len(g.op.output)):
        if g.has_GO(i):
            parts.append(g.GO(i))
        else:
            parts.append(f"_{g.O(i)}_zero_grad")
            fills.append(g.Op("ConstantFill", [g.O(i)], [parts[-1]], inherit_args=False, value=0.0))
    return fills + [g.Op("Concat", parts, [g.GI(0), f"_{g.GI(0)}_dims"])]


# -- channel shuffle --------------------------------------------------------------

def _channel_axis(op_type: str, x, group: int, order: str) -> int:
    if x.ndim < 2:
        raise ValueError(f"{op_type}: input {list(x.shape)} has no channel axis")
    axis = 1 if order == "NCHW" else x.ndim - 1
    if x.shape[axis] % group:
        raise ValueError(f"{op_type}: group {group} does not divide the {x.shape[axis]} "
                         f"channels of input {list(x.shape)}")
    return axis


def _shuffle(x, axis: int, groups: int):
    """View the channels as [groups, C / groups] and transpose that to [C / groups, groups]."""
    outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis + 1:]))
    grouped = x.reshape(outer, groups, x.shape[axis] // groups, inner)
    return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)


@register_cpu("ChannelShuffle")
def channel_shuffle(x, *, group, order):
    return _shuffle(x, _channel_axis("ChannelShuffle", x, group, order), group)


gradient_op("ChannelShuffle", "GO0")


@register_cpu("ChannelShuffleGradient")
def channel_shuffle_gradient(dy, *, group, order):
    # The inverse permutation is the same shuffle with C / group groups.
    axis = _channel_axis("ChannelShuffleGradient", dy, group, order)
    return _shuffle(dy, axis, dy.shape[axis] // group)


# -- slices -------------------------------------------------------------------------

def _slice_index(op_type: str, data, starts, ends) -> tuple:
    """The NumPy index Caffe2's starts/ends select; one dim at most may be cut."""
    if starts is None or ends is None:
        raise ValueError(f"{op_type}: needs the `starts` and `ends` args or inputs")
    if len(starts) != len(ends):
        raise ValueError(f"{op_type}: starts {starts} and ends {ends} differ in length")
    if len(starts) > data.ndim:
        raise ValueError(f"{op_type}: {len(starts)} starts for input {list(data.shape)} "
                         f"of rank {data.ndim}")
    index = [slice(*slice_bounds(op_type, dim, start, end))
             for dim, start, end in zip(data.shape, starts, ends)]
    cut = [i for i, (s, dim) in enumerate(zip(index, data.shape)) if s.stop - s.start != dim]
    if len(cut) > 1:
        raise ValueError(f"{op_type}: only one dim may be sliced, starts {starts} and ends "
                         f"{ends} cut dims {cut} of input {list(data.shape)}")
    return tuple(index)


def _bounds(op_type, start_tensor, end_tensor, starts, ends):
    if start_tensor is None:
        return starts, ends
    return _int_list(op_type, start_tensor, "starts"), _int_list(op_type, end_tensor, "ends")


@register_cpu("Slice")
def slice_(data, start_tensor=None, end_tensor=None, *, starts, ends):
    starts, ends = _bounds("Slice", start_tensor, end_tensor, starts, ends)
    return data[_slice_index("Slice", data, starts, ends)]


@register_gradient("Slice")
def _slice_gradient(g):
    bounds = [g.I(1), g.I(2)] if len(g.op.input) == 3 else []
    return [g.Op("SliceGradient", [g.I(0), *bounds, g.GO(0)], [g.GI(0)])]


@register_cpu("SliceGradient")
def slice_gradient(data, *rest, starts, ends):
    index, dy = _slice_gradient_args(data, rest, starts, ends)
    dx = np.zeros(data.shape, dtype=dy.dtype)
    dx[index] = dy
    return dx


def _sliced_shape(index: tuple, shape: tuple) -> tuple:
    return tuple(s.stop - s.start for s in index) + tuple(shape[len(index):])


def _slice_gradient_args(data, rest, starts, ends) -> tuple:
    """SliceGradient's checks (shared by both devices): the slice index and dY."""
    if len(rest) == 3:
        starts, ends = _bounds("SliceGradient", rest[0], rest[1], starts, ends)
    dy = rest[-1]
    index = _slice_index("SliceGradient", data, starts, ends)
    expected = _sliced_shape(index, data.shape)
    if tuple(dy.shape) != expected:
        raise ValueError(f"SliceGradient: dY {list(dy.shape)} does not match the slice "
                         f"{list(expected)} of data {list(data.shape)}")
    return index, dy


# -- copies and identities --------------------------------------------------------

@register_cpu("Copy", "EnsureCPUOutput", "Alias", "StopGradient")
def identity(x):
    return x


@register_cpu("CopyOnDeviceLike")
def copy_on_device_like(x, dst):
    return x


gradient_op("Copy", "GO0 I0", gradient_type="CopyOnDeviceLike")
gradient_op("CopyCPUToGPU", "GO0", gradient_type="CopyGPUToCPU")
gradient_op("CopyGPUToCPU", "GO0", gradient_type="CopyCPUToGPU")


@register_gradient("Alias")
def _alias_gradient(g):
    g.SetDense(0, g.GO(0))  # the same storage: dY passes through, no op
    return []


@register_cpu("Cast", specialize=True)
def cast(*, to):
    """Resolves `to` (a TensorProto.DataType number or name) once, at CreateNet."""
    dtype = _cast_dtype(to)

    def run(x):
        if x.dtype.kind in "OSU":
            raise ValueError(f"Cast: input {list(x.shape)} {x.dtype} is not numeric")
        return x if x.dtype == dtype else x.astype(dtype)
    return run


def _cast_dtype(to) -> np.dtype:
    if isinstance(to, str):
        names = caffe2_pb2.TensorProto.DataType
        if to.upper() not in names.keys():
            raise ValueError(f"Cast: `to` {to!r} is not a TensorProto data type")
        to = names.Value(to.upper())
    if to in (caffe2_pb2.TensorProto.UNDEFINED, caffe2_pb2.TensorProto.STRING):
        raise ValueError(f"Cast: cannot cast to {caffe2_pb2.TensorProto.DataType.Name(to)}")
    return np.dtype(dtype_of(to))


@register_gradient("Cast")
def _cast_gradient(g):
    if g.arg("from_type") is None:
        raise GradientError("Cast needs the `from_type` arg (the input's data type) "
                            "to cast its gradient back")
    return [g.Op("Cast", [g.GO(0)], [g.GI(0)], to=g.arg("from_type"), from_type=g.arg("to"))]


@register_cpu("Shape")
def shape(data, *, axes):
    dims = np.array(data.shape, dtype=np.int64)
    if not axes:
        return dims
    return dims[[_axis("Shape", a, data.ndim, f"input {list(data.shape)}") for a in axes]]


# -- gathers and scatters -------------------------------------------------------------

def _check_indices(op_type: str, indices, dim: int, where: str, wrap: bool) -> np.ndarray:
    """Indices into a dim of size `dim`; with `wrap`, negatives count from the end
    (Caffe2's Gather does that; SparseToDense does not)."""
    if indices.dtype not in (np.int32, np.int64):
        raise ValueError(f"{op_type}: indices must be int32 or int64, got "
                         f"{list(indices.shape)} {indices.dtype}")
    bad = (indices < (-dim if wrap else 0)) | (indices >= dim)
    if bad.any():
        raise ValueError(f"{op_type}: index {int(indices[bad][0])} is out of range for "
                         f"{where} of size {dim}")
    return np.where(indices < 0, indices + dim, indices) if wrap else indices


@register_cpu("Gather")
def gather(data, indices, *, axis, match_outer):
    axis, indices = _gather_indices(data, indices, axis, match_outer)
    if not match_outer:
        return np.take(data, indices, axis=axis)
    outer = int(np.prod(data.shape[:axis]))
    flat_data = data.reshape(outer, data.shape[axis], -1)
    flat_indices = indices.reshape(outer, -1, 1)
    out = np.take_along_axis(flat_data, flat_indices, axis=1)
    return out.reshape(data.shape[:axis] + indices.shape[axis:] + data.shape[axis + 1:])


def _gather_indices(data, indices: np.ndarray, axis, match_outer) -> tuple:
    """Gather's checks (shared by both devices): the axis and the indices in [0, dim)."""
    if data.ndim < 1:
        raise ValueError(f"Gather: DATA must have rank >= 1, got {list(data.shape)}")
    axis = _axis("Gather", axis, data.ndim, f"DATA {list(data.shape)}")
    indices = _check_indices("Gather", indices, data.shape[axis], f"DATA axis {axis}", wrap=True)
    if match_outer and indices.shape[:axis] != tuple(data.shape[:axis]):
        raise ValueError(f"Gather: with match_outer INDICES {list(indices.shape)} must start "
                         f"with DATA's dims before axis {list(data.shape[:axis])}")
    return axis, indices


@register_gradient("Gather")
def _gather_gradient(g):
    # Always dense: the backward pass has no sparse (indices, values) gradients, so
    # dense_gradient=0 also gets SparseToDense (the same values, densified).
    if g.arg("axis") != 0 or g.arg("match_outer"):
        raise GradientError("Gather: a gradient needs axis=0 and match_outer=0 (Caffe2 uses "
                            "BatchGatherGradient otherwise, which pycaffe2 does not have)")
    return [g.Op("SparseToDense", [g.I(1), g.GO(0), g.I(0)], [g.GI(0)], inherit_args=False)]


@register_cpu("SparseToDense")
def sparse_to_dense(indices, values, like=None, *, output_first_dim):
    first = _dense_first_dim(indices, values, like, output_first_dim)
    out = np.zeros((first,) + values.shape[1:], dtype=values.dtype)
    np.add.at(out, indices, values)  # repeated indices add up
    return out


def _dense_first_dim(indices: np.ndarray, values, like, output_first_dim) -> int:
    """SparseToDense's checks (shared by both devices): the output's first dim."""
    if indices.ndim != 1 or values.ndim < 1 or values.shape[0] != indices.shape[0]:
        raise ValueError(f"SparseToDense: indices {list(indices.shape)} must be 1-D with one "
                         f"row of values {list(values.shape)} per index")
    if like is not None:
        if output_first_dim:
            raise ValueError("SparseToDense: the first dim comes from data_to_infer_dim; "
                             "do not also give output_first_dim")
        if like.ndim < 1:
            raise ValueError("SparseToDense: data_to_infer_dim must have rank >= 1")
        first = like.shape[0]
    elif output_first_dim:
        first = output_first_dim
    else:
        first = int(indices.max(initial=-1)) + 1
    _check_indices("SparseToDense", indices, first, "the output's first dim", wrap=False)
    return first


# Gather dY at the indices: the gradient of values (indices and the shape input get none).
gradient_op("SparseToDense", "GO0 I0", "GI1", gradient_type="Gather")


# -- tiles ------------------------------------------------------------------------------

def _tile_args(op_type, x, tiles_tensor, axis_tensor, tiles, axis):
    if tiles_tensor is not None:
        tiles = _int_scalar(op_type, tiles_tensor, "tiles")
    if axis_tensor is not None:
        axis = _int_scalar(op_type, axis_tensor, "axis")
    if tiles < 1:
        raise ValueError(f"{op_type}: tiles must be >= 1, got {tiles}")
    if x.ndim == 0:
        raise ValueError(f"{op_type}: cannot tile a scalar along an axis")
    return tiles, _axis(op_type, axis, x.ndim, f"input {list(x.shape)}")


@register_cpu("Tile")
def tile(data, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    tiles, axis = _tile_args("Tile", data, tiles_tensor, axis_tensor, tiles, axis)
    reps = [1] * data.ndim
    reps[axis] = tiles
    return np.tile(data, reps)


@register_gradient("Tile")
def _tile_gradient(g):
    return [g.Op("TileGradient", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]


@register_cpu("TileGradient")
def tile_gradient(dy, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    tiles, axis = _tile_gradient_args(dy, tiles_tensor, axis_tensor, tiles, axis)
    copies = dy.shape[:axis] + (tiles, dy.shape[axis] // tiles) + dy.shape[axis + 1:]
    return dy.reshape(copies).sum(axis=axis, dtype=dy.dtype)


def _tile_gradient_args(dy, tiles_tensor, axis_tensor, tiles, axis) -> tuple[int, int]:
    tiles, axis = _tile_args("TileGradient", dy, tiles_tensor, axis_tensor, tiles, axis)
    if dy.shape[axis] % tiles:
        raise ValueError(f"TileGradient: dY {list(dy.shape)} is not {tiles} copies "
                         f"along axis {axis}")
    return tiles, axis


# CUDA: identity ops keep the GPUArray (blobs are never written in place); the
# device copies move a blob between NumPy and the GPU.
register_cuda("StopGradient", "Alias")(cuda.as_gpu)
register_cuda("CopyCPUToGPU")(cuda.copy_to_gpu)
register_cuda("CopyGPUToCPU")(cuda.copy_to_cpu)


# -- CUDA launchers (tensor.cu) ---------------------------------------------------------
# The view ops run their CPU kernels on the GPU array: they read only shapes and share
# the data, as on the CPU (no kernel writes a blob in place). Shape-like inputs (shape,
# split, starts/ends, tiles/axis) and indices are read on the host; Reshape's old_shape
# and Concat's split_info stay host (NumPy) tensors, as Caffe2's were CPU tensors. The
# data-moving kernels take float32 and every integer and bool type (by element size).

def _on_gpu(cpu_kernel):
    @functools.wraps(cpu_kernel)  # the registry reads the CPU kernel's args through this
    def run(x, *rest, **args):
        return cpu_kernel(cuda.as_gpu(x), *rest, **args)
    return run


for _op_type, _kernel in {"Reshape": reshape, "Flatten": flatten, "FlattenToVec": flatten_to_vec,
                          "ResizeLike": resize_like, "Squeeze": squeeze,
                          "ExpandDims": expand_dims}.items():
    register_cuda(_op_type)(_on_gpu(_kernel))


def _code(op_type: str, array) -> str:
    """The suffix of the tensor.cu kernels that move the array's elements."""
    dtype = array.dtype
    if dtype == np.float32 or (dtype.kind in "iub" and dtype.itemsize in (1, 2, 4, 8)):
        return f"{'f' if dtype.kind == 'f' else 'i'}{dtype.itemsize}"
    raise ValueError(f"{op_type}: the CUDA kernels take float32, integer and bool tensors, "
                     f"got {dtype}")


def _sum_code(op_type: str, array) -> str:
    if array.dtype not in (np.float32, np.int32, np.int64):
        raise ValueError(f"{op_type}: the CUDA kernel sums float32, int32 or int64, got {array.dtype}")
    return _code(op_type, array)


def _strides(dims) -> list[int]:
    """Row-major element strides."""
    return [math.prod(dims[d + 1:]) for d in range(len(dims))]


def _move(op_type: str, x, y, dims, x_strides, y_strides, x_base=0, y_base=0) -> None:
    """y[y_base + k . y_strides] = x[x_base + k . x_strides] for every index k over dims."""
    count = math.prod(dims)
    if count == 0:
        return
    dims, (x_strides, y_strides) = _collapse(dims, x_strides, y_strides)
    meta = _device_ints(tuple(dims + x_strides + y_strides))
    cuda.launch("tensor.cu", f"move_{_code(op_type, x)}", count, x, y, meta, np.int32(len(dims)),
                np.int64(x_base), np.int64(y_base), np.int64(count))


def _permuted(op_type: str, x, dims, axes):
    """A new array: x read as `dims`, with those dims in the order `axes`."""
    strides, out_dims = _strides(dims), [dims[a] for a in axes]
    y = cuda.empty(out_dims, x.dtype)
    _move(op_type, x, y, out_dims, [strides[a] for a in axes], _strides(out_dims))
    return y


@register_cuda("Copy", "CopyOnDeviceLike")
def copy_cuda(x, dst=None):
    """A new GPU array (CopyOnDeviceLike runs on dst's device, which is this one)."""
    if not cuda.is_gpu_array(x):
        return cuda.as_gpu(x)  # the upload is the copy
    return _permuted("Copy", x, x.shape, list(range(x.ndim)))


register_cuda("EnsureCPUOutput")(cuda.copy_to_cpu)


@register_cuda("Transpose")
def transpose_cuda(data, *, axes):
    data = cuda.as_gpu(data)
    return _permuted("Transpose", data, data.shape, _transpose_axes(data, axes))


def _channel_shuffle_cuda(op_type, x, group, order, inverse):
    x = cuda.as_gpu(x)
    axis = _channel_axis(op_type, x, group, order)
    channels = x.shape[axis]
    groups = channels // group if inverse else group  # as _shuffle: [groups, C / groups]^T
    dims = [math.prod(x.shape[:axis]), groups, channels // groups, math.prod(x.shape[axis + 1:])]
    return cuda.reshape(_permuted(op_type, x, dims, [0, 2, 1, 3]), x.shape)


@register_cuda("ChannelShuffle")
def channel_shuffle_cuda(x, *, group, order):
    return _channel_shuffle_cuda("ChannelShuffle", x, group, order, inverse=False)


@register_cuda("ChannelShuffleGradient")
def channel_shuffle_gradient_cuda(dy, *, group, order):
    return _channel_shuffle_cuda("ChannelShuffleGradient", dy, group, order, inverse=True)


@register_cuda("Concat", "DepthConcat")
def concat_cuda(*inputs, axis, order, add_axis):
    inputs = [cuda.as_gpu(x) for x in inputs]
    axis = _concat_axis(inputs, axis, order, add_axis)
    shapes = [list(x.shape) for x in inputs]
    for shape in shapes if add_axis else ():
        shape.insert(axis, 1)
    sizes = [shape[axis] for shape in shapes]
    y = cuda.empty(shapes[0][:axis] + [sum(sizes)] + shapes[0][axis + 1:], inputs[0].dtype)
    y_strides, offset = _strides(y.shape), 0
    for x, shape in zip(inputs, shapes):
        _move("Concat", x, y, shape, _strides(shape), y_strides, y_base=offset * y_strides[axis])
        offset += shape[axis]
    return y, np.array(sizes, dtype=np.int32)


@register_cuda("Split", "DepthSplit")
def split_cuda(x, sizes=None, *, axis, order, split, add_axis, num_outputs):
    x = cuda.as_gpu(x)
    axis, parts = _split_parts(x, sizes, axis, order, split, add_axis, num_outputs)
    x_strides, outputs, start = _strides(x.shape), [], 0
    for part in parts:
        shape = list(x.shape[:axis]) + [part] + list(x.shape[axis + 1:])
        y = cuda.empty(shape, x.dtype)
        _move("Split", x, y, shape, x_strides, _strides(shape), x_base=start * x_strides[axis])
        outputs.append(cuda.reshape(y, shape[:axis] + shape[axis + 1:]) if add_axis else y)
        start += part
    return tuple(outputs)


def _slice_offset(index: tuple, shape) -> int:
    return sum(s.start * stride for s, stride in zip(index, _strides(shape)))


@register_cuda("Slice")
def slice_cuda(data, start_tensor=None, end_tensor=None, *, starts, ends):
    data = cuda.as_gpu(data)
    starts, ends = _bounds("Slice", start_tensor, end_tensor, starts, ends)
    index = _slice_index("Slice", data, starts, ends)
    y = cuda.empty(_sliced_shape(index, data.shape), data.dtype)
    _move("Slice", data, y, y.shape, _strides(data.shape), _strides(y.shape),
          x_base=_slice_offset(index, data.shape))
    return y


def _zeros(op_type: str, shape, dtype):
    out = cuda.empty(shape, dtype)
    cuda.launch("tensor.cu", f"zero_{_code(op_type, out)}", out.size, out, np.int64(out.size))
    return out


@register_cuda("SliceGradient")
def slice_gradient_cuda(data, *rest, starts, ends):
    index, dy = _slice_gradient_args(data, rest, starts, ends)
    dy = cuda.as_gpu(dy)
    dx = _zeros("SliceGradient", data.shape, dy.dtype)
    _move("SliceGradient", dy, dx, dy.shape, _strides(dy.shape), _strides(data.shape),
          y_base=_slice_offset(index, data.shape))
    return dx


@register_cuda("Tile")
def tile_cuda(data, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    data = cuda.as_gpu(data)
    tiles, axis = _tile_args("Tile", data, tiles_tensor, axis_tensor, tiles, axis)
    y = cuda.empty(data.shape[:axis] + (data.shape[axis] * tiles,) + data.shape[axis + 1:], data.dtype)
    dims = [math.prod(data.shape[:axis]), tiles, math.prod(data.shape[axis:])]
    _move("Tile", data, y, dims, [dims[2], 0, 1], _strides(dims))  # stride 0: each copy reads x again
    return y


@register_cuda("TileGradient")
def tile_gradient_cuda(dy, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    dy = cuda.as_gpu(dy)
    tiles, axis = _tile_gradient_args(dy, tiles_tensor, axis_tensor, tiles, axis)
    dx = cuda.empty(dy.shape[:axis] + (dy.shape[axis] // tiles,) + dy.shape[axis + 1:], dy.dtype)
    cuda.launch("tensor.cu", f"tile_sum_{_sum_code('TileGradient', dy)}", dx.size, dy, dx,
                np.int64(tiles), np.int64(math.prod(dx.shape[axis:])), np.int64(dx.size))
    return dx


@register_cuda("Gather")
def gather_cuda(data, indices, *, axis, match_outer):
    data = cuda.as_gpu(data)
    axis, indices = _gather_indices(data, cuda.copy_to_cpu(indices), axis, match_outer)
    kept = indices.shape[axis if match_outer else 0:]  # match_outer: INDICES' outer dims are DATA's
    y = cuda.empty(data.shape[:axis] + kept + data.shape[axis + 1:], data.dtype)
    count = math.prod(kept)
    if y.size:
        cuda.launch("tensor.cu", f"gather_{_code('Gather', data)}", y.size, data,
                    cuda.as_gpu(indices.astype(np.int64)), y, np.int64(count), np.int64(data.shape[axis]),
                    np.int64(math.prod(data.shape[axis + 1:])), np.int64(count if match_outer else 0),
                    np.int64(y.size))
    return y


@register_cuda("SparseToDense")
def sparse_to_dense_cuda(indices, values, like=None, *, output_first_dim):
    values, indices = cuda.as_gpu(values), cuda.copy_to_cpu(indices)
    first = _dense_first_dim(indices, values, like, output_first_dim)
    out = cuda.empty((first,) + values.shape[1:], values.dtype)
    # Each output row sums its values rows in input order: no atomics, as np.add.at.
    order = np.argsort(indices, kind="stable").astype(np.int64)
    row_start = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=first))]).astype(np.int64)
    if out.size:
        cuda.launch("tensor.cu", f"sparse_to_dense_{_sum_code('SparseToDense', values)}", out.size,
                    values if values.size else cuda.NULL, cuda.as_gpu(order) if order.size else cuda.NULL,
                    cuda.as_gpu(row_start), out, np.int64(math.prod(values.shape[1:])), np.int64(out.size))
    return out


_CAST_NAMES = {np.dtype(t): name for t, name in [
    (np.float32, "f32"), (np.bool_, "b8"), (np.uint8, "u8"), (np.int8, "i8"),
    (np.uint16, "u16"), (np.int16, "i16"), (np.int32, "i32"), (np.int64, "i64")]}


def _cast_name(dtype) -> str:
    if dtype not in _CAST_NAMES:
        raise ValueError(f"Cast: the CUDA kernels cast between {', '.join(map(str, _CAST_NAMES))}, "
                         f"not {dtype} (float data is float32 on the GPU)")
    return _CAST_NAMES[dtype]


@register_cuda("Cast", specialize=True)
def cast_cuda(*, to):
    dtype = _cast_dtype(to)
    to_name = _cast_name(dtype)  # refused at CreateNet: float64, float16

    def run(x):
        x = cuda.as_gpu(x)
        if x.dtype == dtype:
            return x
        y = cuda.empty(x.shape, dtype)
        cuda.launch("tensor.cu", f"cast_{_cast_name(x.dtype)}_{to_name}", y.size, x, y, np.int64(y.size))
        return y
    return run
