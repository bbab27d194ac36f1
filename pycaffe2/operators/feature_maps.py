"""NumPy kernels of the feature_maps family: the Merge*FeatureTensors ops of
DPER-style nets and their gradients.

Every merge interleaves segments ordered by example, then input. Each input's
entries appear in the merged output in its own order, so the kernels compute,
per merged entry, the input it came from (`owner`) and scatter or gather each
input's entries through the mask `owner == i`.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.feature_maps import (
    feature_ids as check_feature_ids,
)
from pycaffe2.schema.inference.feature_maps import (
    lengths_vector,
    presence_vector,
    same_examples,
    same_type,
    vector,
)


def _groups(inputs, size: int) -> list:
    if len(inputs) % size:
        raise ValueError(f"expected the inputs in groups of {size}, got {len(inputs)} inputs")
    return [inputs[k:k + size] for k in range(0, len(inputs), size)]


def _lengths(name: str, lengths, examples: int) -> np.ndarray:
    lengths_vector(name, lengths.shape, lengths.dtype)
    same_examples(name, lengths.shape, examples)
    out = lengths.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} holds a negative length {int(out.min())}")
    return out


def _presence(name: str, presence, examples: int) -> np.ndarray:
    presence_vector(name, presence.shape, presence.dtype)
    same_examples(name, presence.shape, examples)
    return presence


def _default(dtype) -> object:
    """The value Caffe2 writes where a gradient has no entry (T())."""
    return b"" if dtype == object else dtype.type(0)


def _empty(count: int, dtype) -> np.ndarray:
    out = np.empty(count, dtype)
    if dtype == object:
        out[:] = b""
    return out


def _check_totals(counts: np.ndarray, sizes, names) -> None:
    """Raise unless each input's lengths fit its values (checked before any per-entry allocation)."""
    for i, (size, name) in enumerate(zip(sizes, names)):
        need = int(counts[:, i].sum())
        if need > size:
            raise ValueError(f"{name} has {size} entries, its lengths need {need}")


def _owners(counts: np.ndarray) -> np.ndarray:
    """counts [examples, inputs] -> the input owning each merged entry, example-major."""
    return np.repeat(np.tile(np.arange(counts.shape[1]), counts.shape[0]), counts.ravel())


def _merge(parts: list, owner: np.ndarray, role: str) -> np.ndarray:
    """Scatter each input's entries into the merged order given by `owner`."""
    same_type(role, [p.dtype for p in parts])
    out = _empty(owner.size, parts[0].dtype)
    for i, part in enumerate(parts):
        vector(f"in{i + 1}_{role}", part.shape)
        mask = owner == i
        count = int(mask.sum())
        if part.shape[0] < count:
            raise ValueError(f"in{i + 1}_{role} has {part.shape[0]} entries, its lengths need {count}")
        out[mask] = part[:count]
    return out


def _exact(name: str, part, need: int) -> None:
    if part.shape[0] != need:
        raise ValueError(f"{name} has {part.shape[0]} entries, its lengths say {need}")


def _total_is(grad, total: int) -> None:
    vector("the values' gradient", grad.shape)
    if grad.shape[0] != total:
        raise ValueError(f"the values' gradient has {grad.shape[0]} entries, the lengths say {total}")


def _split(grad, owner: np.ndarray, count: int) -> list:
    """Gather back each input's entries of a merged gradient."""
    vector("the values' gradient", grad.shape)
    if grad.shape[0] != owner.size:
        raise ValueError(f"the values' gradient has {grad.shape[0]} entries, the lengths say {owner.size}")
    return [grad[owner == i] for i in range(count)]


# --- single-feature merges ---------------------------------------------------

@register_cpu("MergeSingleScalarFeatureTensors")
def merge_single_scalar(*inputs, feature_ids):
    groups = _groups(inputs, 2)
    check_feature_ids(feature_ids, len(groups))
    examples = inputs[0].shape[0] if inputs[0].ndim == 1 else 0
    for k, (value, _) in enumerate(groups):
        vector(f"in{k + 1}", value.shape)
        same_examples(f"in{k + 1}", value.shape, examples)
    same_type("value", [v.dtype for v, _ in groups])
    presence = np.stack([_presence(f"in{k + 1}_presence", p, examples) for k, (_, p) in enumerate(groups)], 1)
    values = np.stack([v for v, _ in groups], 1)
    keys = np.broadcast_to(np.asarray(feature_ids, np.int64), presence.shape)
    return presence.sum(1).astype(np.int32), keys[presence], values[presence]


@register_cpu("MergeSingleScalarFeatureTensorsGradient")
def merge_single_scalar_gradient(*inputs, num_outputs):
    *presences, grad = inputs
    if len(presences) != num_outputs:
        raise ValueError(f"{len(presences)} presence inputs for {num_outputs} gradients")
    examples = presences[0].shape[0] if presences[0].ndim == 1 else 0
    presence = np.stack([_presence(f"in{k + 1}_presence", p, examples) for k, p in enumerate(presences)], 1)
    vector("out_values_grad", grad.shape)
    if grad.shape[0] != int(presence.sum()):
        raise ValueError(f"out_values_grad has {grad.shape[0]} entries for {int(presence.sum())} present features")
    full = np.full(presence.shape, _default(grad.dtype), grad.dtype)
    full[presence] = grad
    return tuple(np.ascontiguousarray(full[:, k]) for k in range(num_outputs))


def _single_nested(inputs, size: int, feature_ids):
    """Single list (size 3) and map (size 4) merges."""
    groups = _groups(inputs, size)
    check_feature_ids(feature_ids, len(groups))
    examples = inputs[0].shape[0] if inputs[0].ndim == 1 else 0
    lengths = np.stack([_lengths(f"in{k + 1}_lengths", g[0], examples) for k, g in enumerate(groups)], 1)
    presence = np.stack([_presence(f"in{k + 1}_presence", g[-1], examples) for k, g in enumerate(groups)], 1)
    counts = np.where(presence, lengths, 0)
    for role in range(1, size - 1):
        _check_totals(counts, [g[role].shape[0] if g[role].ndim else 0 for g in groups],
                      [f"in{k + 1}_{'keys' if role == 1 and size == 4 else 'values'}" for k in range(len(groups))])
    owner = _owners(counts)
    keys = np.broadcast_to(np.asarray(feature_ids, np.int64), presence.shape)
    merged = [_merge([g[role] for g in groups], owner, "keys" if role == 1 and size == 4 else "values")
              for role in range(1, size - 1)]
    return (presence.sum(1).astype(np.int32), keys[presence], lengths[presence].astype(np.int32), *merged)


@register_cpu("MergeSingleListFeatureTensors")
def merge_single_list(*inputs, feature_ids):
    return _single_nested(inputs, 3, feature_ids)


@register_cpu("MergeSingleMapFeatureTensors")
def merge_single_map(*inputs, feature_ids):
    return _single_nested(inputs, 4, feature_ids)


@register_cpu("MergeSingleListFeatureTensorsGradient", "MergeSingleMapFeatureTensorsGradient")
def merge_single_nested_gradient(*inputs, num_outputs):
    *rest, grad = inputs
    groups = _groups(rest, 2)
    if len(groups) != num_outputs:
        raise ValueError(f"{len(groups)} (lengths, presence) pairs for {num_outputs} gradients")
    examples = rest[0].shape[0] if rest[0].ndim == 1 else 0
    lengths = np.stack([_lengths(f"in{k + 1}_lengths", g[0], examples) for k, g in enumerate(groups)], 1)
    presence = np.stack([_presence(f"in{k + 1}_presence", g[1], examples) for k, g in enumerate(groups)], 1)
    counts = np.where(presence, lengths, 0)
    _total_is(grad, int(counts.sum()))
    return tuple(_split(grad, _owners(counts), num_outputs))


# --- multi-feature merges ----------------------------------------------------

def _multi_lengths(groups) -> np.ndarray:
    examples = groups[0][0].shape[0] if groups[0][0].ndim == 1 else 0
    return np.stack([_lengths(f"in{k + 1}_lengths", g[0], examples) for k, g in enumerate(groups)], 1)


@register_cpu("MergeMultiScalarFeatureTensors")
def merge_multi_scalar(*inputs):
    groups = _groups(inputs, 3)
    lengths = _multi_lengths(groups)
    for k, g in enumerate(groups):
        for role, name in ((1, "keys"), (2, "values")):
            vector(f"in{k + 1}_{name}", g[role].shape)
            _exact(f"in{k + 1}_{name}", g[role], int(lengths[:, k].sum()))
    owner = _owners(lengths)
    keys = _merge([g[1] for g in groups], owner, "keys").astype(np.int64)
    return lengths.sum(1).astype(np.int32), keys, _merge([g[2] for g in groups], owner, "values")


@register_cpu("MergeMultiScalarFeatureTensorsGradient")
def merge_multi_scalar_gradient(*inputs, num_outputs):
    *lengths_inputs, grad = inputs
    if len(lengths_inputs) != num_outputs:
        raise ValueError(f"{len(lengths_inputs)} lengths inputs for {num_outputs} gradients")
    lengths = _multi_lengths([[x] for x in lengths_inputs])
    _total_is(grad, int(lengths.sum()))
    return tuple(_split(grad, _owners(lengths), num_outputs))


def _multi_nested(inputs, size: int):
    """Multi list (size 4) and map (size 5) merges."""
    groups = _groups(inputs, size)
    lengths = _multi_lengths(groups)
    for k, g in enumerate(groups):
        for role, name in ((1, "keys"), (2, "values_lengths")):
            vector(f"in{k + 1}_{name}", g[role].shape)
            _exact(f"in{k + 1}_{name}", g[role], int(lengths[:, k].sum()))
        inner = _lengths(f"in{k + 1}_values_lengths", g[2], g[2].shape[0])
        for role in range(3, size):
            vector(f"in{k + 1}_values", g[role].shape)
            _exact(f"in{k + 1}_values", g[role], int(inner.sum()))
    owner = _owners(lengths)
    keys = _merge([g[1] for g in groups], owner, "keys").astype(np.int64)
    inner = _merge([g[2] for g in groups], owner, "values_lengths").astype(np.int64)
    inner_owner = np.repeat(owner, inner)
    merged = [_merge([g[role] for g in groups], inner_owner, "values") for role in range(3, size)]
    return (lengths.sum(1).astype(np.int32), keys, inner.astype(np.int32), *merged)


@register_cpu("MergeMultiListFeatureTensors")
def merge_multi_list(*inputs):
    return _multi_nested(inputs, 4)


@register_cpu("MergeMultiMapFeatureTensors")
def merge_multi_map(*inputs):
    return _multi_nested(inputs, 5)


@register_cpu("MergeMultiListFeatureTensorsGradient", "MergeMultiMapFeatureTensorsGradient")
def merge_multi_nested_gradient(*inputs, num_outputs):
    *rest, grad = inputs
    groups = _groups(rest, 2)
    if len(groups) != num_outputs:
        raise ValueError(f"{len(groups)} (lengths, values_lengths) pairs for {num_outputs} gradients")
    lengths = _multi_lengths(groups)
    for k, g in enumerate(groups):
        vector(f"in{k + 1}_values_lengths", g[1].shape)
        _exact(f"in{k + 1}_values_lengths", g[1], int(lengths[:, k].sum()))
        _lengths(f"in{k + 1}_values_lengths", g[1], g[1].shape[0])
    owner = _owners(lengths)
    inner = _merge([g[1] for g in groups], owner, "values_lengths").astype(np.int64)
    _total_is(grad, int(inner.sum()))
    return tuple(_split(grad, np.repeat(owner, inner), num_outputs))


# --- gradient makers ---------------------------------------------------------

def _maker(size: int, reads: tuple, grad_of: int, output: int):
    def make(g):
        count = len(g.op.input) // size
        inputs = [g.I(k * size + r) for k in range(count) for r in reads]
        outputs = [g.GI(k * size + grad_of) for k in range(count)]
        return [g.Op(g.op.type + "Gradient", [*inputs, g.GO(output)], outputs)]
    return make


register_gradient("MergeSingleScalarFeatureTensors")(_maker(2, (1,), 0, 2))
register_gradient("MergeSingleListFeatureTensors")(_maker(3, (0, 2), 1, 3))
register_gradient("MergeSingleMapFeatureTensors")(_maker(4, (0, 3), 2, 4))
register_gradient("MergeMultiScalarFeatureTensors")(_maker(3, (0,), 2, 2))
register_gradient("MergeMultiListFeatureTensors")(_maker(4, (0, 2), 3, 3))
register_gradient("MergeMultiMapFeatureTensors")(_maker(5, (0, 2), 4, 4))
