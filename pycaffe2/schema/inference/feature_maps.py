"""Inference rules and checks of the feature_maps family (Merge{Single,Multi}
{Scalar,List,Map}FeatureTensors and their gradients). The number of merged
features is known from shapes for the multi-feature merges; where it depends
on presence flags or lengths' values it is unknown here.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

LENGTH_TYPES = ("int32", "int64")


def vector(name: str, shape) -> None:
    """Raise unless a feature-map input is 1-D."""
    if len(shape) != 1:
        raise ShapeError(f"{name} must be 1-D, got {list(shape)}")


def lengths_vector(name: str, shape, dtype) -> None:
    """Raise unless a lengths input is a 1-D int32/int64 tensor."""
    if len(shape) != 1 or str(dtype) not in LENGTH_TYPES:
        raise ShapeError(f"{name} must be a 1-D int32 or int64 tensor, got {list(shape)} {dtype}")


def presence_vector(name: str, shape, dtype) -> None:
    """Raise unless a presence input is a 1-D bool tensor."""
    if len(shape) != 1 or str(dtype) != "bool":
        raise ShapeError(f"{name} must be a 1-D bool tensor, got {list(shape)} {dtype}")


def same_examples(name: str, shape, examples: int) -> None:
    """Raise unless a per-example input has one entry per example."""
    if shape[0] != examples:
        raise ShapeError(f"{name} has {shape[0]} entries, but there are {examples} examples")


def feature_ids(ids, count: int) -> None:
    """Raise unless feature_ids names one key per single-feature input."""
    if len(ids) != count:
        raise ShapeError(f"feature_ids has {len(ids)} ids for {count} features")


def same_type(name: str, dtypes) -> None:
    """Raise unless every input of one role has the same type."""
    kinds = sorted(set(map(str, dtypes)))
    if len(kinds) > 1:
        raise ShapeError(f"every {name} input must have the same type, got {', '.join(kinds)}")


def _group(inputs, size: int):
    return [inputs[k:k + size] for k in range(0, len(inputs) - size + 1, size)]


def _examples(infos) -> int | None:
    return infos[0].shape[0] if infos and infos[0] is not None and len(infos[0].shape) == 1 else None


@rule("feature_maps_single_scalar")
def single_scalar(op: OpView, inputs: list) -> list:
    groups = _group(inputs, 2)
    feature_ids(op.arg("feature_ids"), len(groups))
    for k, (value, presence) in enumerate(groups):
        if value is not None:
            vector(f"in{k + 1}", value.shape)
        if presence is not None:
            presence_vector(f"in{k + 1}_presence", presence.shape, presence.dtype)
    examples = _examples(inputs)
    return [TensorInfo((examples,), "int32") if examples is not None else None, None, None]


@rule("feature_maps_single_scalar_gradient")
def single_scalar_gradient(op: OpView, inputs: list) -> list:
    grad = inputs[-1]
    return [TensorInfo(p.shape, grad.dtype) if p is not None and grad is not None else None
            for p in inputs[:-1]][:op.n_outputs]


@rule("feature_maps_single_list")
def single_list(op: OpView, inputs: list) -> list:
    feature_ids(op.arg("feature_ids"), len(_group(inputs, 3)))
    examples = _examples(inputs)
    return [TensorInfo((examples,), "int32") if examples is not None else None, None, None, None]


@rule("feature_maps_single_map")
def single_map(op: OpView, inputs: list) -> list:
    feature_ids(op.arg("feature_ids"), len(_group(inputs, 4)))
    examples = _examples(inputs)
    return [TensorInfo((examples,), "int32") if examples is not None else None, None, None, None, None]


@rule("feature_maps_single_list_gradient")
def single_list_gradient(op: OpView, inputs: list) -> list:
    return [None] * op.n_outputs


def _total(infos) -> int | None:
    if any(info is None or len(info.shape) != 1 for info in infos):
        return None
    return sum(info.shape[0] for info in infos)


@rule("feature_maps_multi_scalar")
def multi_scalar(op: OpView, inputs: list) -> list:
    groups = _group(inputs, 3)
    examples = _examples(inputs)
    features = _total([g[1] for g in groups])
    value = inputs[2].dtype if inputs[2] is not None else None
    return [TensorInfo((examples,), "int32") if examples is not None else None,
            TensorInfo((features,), "int64") if features is not None else None,
            TensorInfo((features,), value) if features is not None and value is not None else None]


@rule("feature_maps_multi_scalar_gradient")
def multi_scalar_gradient(op: OpView, inputs: list) -> list:
    return [None] * op.n_outputs


def _multi_nested(inputs, size: int, n_outputs: int) -> list:
    groups = _group(inputs, size)
    examples = _examples(inputs)
    features = _total([g[1] for g in groups])
    values = _total([g[-1] for g in groups])
    out = [TensorInfo((examples,), "int32") if examples is not None else None,
           TensorInfo((features,), "int64") if features is not None else None,
           TensorInfo((features,), "int32") if features is not None else None]
    for role in range(3, size):
        dtype = inputs[role].dtype if inputs[role] is not None else None
        out.append(TensorInfo((values,), dtype) if values is not None and dtype is not None else None)
    return out[:n_outputs]


@rule("feature_maps_multi_list")
def multi_list(op: OpView, inputs: list) -> list:
    return _multi_nested(inputs, 4, op.n_outputs)


@rule("feature_maps_multi_map")
def multi_map(op: OpView, inputs: list) -> list:
    return _multi_nested(inputs, 5, op.n_outputs)


@rule("feature_maps_multi_list_gradient")
def multi_list_gradient(op: OpView, inputs: list) -> list:
    return [None] * op.n_outputs
