"""Inference rules of the sparse_dense family: SparseToDenseMask (and its
gradient), BatchSparseToDense / BatchDenseToSparse, GatherRanges,
GatherRangesToDense and SparseLabelSplit (and its gradient).

Shapes that depend on values (GatherRanges' OUTPUT, the per-label outputs of
SparseLabelSplit) are unknown here; the rest follow from the shapes and args.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

# --- checks shared with the kernels -----------------------------------------------------------

def check_mask(mask) -> list:
    """SparseToDenseMask's mask: ids >= 0, not empty, no id twice."""
    mask = list(mask or [])
    if not mask:
        raise ShapeError("mask must not be empty")
    if min(mask) < 0:
        raise ShapeError(f"mask ids must be >= 0, got {min(mask)}")
    if len(set(mask)) != len(mask):
        twice = next(m for m in mask if mask.count(m) > 1)
        raise ShapeError(f"mask holds id {twice} twice")
    return mask


def mask_shapes(indices, values, default, lengths, n_mask: int) -> tuple:
    """SparseToDenseMask's output and presence-mask shapes from its input shapes."""
    if len(values) < 1 or values[0] != indices[0]:
        raise ShapeError(f"values {list(values)} must have one row per index ({indices[0]})")
    if tuple(default) != tuple(values[1:]):
        raise ShapeError(f"default_value {list(default)} must have the shape of a row of values {list(values[1:])}")
    rows = () if lengths is None else (lengths[0],)
    if lengths is not None and len(lengths) != 1:
        raise ShapeError(f"lengths must be 1-D, got {list(lengths)}")
    return (*rows, n_mask, *default), (*rows, n_mask)


def check_batch(lengths: TensorInfo, indices: TensorInfo) -> None:
    index_vector("lengths", lengths.shape, lengths.dtype)
    index_vector("indices", indices.shape, indices.dtype)


def dense_last_dim(dense_last_dim: int, shaper_shape) -> int:
    """BatchSparseToDense's last dim: the arg, or output_shape_inference's (they must agree)."""
    if shaper_shape is not None:
        if len(shaper_shape) != 2:
            raise ShapeError(f"output_shape_inference must be 2-D, got {list(shaper_shape)}")
        if dense_last_dim not in (-1, shaper_shape[1]):
            raise ShapeError(f"dense_last_dim {dense_last_dim} disagrees with output_shape_inference "
                             f"{list(shaper_shape)}")
        return shaper_shape[1]
    if dense_last_dim < 1:
        raise ShapeError(f"dense_last_dim must be >= 1 (or give output_shape_inference), got {dense_last_dim}")
    return dense_last_dim


def check_ranges(data, ranges, dtype) -> None:
    """GatherRanges' inputs: 1-D DATA, int32/int64 RANGES [batch, n >= 1, 2]."""
    if len(data) != 1:
        raise ShapeError(f"DATA must be 1-D, got {list(data)}")
    if len(ranges) != 3 or ranges[1] < 1 or ranges[2] != 2 or str(dtype) not in ("int32", "int64"):
        raise ShapeError(f"RANGES must be an int32/int64 [batch, ranges >= 1, 2] tensor, got {list(ranges)} {dtype}")


def check_dense_lengths(lengths, n_outputs: int, n_ranges: int | None = None) -> list:
    """GatherRangesToDense's lengths: one > 0 per output (and per range of an example)."""
    lengths = list(lengths or [])
    if not lengths or min(lengths) <= 0:
        raise ShapeError(f"lengths must list one length > 0 per output, got {lengths}")
    if len(lengths) != n_outputs:
        raise ShapeError(f"{len(lengths)} lengths for {n_outputs} outputs")
    if n_ranges is not None and n_ranges != n_outputs:
        raise ShapeError(f"RANGES holds {n_ranges} ranges per example for {n_outputs} outputs")
    return lengths


def label_count(num_labels: int, n_outputs: int) -> int:
    """SparseLabelSplit's label count: the arg, or half the outputs; 2r or 2r + 1 outputs."""
    if num_labels == -1:
        num_labels = n_outputs // 2
    if num_labels < 1 or n_outputs not in (2 * num_labels, 2 * num_labels + 1):
        raise ShapeError(f"{n_outputs} outputs do not fit num_labels {num_labels} (2 * num_labels, "
                         "+ 1 with the offset map)")
    return num_labels


# --- rules ------------------------------------------------------------------------------------

@rule("sparse_dense_mask")
def sparse_to_dense_mask(op: OpView, inputs: list) -> list:
    """[len(lengths)] + [len(mask)] + default_value's shape, of values' type; the presence
    mask is bool [len(lengths)] + [len(mask)]."""
    mask = check_mask(op.arg("mask"))
    if op.n_outputs > 1 and not op.arg("return_presence_mask", 0):
        raise ShapeError("a second output (presence_mask) needs return_presence_mask=1")
    indices, values, default = inputs[:3]
    lengths = inputs[3] if len(inputs) > 3 else None
    if indices is not None:
        index_vector("indices", indices.shape, indices.dtype)
    if lengths is not None:
        index_vector("lengths", lengths.shape, lengths.dtype)
    if indices is None or values is None or default is None or (len(inputs) > 3 and lengths is None):
        return [None] * op.n_outputs
    if values.dtype != default.dtype:
        raise ShapeError(f"default_value ({default.dtype}) must have values' type ({values.dtype})")
    out, presence = mask_shapes(indices.shape, values.shape, default.shape,
                                None if lengths is None else lengths.shape, len(mask))
    return [TensorInfo(out, values.dtype), TensorInfo(presence, "bool")][:op.n_outputs]


@rule("sparse_dense_mask_gradient")
def sparse_to_dense_mask_gradient(op: OpView, inputs: list) -> list:
    """dvalues: [len(indices)] + dOUTPUT's dims after the mask dim."""
    mask = check_mask(op.arg("mask"))
    indices, grad = inputs[:2]
    if indices is None or grad is None:
        return [None]
    index_vector("indices", indices.shape, indices.dtype)
    lead = 2 if len(inputs) > 2 else 1
    if len(grad.shape) < lead or grad.shape[lead - 1] != len(mask):
        raise ShapeError(f"dOUTPUT {list(grad.shape)} must have {len(mask)} (the mask's size) at dim {lead - 1}")
    return [TensorInfo((indices.shape[0], *grad.shape[lead:]), grad.dtype)]


@rule("sparse_dense_batch_to_dense")
def batch_sparse_to_dense(op: OpView, inputs: list) -> list:
    """[len(lengths), dense_last_dim] of values' type."""
    lengths, indices, values = inputs[:3]
    shaper = inputs[3] if len(inputs) > 3 else None
    if len(inputs) > 3 and shaper is None:
        return [None]
    last = dense_last_dim(op.arg("dense_last_dim"), None if shaper is None else shaper.shape)
    if lengths is None or indices is None or values is None:
        return [None]
    check_batch(lengths, indices)
    if values.shape != indices.shape:
        raise ShapeError(f"values {list(values.shape)} must have indices' shape {list(indices.shape)}")
    return [TensorInfo((lengths.shape[0], last), values.dtype)]


@rule("sparse_dense_batch_to_sparse")
def batch_dense_to_sparse(op: OpView, inputs: list) -> list:
    """indices' shape, of dense's type."""
    lengths, indices, dense = inputs
    if lengths is None or indices is None or dense is None:
        return [None]
    check_batch(lengths, indices)
    if len(dense.shape) != 2 or dense.shape[0] != lengths.shape[0]:
        raise ShapeError(f"dense must be 2-D with one row per length ({lengths.shape[0]}), got {list(dense.shape)}")
    return [TensorInfo(indices.shape, dense.dtype)]


@rule("sparse_dense_gather_ranges")
def gather_ranges(op: OpView, inputs: list) -> list:
    """OUTPUT: DATA's type, of a length that depends on the ranges (unknown); LENGTHS:
    int32 [batch]."""
    data, ranges = inputs
    if data is None or ranges is None:
        return [None, None]
    check_ranges(data.shape, ranges.shape, ranges.dtype)
    return [None, TensorInfo((ranges.shape[0],), "int32")]


@rule("sparse_dense_gather_ranges_to_dense")
def gather_ranges_to_dense(op: OpView, inputs: list) -> list:
    """Output j: DATA's type, [batch, lengths[j]]."""
    data, ranges = inputs[:2]
    lengths = check_dense_lengths(op.arg("lengths"), op.n_outputs)
    if op.arg("min_observation", 10000) <= 0:
        raise ShapeError(f"min_observation must be > 0, got {op.arg('min_observation')}")
    key = inputs[2] if len(inputs) > 2 else None
    if key is not None:
        index_vector("KEY", key.shape, key.dtype, ("int64",))
    if data is None or ranges is None:
        return [None] * op.n_outputs
    check_ranges(data.shape, ranges.shape, ranges.dtype)
    check_dense_lengths(lengths, op.n_outputs, ranges.shape[1])
    return [TensorInfo((ranges.shape[0], n), data.dtype) for n in lengths]


@rule("sparse_dense_label_split")
def sparse_label_split(op: OpView, inputs: list) -> list:
    """Per label: values of label_value's type and int32 example ids, of lengths that
    depend on the labels (unknown); the offset map is int32 [len(label_index)]."""
    count = label_count(op.arg("num_labels", -1), op.n_outputs)
    length, index, _value = inputs
    if length is not None:
        index_vector("length", length.shape, length.dtype, ("int32",))
    if index is not None:
        index_vector("label_index", index.shape, index.dtype, ("int64",))
    outputs = [None] * (2 * count)
    if op.n_outputs > 2 * count:
        outputs.append(None if index is None else TensorInfo(index.shape, "int32"))
    return outputs


@rule("sparse_dense_label_split_gradient")
def sparse_label_split_gradient(op: OpView, inputs: list) -> list:
    """dlabel_value: [len(label_index)] of the gradients' type."""
    count = op.arg("num_labels", 0)
    if count < 1 or op.n_inputs not in (count + 2, count + 3):
        raise ShapeError(f"{op.n_inputs} inputs do not fit num_labels {count} (length, label_index, one "
                         "gradient per label, optionally the offset map)")
    index, grad = inputs[1], inputs[2]
    if index is None or grad is None:
        return [None]
    index_vector("label_index", index.shape, index.dtype, ("int64",))
    return [TensorInfo(index.shape, grad.dtype)]
