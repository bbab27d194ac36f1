"""Inference rules of the indexing family (Slice, Gather, SparseToDense and their
gradients), and each op's shape and arg checks.

As in the tensor family, the checks are plain functions of shapes, dtypes and args
raising ShapeError, called by the rules and by the kernels (operators/indexing.py)
alike. Checks of index values (an index out of range) need the data, so they stay
in the kernels. Slice bounds given as tensors make the output unknown here.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.tensor import axis_index, int_tensor

INDEX_TYPES = ("int32", "int64")


def slice_bounds(dim: int, start: int, end: int) -> tuple[int, int]:
    """Caffe2's [start, end) in a dim: negatives count from one past the end, values
    past the end are clipped."""
    if dim == 0:
        return 0, 0
    start = dim + 1 + start if start < 0 else start
    end = dim + 1 + end if end < 0 else end
    start, end = min(start, dim), min(end, dim)
    if start < 0 or end < start:
        raise ShapeError(f"[{start}, {end}) is not a slice of a dim of size {dim}")
    return start, end


def slice_args(starts, ends) -> None:
    """Both bounds given, one of each per sliced dim."""
    if starts is None or ends is None:
        raise ShapeError("needs the `starts` and `ends` args or inputs")
    if len(starts) != len(ends):
        raise ShapeError(f"starts {list(starts)} and ends {list(ends)} differ in length")


def slice_ranges(dims: tuple, starts, ends) -> list[tuple[int, int]]:
    """[start, end) of each leading dim the bounds name; one dim at most may be cut."""
    slice_args(starts, ends)
    if len(starts) > len(dims):
        raise ShapeError(f"{len(starts)} starts for input {list(dims)} of rank {len(dims)}")
    ranges = [slice_bounds(dim, start, end) for dim, start, end in zip(dims, starts, ends)]
    cut = [i for i, ((start, end), dim) in enumerate(zip(ranges, dims)) if end - start != dim]
    if len(cut) > 1:
        raise ShapeError(f"only one dim may be sliced, starts {list(starts)} and ends "
                         f"{list(ends)} cut dims {cut} of input {list(dims)}")
    return ranges


def sliced_dims(dims: tuple, ranges) -> tuple:
    return tuple(end - start for start, end in ranges) + tuple(dims[len(ranges):])


def slice_gradient_dims(dims: tuple, dy: tuple, starts, ends, axes=None, steps=None,
                        bounds: str = "caffe2") -> tuple:
    """SliceGradient's index; dY must be the slice's shape."""
    index, expected = slice_index(dims, starts, ends, axes, steps, bounds)
    if tuple(dy) != expected:
        raise ShapeError(f"dY {list(dy)} does not match the slice {list(expected)} of "
                         f"data {list(dims)}")
    return index


def _onnx_bound(value: int, dim: int, step: int, low: int) -> int:
    """ONNX's start or end in a dim: negatives count from the end, then clamped to
    [0, dim] going forwards, [low, dim - 1] going backwards (low: 0 for a start, -1
    for an end, one before the first entry)."""
    value = value + dim if value < 0 else value
    return min(max(value, 0), dim) if step > 0 else min(max(value, low), dim - 1)


def onnx_slices(dims: tuple, starts, ends, axes, steps) -> tuple[tuple, tuple]:
    """ONNX's Slice: (the index, one Python slice per dim, and the sliced dims).
    Absent axes are the leading dims, absent steps 1."""
    slice_args(starts, ends)
    axes = list(range(len(starts))) if axes is None else [axis_index(a, len(dims), "axes", f"data {list(dims)}")
                                                        for a in axes]
    steps = [1] * len(starts) if steps is None else list(steps)
    if len(axes) != len(starts) or len(steps) != len(starts):
        raise ShapeError(f"starts, ends, axes {axes} and steps {steps} must have one entry per sliced axis")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axes {axes} repeat an axis")
    if 0 in steps:
        raise ShapeError(f"steps {steps} must not be 0")
    index = [slice(None)] * len(dims)
    out = list(dims)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        start = _onnx_bound(int(start), dims[axis], step, 0)
        end = _onnx_bound(int(end), dims[axis], step, -1)
        out[axis] = len(range(start, end, step))
        index[axis] = slice(start, end if end >= 0 else None, step)  # end -1 (backwards): through entry 0
    return tuple(index), tuple(out)


def slice_index(dims: tuple, starts, ends, axes, steps, bounds: str) -> tuple[tuple, tuple]:
    """Slice's (index, sliced dims) under either rule: Caffe2's (leading dims, one cut at
    most, negatives from one past the end) or ONNX's (axes, steps, clamping)."""
    if bounds == "onnx":
        return onnx_slices(dims, starts, ends, axes, steps)
    if axes is not None or steps is not None:
        raise ShapeError("axes and steps need bounds 'onnx'")
    ranges = slice_ranges(dims, starts, ends)
    return tuple(slice(start, end) for start, end in ranges), sliced_dims(dims, ranges)


def _bounds_from_inputs(inputs: list) -> None:
    for info, name in zip(inputs, ["starts", "ends", "axes", "steps"]):
        if info is not None:
            int_tensor(name, info.shape, info.dtype)


def _slice_args(op: OpView) -> tuple:
    return op.arg("starts"), op.arg("ends"), op.arg("axes"), op.arg("steps"), op.arg("bounds")


@rule("indexing_slice")
def slice_op(op: OpView, inputs: list) -> list:
    """Slice: Caffe2's index rules (negative counts from one past the end; one dim cut at
    most) or ONNX's (bounds 'onnx'); bounds given as inputs leave the shape unknown."""
    data = inputs[0]
    if op.n_inputs > 1:
        _bounds_from_inputs(inputs[1:])
        return [None]
    slice_args(op.arg("starts"), op.arg("ends"))
    if data is None:
        return [None]
    return [TensorInfo(slice_index(data.shape, *_slice_args(op))[1], data.dtype)]


@rule("indexing_slice_gradient")
def slice_gradient(op: OpView, inputs: list) -> list:
    """SliceGradient (data, [starts, ends, [axes, [steps,]]] dY): dX like data; dY must
    match the slice."""
    data, dy = inputs[0], inputs[-1]
    if op.n_inputs > 2:
        _bounds_from_inputs(inputs[1:-1])
    elif data is not None and dy is not None:
        slice_gradient_dims(data.shape, dy.shape, *_slice_args(op))
    if data is None:
        return [None]
    return [TensorInfo(data.shape, data.dtype if dy is None else dy.dtype)]


def index_type(dims: tuple, dtype: str) -> None:
    if dtype not in INDEX_TYPES:
        raise ShapeError(f"indices must be int32 or int64, got {list(dims)} {dtype}")


def gather_axis(data: tuple, indices: tuple, axis: int, match_outer: bool) -> int:
    """Gather's axis counted from the front; with match_outer INDICES start with
    DATA's dims before it."""
    if not data:
        raise ShapeError(f"DATA must have rank >= 1, got {list(data)}")
    axis = axis_index(axis, len(data), where=f"DATA {list(data)}")
    if match_outer and tuple(indices[:axis]) != tuple(data[:axis]):
        raise ShapeError(f"with match_outer INDICES {list(indices)} must start with DATA's "
                         f"dims before axis {list(data[:axis])}")
    return axis


def gathered_dims(data: tuple, indices: tuple, axis: int, match_outer: bool) -> tuple:
    """DATA dims before axis + INDICES' shape (less the matched outer dims) + DATA dims after."""
    kept = tuple(indices[axis:]) if match_outer else tuple(indices)
    return tuple(data[:axis]) + kept + tuple(data[axis + 1:])


@rule("indexing_gather")
def gather(op: OpView, inputs: list) -> list:
    """Gather: DATA dims before axis + INDICES' shape + DATA dims after axis."""
    data, indices = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if data is None or indices is None:
        return [None]
    axis = gather_axis(data.shape, indices.shape, op.arg("axis"), op.arg("match_outer"))
    dims = gathered_dims(data.shape, indices.shape, axis, op.arg("match_outer"))
    return [TensorInfo(dims, data.dtype)]


def gather_gradient_axis(data: tuple, indices: tuple, dy: tuple, axis: int, match_outer: bool) -> int:
    """BatchGatherGradient's axis; dY must have the gather's output shape."""
    axis = gather_axis(data, indices, axis, match_outer)
    expected = gathered_dims(data, indices, axis, match_outer)
    if tuple(dy) != expected:
        raise ShapeError(f"dY {list(dy)} does not match the gathered shape {list(expected)}")
    return axis


@rule("indexing_batch_gather_gradient")
def batch_gather_gradient(op: OpView, inputs: list) -> list:
    """BatchGatherGradient: dDATA like DATA (of dY's type); dY shaped like the gather."""
    data, indices, dy = inputs
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if data is None or dy is None:
        return [None]
    if indices is not None:
        gather_gradient_axis(data.shape, indices.shape, dy.shape, op.arg("axis"), op.arg("match_outer"))
    return [TensorInfo(data.shape, dy.dtype)]


def dense_rows(indices: tuple | None, values: tuple | None, like: tuple | None,
               has_like: bool, output_first_dim: int) -> int | None:
    """SparseToDense's output first dim where the shapes fix it (None: from the indices'
    values, or unknown); values are shaped indices' dims + the rows' dims. Caffe2 takes
    1-D indices only; N-D ones (a Gather's sparse gradient) are read flattened."""
    if has_like and output_first_dim:
        raise ShapeError("the first dim comes from data_to_infer_dim; do not also give "
                         "output_first_dim")
    if indices is not None and not indices:
        raise ShapeError("indices must have rank >= 1, got a scalar")
    if indices is not None and values is not None and tuple(values[:len(indices)]) != tuple(indices):
        raise ShapeError(f"values {list(values)} must have one row per index: their leading dims must be "
                         f"indices' {list(indices)}")
    if like is not None and not like:
        raise ShapeError("data_to_infer_dim must have rank >= 1")
    if has_like:
        return None if like is None else like[0]
    return output_first_dim or None


@rule("indexing_sparse_to_dense")
def sparse_to_dense(op: OpView, inputs: list) -> list:
    """SparseToDense: [first dim, values' dims after indices' dims]; one row per index."""
    indices, values = inputs[0], inputs[1]
    like = inputs[2] if len(inputs) > 2 else None
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    first = dense_rows(*(None if i is None else i.shape for i in (indices, values, like)),
                       op.n_inputs > 2, op.arg("output_first_dim"))
    if values is None or first is None:
        return [None]
    rank = len(indices.shape) if indices is not None else 1
    return [TensorInfo((first,) + values.shape[rank:], values.dtype)]


# -- segments given by lengths ------------------------------------------------------------

def lengths_input(shape, dtype: str, name: str = "lengths") -> None:
    int_tensor(name, shape, dtype)


@rule("indexing_lengths_gather")
def lengths_gather(op: OpView, inputs: list) -> list:
    """LengthsGather: the output's first dim depends on the lengths' values (unknown)."""
    items, lengths, indices = inputs
    if lengths is not None:
        lengths_input(lengths.shape, lengths.dtype, "LENGTHS")
    if indices is not None:
        index_type(indices.shape, indices.dtype)
    if items is not None and not items.shape:
        raise ShapeError("ITEMS must have rank >= 1")
    return [None]


@rule("indexing_lengths_to_ranges")
def lengths_to_ranges(op: OpView, inputs: list) -> list:
    """LengthsToRanges: int32 [len(lengths), 2]."""
    lengths = inputs[0]
    if lengths is None:
        return [None]
    lengths_input(lengths.shape, lengths.dtype)
    return [TensorInfo((lengths.shape[0], 2), "int32")]


def split_by_lengths_axis(dims: tuple, axis: int, n_lengths: int, n_outputs: int) -> int:
    """SplitByLengths' axis counted from the front; the lengths make whole groups."""
    axis = axis_index(axis, len(dims), where=f"input {list(dims)}")
    if n_lengths % n_outputs:
        raise ShapeError(f"{n_lengths} lengths do not make {n_outputs} equal groups (one per output)")
    return axis


@rule("indexing_split_by_lengths")
def split_by_lengths(op: OpView, inputs: list) -> list:
    """SplitByLengths: the parts' sizes depend on the lengths' values (unknown)."""
    data, lengths = inputs
    if lengths is not None:
        lengths_input(lengths.shape, lengths.dtype)
        if data is not None:
            split_by_lengths_axis(data.shape, op.arg("axis"), lengths.shape[0], op.n_outputs)
    return [None] * op.n_outputs
