"""Inference rules of the partition family: Partition, LengthsPartition and
GatherByKey. Items go to partition key mod P (non-negative, as Caffe2's
moduloPartition); how many go to each depends on the keys (unknown here).
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

INDEX_TYPES = ("int32", "int64")


# --- checks shared with the kernels -----------------------------------------------------------

def partition_count(n_inputs: int, n_outputs: int) -> int:
    """P = outputs / inputs, which must divide evenly."""
    if n_outputs % n_inputs:
        raise ShapeError(f"{n_outputs} outputs are not a multiple of the {n_inputs} inputs")
    return n_outputs // n_inputs


def check_keys(shape, dtype, one_d: bool = False) -> None:
    if str(dtype) not in INDEX_TYPES or (one_d and len(shape) != 1):
        raise ShapeError(f"the keys must be a{' 1-D' if one_d else 'n'} int32 or int64 tensor, got "
                         f"{list(shape)} {dtype}")


def check_extra(index: int, shape, keys_shape) -> None:
    """An extra input starts with the keys' shape (optionally with more dims)."""
    if tuple(shape[:len(keys_shape)]) != tuple(keys_shape):
        raise ShapeError(f"input {index} {list(shape)} must start with the keys' shape {list(keys_shape)}")


def check_shards(shapes: list, dtypes: list) -> None:
    """GatherByKey's sharded values: one type and one row shape."""
    for k, (shape, dtype) in enumerate(zip(shapes, dtypes), 1):
        if len(shape) < 1:
            raise ShapeError(f"input {k} must have rank >= 1")
        if tuple(shape[1:]) != tuple(shapes[0][1:]) or dtype != dtypes[0]:
            raise ShapeError(f"input {k} {list(shape)} {dtype} must match input 1 {list(shapes[0])} {dtypes[0]} "
                             "after the first dim")


# --- rules ------------------------------------------------------------------------------------

def _check(op: OpView, inputs: list, first: int) -> None:
    partition_count(op.n_inputs, op.n_outputs)
    keys = inputs[first]
    if keys is None:
        return
    check_keys(keys.shape, keys.dtype, one_d=first == 1)
    for index, extra in enumerate(inputs[first + 1:], first + 1):
        if extra is not None:
            check_extra(index, extra.shape, keys.shape)


@rule("partition_partition")
def partition(op: OpView, inputs: list) -> list:
    """Partition: every output's first dim depends on the keys (unknown)."""
    _check(op, inputs, 0)
    return [None] * op.n_outputs


@rule("partition_lengths")
def lengths_partition(op: OpView, inputs: list) -> list:
    """LengthsPartition: each partition's lengths are int32 [len(lengths)]; the rest unknown."""
    _check(op, inputs, 1)
    lengths = inputs[0]
    if lengths is not None:
        index_vector("lengths", lengths.shape, lengths.dtype, ("int32",))
    info = None if lengths is None else TensorInfo(lengths.shape, "int32")
    return [info if k % op.n_inputs == 0 else None for k in range(op.n_outputs)]


@rule("partition_gather_by_key")
def gather_by_key(op: OpView, inputs: list) -> list:
    """GatherByKey: keys' shape + the shards' row shape, of their type."""
    keys, shards = inputs[0], inputs[1:]
    if keys is not None:
        check_keys(keys.shape, keys.dtype, one_d=True)
    if keys is None or any(s is None for s in shards):
        return [None]
    check_shards([s.shape for s in shards], [s.dtype for s in shards])
    return [TensorInfo((*keys.shape, *shards[0].shape[1:]), shards[0].dtype)]
