"""Inference rules of the math_bucket family, and the checks its kernels share.

Bucketize and BatchBucketize give int32 bucket indices; BatchBoxCox, Percentile
and BisectPercentile give float tensors of their data's shape. The checks on
the index and length inputs' values (in range, summing to the boundaries'
size) are the kernels'; the rules check ranks, sizes and types.
"""
from __future__ import annotations

from itertools import pairwise

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.elementwise import FLOAT, FLOAT32, INT32, check_info_dtype

# Caffe2 reads these inputs as float: FLOAT32.


def _rank(info, name: str, rank: int) -> None:
    if info is not None and len(info.shape) != rank:
        raise ShapeError(f"{name} must be {rank}-D, got {list(info.shape)}")


def check_sorted(values, name: str) -> None:
    values = list(values)
    if any(b < a for a, b in pairwise(values)):
        raise ShapeError(f"{name} must be in ascending order, got {values}")


def check_lengths(lengths, total: int, what: str, minimum: int = 0) -> None:
    """Lengths (values) >= minimum that sum to `total` (the size of `what`)."""
    lengths = [int(n) for n in lengths]
    if any(n < minimum for n in lengths):
        raise ShapeError(f"lengths must be >= {minimum}, got {lengths}")
    if sum(lengths) != total:
        raise ShapeError(f"lengths sum to {sum(lengths)} but {what} has {total} entries")


def check_indices(indices, columns: int) -> None:
    bad = [int(i) for i in indices if not 0 <= i < columns]
    if bad:
        raise ShapeError(f"indices {bad} are out of range for float_features' {columns} columns")


def box_cox_columns(data, lambda1, lambda2) -> None:
    """data at least 1-D; lambda1 and lambda2 of its type with D = prod(dims[1:]) entries
    (unchecked when data is empty, as in Caffe2)."""
    check_info_dtype(data, "data", FLOAT)
    if data is None:
        return
    if not data.shape:
        raise ShapeError("data must be at least 1-D, got a 0-d tensor")
    columns = 1
    for d in data.shape[1:]:
        columns *= d
    if 0 in data.shape:
        return
    for name, info in (("lambda1", lambda1), ("lambda2", lambda2)):
        if info is None:
            continue
        if info.dtype != data.dtype:
            raise ShapeError(f"{name} is {info.dtype} but data is {data.dtype}: they must match")
        size = 1
        for d in info.shape:
            size *= d
        if size != columns:
            raise ShapeError(f"{name} has {size} entries but data {list(data.shape)} has {columns} columns")


def check_percentile(values, pairs, lengths) -> None:
    check_info_dtype(values, "original_values", FLOAT32)
    _rank(values, "original_values", 2)
    _rank(pairs, "value_to_pct", 2)
    check_info_dtype(pairs, "value_to_pct", FLOAT32)
    if pairs is not None and pairs.shape[1] != 2:
        raise ShapeError(f"value_to_pct must be [V, 2], got {list(pairs.shape)}")
    check_info_dtype(lengths, "lengths", INT32)
    _rank(lengths, "lengths", 1)
    if values is not None and lengths is not None and lengths.shape[0] != values.shape[1]:
        raise ShapeError(f"lengths has {lengths.shape[0]} entries but original_values "
                         f"{list(values.shape)} has {values.shape[1]} columns")


def check_bisect_args(raw, mapping, lower, upper, lengths) -> None:
    for name, values in (("percentile_mapping", mapping), ("percentile_lower", lower),
                         ("percentile_upper", upper)):
        if len(values) != len(raw):
            raise ShapeError(f"{name} has {len(values)} entries but percentile_raw has {len(raw)}")
    check_lengths(lengths, len(raw), "percentile_raw", minimum=1)


def check_bisect_input(raw_data, features: int) -> None:
    check_info_dtype(raw_data, "raw_data", FLOAT32)
    _rank(raw_data, "raw_data", 2)
    if raw_data is not None and raw_data.shape[1] != features:
        raise ShapeError(f"raw_data {list(raw_data.shape)} has {raw_data.shape[1]} features but "
                         f"lengths has {features} entries")


def check_bucketize_data(data) -> None:
    check_info_dtype(data, "data", FLOAT32)
    if data is not None and not data.shape:
        raise ShapeError("data must be at least 1-D, got a 0-d tensor")


def check_batch_bucketize(features, indices, boundaries, lengths) -> None:
    """Ranks and types of BatchBucketize's inputs; one length per index."""
    check_info_dtype(features, "float_features", FLOAT32)
    _rank(features, "float_features", 2)
    for name, info, allowed in (("indices", indices, INT32), ("boundaries", boundaries, FLOAT32),
                                ("lengths", lengths, INT32)):
        check_info_dtype(info, name, allowed)
        _rank(info, name, 1)
    if indices is not None and lengths is not None and indices.shape != lengths.shape:
        raise ShapeError(f"indices has {indices.shape[0]} entries but lengths has {lengths.shape[0]}: "
                         f"one length per index")


@rule("math_bucket_bucketize")
def math_bucket_bucketize(op: OpView, inputs: list) -> list:
    """int32 of data's shape; data float32 and at least 1-D, boundaries ascending."""
    check_sorted(op.arg("boundaries"), "boundaries")
    check_bucketize_data(inputs[0])
    return [None if inputs[0] is None else TensorInfo(inputs[0].shape, "int32")]


@rule("math_bucket_batch_bucketize")
def math_bucket_batch_bucketize(op: OpView, inputs: list) -> list:
    """[N, len(indices)] int32."""
    check_batch_bucketize(*inputs)
    features, indices = inputs[0], inputs[1]
    if features is None or indices is None:
        return [None]
    return [TensorInfo((features.shape[0], indices.shape[0]), "int32")]


@rule("math_bucket_box_cox")
def math_bucket_box_cox(op: OpView, inputs: list) -> list:
    """output like data."""
    box_cox_columns(*inputs)
    return [inputs[0]]


@rule("math_bucket_percentile")
def math_bucket_percentile(op: OpView, inputs: list) -> list:
    """Float percentiles of original_values' shape."""
    check_percentile(*inputs)
    return [inputs[0]]


@rule("math_bucket_bisect_percentile")
def math_bucket_bisect_percentile(op: OpView, inputs: list) -> list:
    """Float percentiles of raw_data's shape."""
    check_bisect_args(op.arg("percentile_raw"), op.arg("percentile_mapping"), op.arg("percentile_lower"),
                      op.arg("percentile_upper"), op.arg("lengths"))
    check_bisect_input(inputs[0], len(op.arg("lengths")))
    return [inputs[0]]
