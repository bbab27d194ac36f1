"""NumPy kernels of the id_list family: IndexHash, NGramFromCategorical,
DenseVectorToIdList and MergeIdLists. The checks are the family's inference
module's (schema/inference/id_list.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.id_list import dense_matrix, id_lists, index_hash, ngram_args, ngram_floats


@register_cpu("IndexHash")
def index_hash_op(indices, *, seed, modulo):
    index_hash(indices.dtype.name, modulo)
    dtype = indices.dtype.type
    with np.errstate(over="ignore"):
        start = (np.array(seed, np.int64) * np.int64(0xDEADBEEF)).astype(dtype)  # wraps as C++ does
        hashed = np.full(indices.shape, start, dtype)
        data = np.ascontiguousarray(indices).astype(indices.dtype.newbyteorder("<"))
        raw = data.view(np.int8).reshape(*indices.shape, indices.dtype.itemsize)
        for b in range(indices.dtype.itemsize):  # the index's bytes, first to last
            hashed = (hashed * dtype(65537) + raw[..., b].astype(dtype)).astype(dtype)
    remainder = np.fmod(hashed.astype(np.int64), np.int64(modulo))  # C's %: the dividend's sign
    return ((np.int64(modulo) + remainder) % np.int64(modulo)).astype(dtype)


@register_cpu("NGramFromCategorical")
def ngram_from_categorical(floats, *, col_ids, categorical_limits, vals):
    ngram_args(col_ids, categorical_limits, vals)
    ngram_floats(floats.shape, floats.dtype.name, col_ids)
    table = floats.reshape(floats.shape[0], -1)
    out = np.zeros(floats.shape[0], np.int64)
    base, start = 1, 0
    for column, limit in zip(col_ids, categorical_limits):  # one pass per combined column (args-bounded)
        codes = dict(zip(vals[start:start + limit], range(0, limit * base, base)))  # a repeated value: the last
        keys = np.array(sorted(codes), np.int64)
        weights = np.array([codes[k] for k in keys], np.int64)
        x = table[:, column].astype(np.float64)
        rounded = np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), -2.0**31, 2.0**31 - 1)  # C round()
        rounded = np.nan_to_num(rounded).astype(np.int64)
        at = np.minimum(np.searchsorted(keys, rounded), keys.size - 1)
        out += np.where(keys[at] == rounded, weights[at], 0)
        base, start = base * limit, start + limit
    return out


@register_cpu("DenseVectorToIdList")
def dense_vector_to_id_list(values):
    dense_matrix(values.shape, values.dtype.name)
    with np.errstate(invalid="ignore"):
        present = np.trunc(values.astype(np.float64) + 0.5) != 0
    cols = np.nonzero(present)[1]
    return present.sum(1).astype(np.int32), cols.astype(np.int32)


@register_cpu("MergeIdLists")
def merge_id_lists(*inputs):
    pairs = [(inputs[k], inputs[k + 1]) for k in range(0, len(inputs), 2)]
    id_lists([((lengths.shape, lengths.dtype.name), (values.shape, values.dtype.name)) for lengths, values in pairs])
    batch = pairs[0][0].shape[0]
    examples, ids = [], []
    for k, (lengths, values) in enumerate(pairs):
        if lengths.size and lengths.min() < 0:
            raise ValueError(f"lengths_{k} holds a negative length {int(lengths.min())}")
        if int(lengths.sum()) > values.shape[0]:
            raise ValueError(f"lengths_{k} add up to {int(lengths.sum())}, values_{k} has {values.shape[0]} ids")
        examples.append(np.repeat(np.arange(batch), lengths.astype(np.int64)))
        ids.append(values[:int(lengths.sum())])
    example, value = np.concatenate(examples), np.concatenate(ids)
    order = np.lexsort((value, example))
    example, value = example[order], value[order]
    keep = np.ones(value.size, bool)
    keep[1:] = (example[1:] != example[:-1]) | (value[1:] != value[:-1])
    merged_lengths = np.bincount(example[keep], minlength=batch).astype(np.int32)
    return merged_lengths, value[keep].astype(pairs[0][1].dtype)
