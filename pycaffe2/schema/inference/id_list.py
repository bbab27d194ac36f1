"""Inference rules and checks of the id_list family (IndexHash,
NGramFromCategorical, DenseVectorToIdList, MergeIdLists)."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

INDEX_TYPES = ("int32", "int64")
LIMITS = {"int32": 2**31 - 1, "int64": 2**63 - 1}


def index_type(dtype) -> None:
    """Raise unless IndexHash's indices are int32/int64."""
    if str(dtype) not in INDEX_TYPES:
        raise ShapeError(f"Indices must be an int32 or int64 tensor, got {dtype}")


def index_hash(dtype, modulo: int) -> None:
    """Raise unless IndexHash's indices are int32/int64 and modulo is > 0 and fits them
    (checked when the op runs: Caffe2 infers shapes of an IndexHash without modulo)."""
    index_type(dtype)
    if modulo <= 0:
        raise ShapeError(f"modulo must be > 0, got {modulo}")
    if modulo > LIMITS[str(dtype)]:
        raise ShapeError(f"modulo {modulo} is larger than the largest {dtype}")


def ngram_args(col_ids, limits, vals) -> None:
    """Raise unless NGramFromCategorical's args describe len(col_ids) columns."""
    if not col_ids:
        raise ShapeError("col_ids must name at least one column")
    if len(col_ids) != len(limits):
        raise ShapeError(f"col_ids has {len(col_ids)} columns, categorical_limits {len(limits)}")
    if min(col_ids) < 0:
        raise ShapeError(f"col_ids must be >= 0, got {min(col_ids)}")
    if min(limits) <= 0:
        raise ShapeError(f"categorical_limits must be > 0, got {min(limits)}")
    if sum(limits) != len(vals):
        raise ShapeError(f"vals has {len(vals)} values, categorical_limits add up to {sum(limits)}")


def ngram_floats(shape, dtype, col_ids) -> None:
    """Raise unless FLOATS is a float tensor with a column for every col_id."""
    if str(dtype) != "float32":
        raise ShapeError(f"floats must be a float32 tensor, got {dtype}")
    if len(shape) < 1:
        raise ShapeError("floats must have rank >= 1")
    width = 1
    for d in shape[1:]:
        width *= d
    if width <= max(col_ids):
        raise ShapeError(f"floats has {width} columns, col_ids names column {max(col_ids)}")


def dense_matrix(shape, dtype) -> None:
    """Raise unless DenseVectorToIdList's input is a 2-D float32 tensor."""
    if len(shape) != 2 or str(dtype) != "float32":
        raise ShapeError(f"values must be a 2-D float32 tensor, got {list(shape)} {dtype}")


def id_lists(pairs) -> None:
    """Raise unless (lengths, values) pairs are 1-D, of one batch size and one id type."""
    batch, kind = pairs[0][0][0][0], None
    for k, ((lengths_shape, lengths_dtype), (values_shape, values_dtype)) in enumerate(pairs):
        if len(lengths_shape) != 1 or str(lengths_dtype) not in INDEX_TYPES:
            raise ShapeError(f"lengths_{k} must be a 1-D int32 or int64 tensor, got {list(lengths_shape)} "
                             f"{lengths_dtype}")
        if len(values_shape) != 1 or str(values_dtype) not in INDEX_TYPES:
            raise ShapeError(f"values_{k} must be a 1-D int32 or int64 tensor, got {list(values_shape)} "
                             f"{values_dtype}")
        if lengths_shape[0] != batch:
            raise ShapeError(f"lengths_{k} has {lengths_shape[0]} examples, lengths_0 has {batch}")
        if kind is not None and str(values_dtype) != kind:
            raise ShapeError(f"values_{k} is {values_dtype}, values_0 is {kind}")
        kind = str(values_dtype)


@rule("id_list_index_hash")
def index_hash_rule(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None]
    index_type(x.dtype)
    return [TensorInfo(x.shape, x.dtype)]


@rule("id_list_ngram")
def ngram(op: OpView, inputs: list) -> list:
    col_ids = op.arg("col_ids")
    ngram_args(col_ids, op.arg("categorical_limits"), op.arg("vals"))
    (x,) = inputs
    if x is None:
        return [None]
    ngram_floats(x.shape, x.dtype, col_ids)
    return [TensorInfo(x.shape[:1], "int64")]


@rule("id_list_dense_vector_to_id_list")
def dense_vector_to_id_list(op: OpView, inputs: list) -> list:
    (x,) = inputs
    if x is None:
        return [None, None]
    dense_matrix(x.shape, x.dtype)
    return [TensorInfo(x.shape[:1], "int32"), None]


@rule("id_list_merge_id_lists")
def merge_id_lists(op: OpView, inputs: list) -> list:
    if any(x is None for x in inputs):
        return [None, None]
    id_lists([((inputs[k].shape, inputs[k].dtype), (inputs[k + 1].shape, inputs[k + 1].dtype))
              for k in range(0, len(inputs), 2)])
    return [TensorInfo(inputs[0].shape, "int32"), None]
