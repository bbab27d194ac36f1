"""Index kernels: IntIndexCreate, LongIndexCreate, StringIndexCreate, IndexGet,
IndexLoad, IndexStore, IndexFreeze, IndexSize over pycaffe2.objects.Index. An op
that changes an index checks everything first and changes it last, so a failing
op leaves it as it was."""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.objects import Index
from pycaffe2.operators.counter import describe
from pycaffe2.operators.registry import register_cpu


def index_of(value, name: str) -> Index:
    if not isinstance(value, Index):
        raise PyCaffe2Error(f"input '{name}' must be an index made by IntIndexCreate, LongIndexCreate "
                            f"or StringIndexCreate, got {describe(value)}")
    return value


@register_cpu("IntIndexCreate")
def int_index_create(*, max_elements):
    return Index("int32", max_elements)


@register_cpu("LongIndexCreate")
def long_index_create(*, max_elements):
    return Index("int64", max_elements)


@register_cpu("StringIndexCreate")
def string_index_create(*, max_elements):
    return Index("string", max_elements)


@register_cpu("IndexGet")
def index_get(index, keys, *, input_names):
    return index_of(index, input_names[0]).get(keys)


@register_cpu("IndexLoad")
def index_load(index, items, *, skip_first_entry, input_names):
    index = index_of(index, input_names[0])
    items = np.asarray(items)
    if skip_first_entry:
        if items.ndim != 1 or items.size == 0:
            raise PyCaffe2Error(f"with skip_first_entry=1 items must be 1-D and non-empty, "
                                f"got shape {list(items.shape)}")
        items = items[1:]
    index.load(items)
    return index


@register_cpu("IndexFreeze")
def index_freeze(index, *, input_names):
    index = index_of(index, input_names[0])
    index.frozen = True
    return index


@register_cpu("IndexStore")
def index_store(index, *, input_names):
    return index_of(index, input_names[0]).store()


@register_cpu("IndexSize")
def index_size(index, *, input_names):
    return np.array(index_of(index, input_names[0]).size(), np.int64)
