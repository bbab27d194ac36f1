"""NumPy kernels of the find family: Find (last position of each query in an
index) and FindDuplicateElements. Shape and type checks are the schema's
(schema/inference/find.py).
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.find import duplicates_input, find_inputs


@register_cpu("Find")
def find(index, query, *, missing_value):
    find_inputs(index.dtype.name, query.dtype.name)
    flat, needles = index.reshape(-1), query.reshape(-1)
    out = np.full(needles.shape, missing_value, np.int64)
    if flat.size:
        # np.unique gives each value's first position; in the reversed index that is its last.
        values, first_reversed = np.unique(flat[::-1], return_index=True)
        where = np.minimum(np.searchsorted(values, needles), values.size - 1)
        hit = values[where] == needles
        out[hit] = flat.size - 1 - first_reversed[where[hit]]
    return out.astype(index.dtype).reshape(query.shape)


@register_cpu("FindDuplicateElements")
def find_duplicate_elements(data):
    duplicates_input(data.shape, data.dtype.name)
    if data.dtype.kind == "f":
        _, first = np.unique(data, return_index=True, equal_nan=False)
    else:
        _, first = np.unique(data, return_index=True)
    repeat = np.ones(data.shape[0], bool)
    repeat[first] = False
    return np.flatnonzero(repeat).astype(np.int64)
