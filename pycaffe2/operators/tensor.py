"""Tensor layout kernels (NumPy): reshapes, transposes, joins and splits, channel
shuffles, tiles, casts, shapes, identity copies and ZeroGradient (nothing forward,
zeros backward). Most of them only move data,
so they return NumPy views of their inputs where that is possible (nothing
mutates an array in place, so a view is as good as a copy). Every shape and arg
check is the family's inference module's (schema/inference/tensor.py), called
with the arrays' shapes, so a bad input gives the same error at CreateNet and at
run time, on both devices; checks of args alone already ran at CreateNet. Sizes
that come from an input tensor are read here and checked by the same functions.
The CUDA launchers (at the end; kernels in tensor.cu) take float32 and every
integer and bool type (by element size); `move` also serves the indexing family.
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
from pycaffe2.schema.inference.tensor import (
    cast_dtype,
    cast_input,
    concat_axis,
    expanded_dims,
    flattened_dims,
    int_tensor,
    join_axis,
    reshaped_dims,
    same_size,
    shape_axes,
    shuffled_axis,
    split_parts,
    squeezed_dims,
    tiled_axis,
    transpose_axes,
    untiled_axis,
)


def int_values(tensor, name: str, scalar: bool = False) -> list[int]:
    """An int tensor input (a shape, sizes, starts...), on either device, as Python ints."""
    tensor = cuda.copy_to_cpu(tensor) if cuda.is_gpu_array(tensor) else np.asarray(tensor)
    int_tensor(name, tensor.shape, tensor.dtype.name, scalar)
    return [int(v) for v in tensor]


# -- reshapes (one kernel for both devices: they read only shapes, see _on_gpu) -----

@register_cpu("Reshape")
def reshape_op(data, new_shape=None, *, shape, allowzero, num_outputs):
    return reshape(data, new_shape, shape=shape, num_outputs=num_outputs, allowzero=allowzero)


def reshape(data, new_shape=None, *, shape, num_outputs, allowzero=False):
    """Reshape's kernel, also Int8Reshape's (which has no allowzero)."""
    if new_shape is not None:
        shape = int_values(new_shape, "new_shape")
    reshaped = cuda.reshape(data, reshaped_dims(data.shape, list(shape), allowzero))
    if num_outputs == 1:  # no old_shape asked for (Glow's and ONNX's Reshapes)
        return reshaped, None
    return reshaped, np.array(data.shape, dtype=np.int64)


@register_gradient("Reshape")
def _reshape_gradient(g):
    # Reshape dY back to the old shape (output 1); the forward `shape` arg must stay behind.
    # Input 0 gives only a name (op.input, not g.I: its value is not read, so an in-place
    # Reshape, as attention's, has a gradient).
    dims = f"_{g.op.input[0]}_dims"
    if len(g.op.output) > 1:
        return [g.Op("Reshape", [g.GO(0), g.O(1)], [g.GI(0), dims], inherit_args=False)]
    if g.op.input[0] == g.op.output[0]:
        raise GradientError("an in-place Reshape without its old_shape output has no gradient: "
                            "nothing keeps the input's shape")
    return [g.Op("Shape", [g.I(0)], [dims], inherit_args=False),
            g.Op("Reshape", [g.GO(0), dims], [g.GI(0), f"{dims}_old"], inherit_args=False)]


@register_cpu("Flatten")
def flatten(x, *, axis):
    return cuda.reshape(x, flattened_dims(x.shape, axis))


@register_cpu("FlattenToVec")
def flatten_to_vec(x):
    return cuda.reshape(x, (x.size,))


gradient_op("Flatten", "GO0 I0", gradient_type="ResizeLike")
gradient_op("FlattenToVec", "GO0 I0", gradient_type="ResizeLike")


@register_cpu("ResizeLike")
def resize_like(data, like):
    same_size(data.shape, like.shape)
    return cuda.reshape(data, like.shape)


@register_cpu("Squeeze")
def squeeze(data, dims_tensor=None, *, dims):
    if dims_tensor is not None:
        dims = int_values(dims_tensor, "dims")
    return cuda.reshape(data, squeezed_dims(data.shape, dims))


@register_gradient("Squeeze")
def _squeeze_gradient(g):
    # The same dims: Squeeze's input numbering is ExpandDims's output numbering. Without
    # dims the input's shape says where the ones were.
    if g.arg("dims") or len(g.op.input) > 1:
        return [g.Op("ExpandDims", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]
    if g.op.input[0] == g.op.output[0]:
        raise GradientError("an in-place Squeeze without dims has no gradient: nothing keeps "
                            "the input's shape")
    return [g.Op("ResizeLike", [g.GO(0), g.I(0)], [g.GI(0)], inherit_args=False)]


@register_cpu("ExpandDims")
def expand_dims(data, dims_tensor=None, *, dims):
    if dims_tensor is not None:
        dims = int_values(dims_tensor, "dims")
    return cuda.reshape(data, expanded_dims(data.shape, dims))


@register_gradient("ExpandDims")
def _expand_dims_gradient(g):
    return [g.Op("Squeeze", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]


@register_cpu("Transpose")
def transpose(data, *, axes):
    # Caffe2 writes a new contiguous tensor; so do we (a strided view would
    # make every later consumer pay for the scattered reads). Not ascontiguousarray:
    # it makes a 0-d input 1-d.
    return data.transpose(transpose_axes(data.shape, axes)).copy()


@register_gradient("Transpose")
def _transpose_gradient(g):
    axes = g.arg("axes")
    if not axes:  # reversing the dims is its own inverse
        return [g.Op("Transpose", [g.GO(0)], [g.GI(0)])]
    return [g.Op("Transpose", [g.GO(0)], [g.GI(0)], axes=[int(i) for i in np.argsort(axes)])]


# -- joins and splits -----------------------------------------------------------

def _concat_axis(inputs, axis, order, add_axis) -> int:
    return concat_axis([x.shape for x in inputs], [x.dtype.name for x in inputs],
                       join_axis(axis, order), add_axis)


@register_cpu("Concat", "DepthConcat")
def concat(*inputs, axis, order, add_axis):
    axis = _concat_axis(inputs, axis, order, add_axis)
    if add_axis:
        return np.stack(inputs, axis=axis), np.ones(len(inputs), dtype=np.int32)
    sizes = np.array([x.shape[axis] for x in inputs], dtype=np.int32)
    return np.concatenate(inputs, axis=axis), sizes


@register_gradient("Concat")
def _concat_gradient(g):
    # Split dY by split_info (output 1), with the forward axis, order and add_axis.
    if not g.has_GO(0):
        return []
    return [g.Op("Split", [g.GO(0), g.O(1)], [g.GI(i) for i in range(len(g.op.input))])]


def _split_parts(x, sizes, axis, order, split, add_axis, num_outputs, uneven) -> tuple[int, list[int]]:
    """The axis and each part's size along it (sizes from the input when given)."""
    if sizes is not None:
        split = int_values(sizes, "split")
    return split_parts(x.shape, join_axis(axis, order), split, add_axis, num_outputs, uneven)


@register_cpu("Split", "DepthSplit")
def split(x, sizes=None, *, axis, order, split, add_axis, uneven, num_outputs):
    axis, parts = _split_parts(x, sizes, axis, order, split, add_axis, num_outputs, uneven)
    outputs = np.split(x, np.cumsum(parts)[:-1], axis=axis)
    if add_axis:
        outputs = [np.squeeze(part, axis=axis) for part in outputs]
    return tuple(outputs)


@register_gradient("Split")
def split_gradient(g, **concat_args):
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
    return fills + [g.Op("Concat", parts, [g.GI(0), f"_{g.GI(0)}_dims"], **concat_args)]


# -- channel shuffle --------------------------------------------------------------

def _shuffle(x, axis: int, groups: int):
    """View the channels as [groups, C / groups] and transpose that to [C / groups, groups]."""
    outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis + 1:]))
    grouped = x.reshape(outer, groups, x.shape[axis] // groups, inner)
    return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)


@register_cpu("ChannelShuffle")
def channel_shuffle(x, *, group, order):
    return _shuffle(x, shuffled_axis(x.shape, group, order), group)


gradient_op("ChannelShuffle", "GO0")


@register_cpu("ChannelShuffleGradient")
def channel_shuffle_gradient(dy, *, group, order):
    # The inverse permutation is the same shuffle with C / group groups.
    axis = shuffled_axis(dy.shape, group, order)
    return _shuffle(dy, axis, dy.shape[axis] // group)


# -- tiles ------------------------------------------------------------------------------

def _tile_args(x, tiles_tensor, axis_tensor, tiles, axis, axis_of=tiled_axis) -> tuple[int, int]:
    """(tiles, axis counted from the front), each from its input when given."""
    if tiles_tensor is not None:
        (tiles,) = int_values(tiles_tensor, "tiles", scalar=True)
    if axis_tensor is not None:
        (axis,) = int_values(axis_tensor, "axis", scalar=True)
    return tiles, axis_of(x.shape, tiles, axis)


@register_cpu("Tile")
def tile(data, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    tiles, axis = _tile_args(data, tiles_tensor, axis_tensor, tiles, axis)
    reps = [1] * data.ndim
    reps[axis] = tiles
    return np.tile(data, reps)


@register_gradient("Tile")
def _tile_gradient(g):
    return [g.Op("TileGradient", [g.GO(0), *g.op.input[1:]], [g.GI(0)])]


@register_cpu("TileGradient")
def tile_gradient(dy, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    tiles, axis = _tile_args(dy, tiles_tensor, axis_tensor, tiles, axis, untiled_axis)
    copies = dy.shape[:axis] + (tiles, dy.shape[axis] // tiles) + dy.shape[axis + 1:]
    return dy.reshape(copies).sum(axis=axis, dtype=dy.dtype)


# -- copies, identities, casts and shapes ------------------------------------------

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
    dtype = np.dtype(cast_dtype(to))

    def run(x):
        cast_input(x.shape, x.dtype.name)
        if dtype == object:
            return _strings(x)
        return x if x.dtype == dtype else x.astype(dtype)
    return run


def _strings(x):
    """Numbers as Caffe2 writes them to strings (std::to_string: %f for floats, bools
    as 0/1), held as bytes in an object array like every string tensor."""
    out = np.empty(x.shape, dtype=object)
    text = (lambda v: b"%f" % v) if x.dtype.kind == "f" else (lambda v: b"%d" % v)
    out.flat[:] = [text(v) for v in x.flat]
    return out


@register_gradient("Cast")
def _cast_gradient(g):
    if g.arg("from_type") is None:
        raise GradientError("needs the `from_type` arg (the input's data type) "
                            "to cast its gradient back")
    return [g.Op("Cast", [g.GO(0)], [g.GI(0)], to=g.arg("from_type"), from_type=g.arg("to"))]


@register_cpu("Shape")
def shape(data, *, axes, start, end):
    return np.array(data.shape, dtype=np.int64)[shape_axes(data.shape, axes, start, end)]


# CUDA: identity ops keep the GPUArray (blobs are never written in place); the
# device copies move a blob between NumPy and the GPU.
register_cuda("StopGradient", "Alias")(cuda.as_gpu)


@register_cpu("ZeroGradient")
def zero_gradient(x):
    return ()


@register_gradient("ZeroGradient")
def make_zero_gradient_gradient(g):
    return [g.Op("ConstantFill", [g.I(0)], [g.GI(0)], value=0.0)]
register_cuda("CopyCPUToGPU")(cuda.copy_to_gpu)
register_cuda("CopyGPUToCPU")(cuda.copy_to_cpu)


# -- CUDA launchers (tensor.cu) ---------------------------------------------------------
# The view ops run their CPU kernels on the GPU array: they read only shapes and share
# the data, as on the CPU (no kernel writes a blob in place). Shape-like inputs (shape,
# split, tiles/axis) are read on the host; Reshape's old_shape and Concat's split_info
# stay host (NumPy) tensors, as Caffe2's were CPU tensors.

def _on_gpu(cpu_kernel):
    @functools.wraps(cpu_kernel)  # the registry reads the CPU kernel's args through this
    def run(x, *rest, **args):
        return cpu_kernel(cuda.as_gpu(x), *rest, **args)
    return run


for _op_type, _kernel in {"Reshape": reshape_op, "Flatten": flatten, "FlattenToVec": flatten_to_vec,
                          "ResizeLike": resize_like, "Squeeze": squeeze,
                          "ExpandDims": expand_dims}.items():
    register_cuda(_op_type)(_on_gpu(_kernel))


def element_code(array) -> str:
    """The suffix of the CUDA kernels that move the array's elements (tensor.cu, indexing.cu)."""
    dtype = array.dtype
    if dtype == np.float32 or (dtype.kind in "iub" and dtype.itemsize in (1, 2, 4, 8)):
        return f"{'f' if dtype.kind == 'f' else 'i'}{dtype.itemsize}"
    raise ValueError(f"the CUDA kernels take float32, integer and bool tensors, got {dtype}")


def sum_code(array) -> str:
    """The suffix of the CUDA kernels that sum the array's elements."""
    if array.dtype not in (np.float32, np.int32, np.int64):
        raise ValueError(f"the CUDA kernel sums float32, int32 or int64, got {array.dtype}")
    return element_code(array)


def strides(dims) -> list[int]:
    """Row-major element strides."""
    return [math.prod(dims[d + 1:]) for d in range(len(dims))]


def move(x, y, dims, x_strides, y_strides, x_base=0, y_base=0) -> None:
    """y[y_base + k . y_strides] = x[x_base + k . x_strides] for every index k over dims."""
    count = math.prod(dims)
    if count == 0:
        return
    dims, (x_strides, y_strides) = _collapse(dims, x_strides, y_strides)
    meta = _device_ints(tuple(dims + x_strides + y_strides))
    cuda.launch("tensor.cu", f"move_{element_code(x)}", count, x, y, meta, np.int32(len(dims)),
                np.int64(x_base), np.int64(y_base), np.int64(count))


def zeros(shape, dtype):
    out = cuda.empty(shape, dtype)
    cuda.launch("tensor.cu", f"zero_{element_code(out)}", out.size, out, np.int64(out.size))
    return out


def _permuted(x, dims, axes):
    """A new array: x read as `dims`, with those dims in the order `axes`."""
    x_strides, out_dims = strides(dims), [dims[a] for a in axes]
    y = cuda.empty(out_dims, x.dtype)
    move(x, y, out_dims, [x_strides[a] for a in axes], strides(out_dims))
    return y


@register_cuda("Copy", "CopyOnDeviceLike")
def copy_cuda(x, dst=None):
    """A new GPU array (CopyOnDeviceLike runs on dst's device, which is this one)."""
    if not cuda.is_gpu_array(x):
        return cuda.as_gpu(x)  # the upload is the copy
    return _permuted(x, x.shape, list(range(x.ndim)))


register_cuda("EnsureCPUOutput")(cuda.copy_to_cpu)


@register_cuda("Transpose")
def transpose_cuda(data, *, axes):
    data = cuda.as_gpu(data)
    return _permuted(data, data.shape, transpose_axes(data.shape, axes))


def _channel_shuffle_cuda(x, group, order, inverse):
    x = cuda.as_gpu(x)
    axis = shuffled_axis(x.shape, group, order)
    channels = x.shape[axis]
    groups = channels // group if inverse else group  # as _shuffle: [groups, C / groups]^T
    dims = [math.prod(x.shape[:axis]), groups, channels // groups, math.prod(x.shape[axis + 1:])]
    return cuda.reshape(_permuted(x, dims, [0, 2, 1, 3]), x.shape)


@register_cuda("ChannelShuffle")
def channel_shuffle_cuda(x, *, group, order):
    return _channel_shuffle_cuda(x, group, order, inverse=False)


@register_cuda("ChannelShuffleGradient")
def channel_shuffle_gradient_cuda(dy, *, group, order):
    return _channel_shuffle_cuda(dy, group, order, inverse=True)


@register_cuda("Concat", "DepthConcat")
def concat_cuda(*inputs, axis, order, add_axis):
    inputs = [cuda.as_gpu(x) for x in inputs]
    axis = _concat_axis(inputs, axis, order, add_axis)
    shapes = [list(x.shape) for x in inputs]
    for dims in shapes if add_axis else ():
        dims.insert(axis, 1)
    sizes = [dims[axis] for dims in shapes]
    y = cuda.empty(shapes[0][:axis] + [sum(sizes)] + shapes[0][axis + 1:], inputs[0].dtype)
    y_strides, offset = strides(y.shape), 0
    for x, dims in zip(inputs, shapes):
        move(x, y, dims, strides(dims), y_strides, y_base=offset * y_strides[axis])
        offset += dims[axis]
    return y, np.array(sizes, dtype=np.int32)


@register_cuda("Split", "DepthSplit")
def split_cuda(x, sizes=None, *, axis, order, split, add_axis, uneven, num_outputs):
    x = cuda.as_gpu(x)
    axis, parts = _split_parts(x, sizes, axis, order, split, add_axis, num_outputs, uneven)
    x_strides, outputs, start = strides(x.shape), [], 0
    for part in parts:
        dims = list(x.shape[:axis]) + [part] + list(x.shape[axis + 1:])
        y = cuda.empty(dims, x.dtype)
        move(x, y, dims, x_strides, strides(dims), x_base=start * x_strides[axis])
        outputs.append(cuda.reshape(y, dims[:axis] + dims[axis + 1:]) if add_axis else y)
        start += part
    return tuple(outputs)


@register_cuda("Tile")
def tile_cuda(data, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    data = cuda.as_gpu(data)
    tiles, axis = _tile_args(data, tiles_tensor, axis_tensor, tiles, axis)
    y = cuda.empty(data.shape[:axis] + (data.shape[axis] * tiles,) + data.shape[axis + 1:], data.dtype)
    dims = [math.prod(data.shape[:axis]), tiles, math.prod(data.shape[axis:])]
    move(data, y, dims, [dims[2], 0, 1], strides(dims))  # stride 0: each copy reads x again
    return y


@register_cuda("TileGradient")
def tile_gradient_cuda(dy, tiles_tensor=None, axis_tensor=None, *, tiles, axis):
    dy = cuda.as_gpu(dy)
    tiles, axis = _tile_args(dy, tiles_tensor, axis_tensor, tiles, axis, untiled_axis)
    dx = cuda.empty(dy.shape[:axis] + (dy.shape[axis] // tiles,) + dy.shape[axis + 1:], dy.dtype)
    cuda.launch("tensor.cu", f"tile_sum_{sum_code(dy)}", dx.size, dy, dx,
                np.int64(tiles), np.int64(math.prod(dx.shape[axis:])), np.int64(dx.size))
    return dx


_CAST_NAMES = {np.dtype(t): name for t, name in [
    (np.float32, "f32"), (np.bool_, "b8"), (np.uint8, "u8"), (np.int8, "i8"),
    (np.uint16, "u16"), (np.int16, "i16"), (np.int32, "i32"), (np.int64, "i64")]}


def _cast_name(dtype) -> str:
    if dtype not in _CAST_NAMES:
        raise ValueError(f"the CUDA kernels cast between {', '.join(map(str, _CAST_NAMES))}, "
                         f"not {dtype} (float data is float32 on the GPU)")
    return _CAST_NAMES[dtype]


@register_cuda("Cast", specialize=True)
def cast_cuda(*, to):
    dtype = np.dtype(cast_dtype(to))
    to_name = _cast_name(dtype)  # refused at CreateNet: float64, float16

    def run(x):
        x = cuda.as_gpu(x)
        if x.dtype == dtype:
            return x
        y = cuda.empty(x.shape, dtype)
        cuda.launch("tensor.cu", f"cast_{_cast_name(x.dtype)}_{to_name}", y.size, x, y, np.int64(y.size))
        return y
    return run
