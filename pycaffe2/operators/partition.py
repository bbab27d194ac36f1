"""NumPy kernels of the partition family: Partition and LengthsPartition shard
items by key mod P (P = outputs / inputs), GatherByKey puts them back.

An item's shard is its key mod P, non-negative (NumPy's mod, Caffe2's
moduloPartition); within a shard items keep their order. The loops run over
the partitions and inputs, never over items.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.lengths_util import check_lengths
from pycaffe2.schema.inference.partition import (
    check_extra,
    check_keys,
    check_shards,
    partition_count,
)
from pycaffe2.schema.inference.segment import index_vector


def _shard(inputs: tuple, parts: int, pack_first_input) -> list:
    """[keys, extras...] split into `parts` lists of [keys_j, extras_j...]."""
    keys, extras = inputs[0], inputs[1:]
    check_keys(keys.shape, keys.dtype)
    for index, extra in enumerate(extras, 1):
        check_extra(index, np.shape(extra), keys.shape)
    flat = keys.reshape(-1)
    shards = np.mod(flat, parts)
    outputs = []
    for j in range(parts):
        picked = shards == j
        first = (flat[picked] - j) // parts if pack_first_input else flat[picked]
        outputs.append([first] + [e.reshape(-1, *e.shape[keys.ndim:])[picked] for e in extras])
    return outputs


@register_cpu("Partition")
def partition(*inputs, pack_first_input, num_outputs):
    parts = partition_count(len(inputs), num_outputs)
    return tuple(out for shard in _shard(inputs, parts, pack_first_input) for out in shard)


@register_cpu("LengthsPartition")
def lengths_partition(lengths, *inputs, pack_first_input, num_outputs):
    parts = partition_count(len(inputs) + 1, num_outputs)
    keys = inputs[0]
    check_keys(keys.shape, keys.dtype, one_d=True)
    index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))
    values = check_lengths(lengths, total=len(keys), what="the key tensor")
    segment = np.repeat(np.arange(len(values)), values)
    shards = np.mod(keys, parts)
    outputs = []
    for j, shard in enumerate(_shard(inputs, parts, pack_first_input)):
        counts = np.bincount(segment[shards == j], minlength=len(values)).astype(np.int32)
        outputs += [counts, *shard]
    return tuple(outputs)


@register_cpu("GatherByKey")
def gather_by_key(keys, *shards):
    check_keys(keys.shape, keys.dtype, one_d=True)
    check_shards([s.shape for s in shards], [s.dtype.name for s in shards])
    parts = len(shards)
    slot = np.mod(keys, parts)
    out = np.empty((len(keys), *shards[0].shape[1:]), shards[0].dtype)
    for j, shard in enumerate(shards):
        at = np.flatnonzero(slot == j)
        if len(at) != len(shard):
            raise ValueError(f"shard {j} holds {len(shard)} rows, but {len(at)} keys go to it")
        out[at] = shard
    return out
