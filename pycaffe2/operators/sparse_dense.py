"""NumPy kernels of the sparse_dense family: sparse features (ids with values,
grouped into examples by lengths or ranges) into dense rows and back —
SparseToDenseMask, BatchSparseToDense / BatchDenseToSparse, GatherRanges,
GatherRangesToDense and SparseLabelSplit — with the gradient makers and
gradient ops Caffe2 gives them.

Where one example sets a dense slot twice the later value wins, as in Caffe2's
sequential loops, and only that one gets the slot's gradient.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators._indices import check_in_range
from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.lengths_util import check_lengths
from pycaffe2.schema.inference.segment import index_vector
from pycaffe2.schema.inference.sparse_dense import (
    check_dense_lengths,
    check_mask,
    check_ranges,
    label_count,
    mask_shapes,
)
from pycaffe2.schema.inference.sparse_dense import (
    dense_last_dim as last_dim_of,
)


def _last_of_each(keys: np.ndarray) -> np.ndarray:
    """Positions in `keys` of the last occurrence of each distinct key."""
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    return len(keys) - 1 - first_from_end


def _rows_of(lengths, count: int, what: str) -> np.ndarray:
    """The example (row) of each of `count` entries that `lengths` group in turn."""
    values = check_lengths(lengths, "lengths", total=count, what=what)
    return np.repeat(np.arange(len(values)), values)


# -- SparseToDenseMask ------------------------------------------------------------------------

def _mask_columns(indices: np.ndarray, mask: list) -> np.ndarray:
    """Each index's position in the mask, -1 where the mask does not hold it."""
    mask = np.asarray(mask, np.int64)
    order = np.argsort(mask)
    at = np.minimum(np.searchsorted(mask[order], indices), len(mask) - 1)
    return np.where(mask[order][at] == indices, order[at], -1)


def _mask_inputs(indices, lengths, mask) -> tuple:
    index_vector("indices", indices.shape, indices.dtype)
    rows = np.zeros(len(indices), np.int64) if lengths is None else _rows_of(lengths, len(indices), "indices")
    return (1 if lengths is None else len(lengths)), rows, _mask_columns(indices.astype(np.int64), mask)


@register_cpu("SparseToDenseMask")
def sparse_to_dense_mask(indices, values, default_value, lengths=None, *, mask, return_presence_mask,
                         max_skipped_indices, num_outputs):
    mask = check_mask(mask)
    if values.dtype != default_value.dtype:
        raise ValueError(f"default_value ({default_value.dtype}) must have values' type ({values.dtype})")
    out_shape, presence_shape = mask_shapes(indices.shape, values.shape, default_value.shape,
                                            None if lengths is None else lengths.shape, len(mask))
    n_rows, rows, cols = _mask_inputs(indices, lengths, mask)
    skipped = int(np.count_nonzero(indices < 0))  # Caffe2 skips negative ids, up to a limit
    if skipped and skipped >= max_skipped_indices:
        raise ValueError(f"Too many sparse indices skipped: {skipped} negative ids "
                         f"(max_skipped_indices {max_skipped_indices})")
    check_alloc(out_shape, values.dtype)
    out = np.empty(out_shape, values.dtype)
    out[...] = default_value
    flat = out.reshape(n_rows * len(mask), -1)
    found = np.flatnonzero(cols >= 0)
    slots = rows[found] * len(mask) + cols[found]
    keep = _last_of_each(slots)
    flat[slots[keep]] = values.reshape(len(indices), -1)[found[keep]]
    if num_outputs == 1:
        return (out,)
    presence = np.zeros(n_rows * len(mask), bool)
    presence[slots] = True
    return out, presence.reshape(presence_shape)


@register_cpu("SparseToDenseMaskGradient")
def sparse_to_dense_mask_gradient(indices, grad, lengths=None, *, mask):
    mask = check_mask(mask)
    lead = 1 if lengths is None else 2
    if grad.ndim < lead or grad.shape[lead - 1] != len(mask) or (lengths is not None and
                                                                  grad.shape[0] != len(lengths)):
        raise ValueError(f"dOUTPUT {list(grad.shape)} does not fit {len(mask)} mask ids"
                         + ("" if lengths is None else f" and {len(lengths)} lengths"))
    n_rows, rows, cols = _mask_inputs(indices, lengths, mask)
    found = np.flatnonzero(cols >= 0)
    slots = rows[found] * len(mask) + cols[found]
    keep = _last_of_each(slots)  # the value Caffe2's forward pass kept
    out = np.zeros((len(indices), *grad.shape[lead:]), grad.dtype)
    out[found[keep]] = grad.reshape(n_rows * len(mask), *grad.shape[lead:])[slots[keep]]
    return out


@register_gradient("SparseToDenseMask")
def make_sparse_to_dense_mask_gradient(g):
    inputs = [g.I(0), g.GO(0)] + ([g.I(3)] if len(g.op.input) == 4 else [])
    return [g.Op("SparseToDenseMaskGradient", inputs, [g.GI(1)])]


# -- BatchSparseToDense / BatchDenseToSparse ---------------------------------------------------

def _batch_slots(lengths, indices, last: int) -> np.ndarray:
    """Each entry's flat position in the [len(lengths), last] dense matrix."""
    index_vector("indices", indices.shape, indices.dtype)
    rows = _rows_of(lengths, len(indices), "indices")
    check_in_range(indices, last, span=f"[0, {last}) (the dense last dim)")
    return rows * last + indices.astype(np.int64)


@register_cpu("BatchSparseToDense")
def batch_sparse_to_dense(lengths, indices, values, shaper=None, *, dense_last_dim, default_value):
    last = _last_dim(dense_last_dim, shaper)
    if values.shape != indices.shape:
        raise ValueError(f"values {list(values.shape)} must have indices' shape {list(indices.shape)}")
    slots = _batch_slots(lengths, indices, last)
    out = np.full(check_alloc((len(lengths), last), values.dtype), default_value, values.dtype)
    keep = _last_of_each(slots)
    out.reshape(-1)[slots[keep]] = values[keep]
    return out


def _last_dim(arg: int, shaper) -> int:
    return last_dim_of(arg, None if shaper is None else np.shape(shaper))


@register_cpu("BatchDenseToSparse")
def batch_dense_to_sparse(lengths, indices, dense):
    if dense.ndim != 2 or dense.shape[0] != len(lengths):
        raise ValueError(f"dense must be 2-D with one row per length ({len(lengths)}), got {list(dense.shape)}")
    return dense.reshape(-1)[_batch_slots(lengths, indices, dense.shape[1])]


@register_gradient("BatchSparseToDense")
def make_batch_sparse_to_dense_gradient(g):
    return [g.Op("BatchDenseToSparse", [g.I(0), g.I(1), g.GO(0)], [g.GI(2)])]


@register_gradient("BatchDenseToSparse")
def make_batch_dense_to_sparse_gradient(g):
    return [g.Op("BatchSparseToDense", [g.I(0), g.I(1), g.GO(0), g.I(2)], [g.GI(2)])]


# -- GatherRanges / GatherRangesToDense --------------------------------------------------------

def _range_pairs(data, ranges) -> tuple:
    check_ranges(data.shape, ranges.shape, ranges.dtype)
    pairs = ranges.reshape(-1, 2).astype(np.int64)
    return pairs[:, 0], pairs[:, 1]


def _check_spans(starts, lengths, size: int) -> None:
    bad = np.flatnonzero((starts < 0) | (lengths < 0) | (starts > size) | (lengths > size - starts))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"range (start {int(starts[i])}, length {int(lengths[i])}) does not fit "
                         f"in DATA of size {size}")


@register_cpu("GatherRanges")
def gather_ranges(data, ranges, *, maxOutputSize):
    starts, lengths = _range_pairs(data, ranges)
    _check_spans(starts, lengths, data.size)
    total = int(lengths.sum())
    check_alloc((total,), data.dtype)
    offsets = np.cumsum(lengths) - lengths  # where each range lands in OUTPUT
    picked = np.repeat(starts - offsets, lengths) + np.arange(total)
    per_example = lengths.reshape(ranges.shape[0], ranges.shape[1]).sum(axis=1)
    return data[picked], per_example.astype(np.int32)


@register_cpu("GatherRangesToDense")
def gather_ranges_to_dense(data, ranges, key=None, *, lengths, min_observation, max_mismatched_ratio,
                           max_empty_ratio, num_outputs):
    check_ranges(data.shape, ranges.shape, ranges.dtype)
    widths = check_dense_lengths(lengths, num_outputs, ranges.shape[1])
    if key is not None and (key.dtype != np.int64 or key.shape != data.shape):
        raise ValueError(f"KEY must be int64 of DATA's shape {list(data.shape)}, got {list(key.shape)} {key.dtype}")
    pairs = ranges.astype(np.int64)
    outputs = []
    for j, width in enumerate(widths):
        starts, counts = pairs[:, j, 0], pairs[:, j, 1]
        full = np.flatnonzero(counts == width)  # empty and mismatched ranges give zeros
        _check_spans(starts[full], counts[full], data.size)
        out = np.zeros(check_alloc((len(pairs), width), data.dtype), data.dtype)
        picked = starts[full, None] + np.arange(width)
        if key is not None:  # each range's items in the order of their keys
            picked = np.take_along_axis(picked, np.argsort(key[picked], axis=1, kind="stable"), axis=1)
        out[full] = data[picked]
        _check_ratio(j, "range length mismatch", int(np.count_nonzero((counts != width) & (counts != 0))),
                     len(pairs), min_observation, max_mismatched_ratio)
        _check_ratio(j, "empty ranges", int(np.count_nonzero(counts == 0)), len(pairs), min_observation,
                     max_empty_ratio)
        outputs.append(out)
    return tuple(outputs)


def _check_ratio(j: int, what: str, count: int, total: int, min_observation: int, ratio: float) -> None:
    """Caffe2's alarm: too many bad ranges once min_observation examples are in (this run's)."""
    if ratio < 1.0 and max(total, min_observation) * ratio < count:
        raise ValueError(f"Ratio of {what} for feature at index {j} is {count / max(total, 1):g} "
                         f"({count}/{total}) which exceeds {ratio:g}")


# -- SparseLabelSplit --------------------------------------------------------------------------

def _label_inputs(length, label_index, count: int) -> tuple:
    """Each entry's example and its position among its label's entries (int64)."""
    index_vector("length", length.shape, length.dtype, ("int32",))
    index_vector("label_index", label_index.shape, label_index.dtype, ("int64",))
    examples = _rows_of(length, len(label_index), "label_index")
    check_in_range(label_index, count, "label_index")
    order = np.argsort(label_index, kind="stable")
    starts = np.searchsorted(label_index[order], np.arange(count))
    position = np.empty(len(label_index), np.int64)
    position[order] = np.arange(len(order)) - starts[label_index[order]]
    return examples, position


@register_cpu("SparseLabelSplit")
def sparse_label_split(length, label_index, label_value, *, num_labels, keep_gradient_offset_map, num_outputs):
    count = label_count(num_labels, num_outputs)
    if keep_gradient_offset_map and num_outputs != 2 * count + 1:
        raise ValueError("keep_gradient_offset_map=1 needs the offset map output (2 * num_labels + 1 outputs)")
    if label_value.shape != label_index.shape:
        raise ValueError(f"label_value {list(label_value.shape)} must have label_index's shape "
                         f"{list(label_index.shape)}")
    examples, position = _label_inputs(length, label_index, count)
    picks = [label_index == k for k in range(count)]  # entries keep their order within a label
    outputs = [label_value[p] for p in picks] + [examples[p].astype(np.int32) for p in picks]
    if num_outputs > 2 * count:
        outputs.append(position.astype(np.int32))
    return tuple(outputs)


@register_cpu("SparseLabelSplitGradient")
def sparse_label_split_gradient(length, label_index, *rest, num_labels):
    if num_labels < 1 or len(rest) not in (num_labels, num_labels + 1):
        raise ValueError(f"{len(rest) + 2} inputs do not fit num_labels {num_labels}")
    grads = rest[:num_labels]
    _, position = _label_inputs(length, label_index, num_labels)
    if len(rest) > num_labels:
        offsets = rest[num_labels]
        if offsets.shape != label_index.shape:
            raise ValueError(f"the offset map {list(offsets.shape)} must have label_index's shape")
        position = offsets.astype(np.int64)
    out = np.zeros(label_index.shape, grads[0].dtype)
    for k, grad in enumerate(grads):
        at = np.flatnonzero(label_index == k)
        bad = position[at][(position[at] < 0) | (position[at] >= grad.size)]
        if bad.size:
            raise ValueError(f"label {k}: offset {int(bad[0])} is past its {grad.size} value gradients")
        out[at] = grad.reshape(-1)[position[at]]
    return out


@register_gradient("SparseLabelSplit")
def make_sparse_label_split_gradient(g):
    count = label_count(g.arg("num_labels"), len(g.op.output))
    inputs = [g.I(0), g.I(1)] + [g.GO(k) for k in range(count)]
    if len(g.op.output) > 2 * count:
        inputs.append(g.O(2 * count))
    return [g.Op("SparseLabelSplitGradient", inputs, [g.GI(2)], num_labels=count)]
