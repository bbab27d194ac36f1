"""Inference rules of the weighted_sample family (WeightedSample,
WeightedMultiSampling) and the shape checks its kernels share."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def check_counts(n_inputs: int, n_outputs: int) -> None:
    if n_inputs != n_outputs:
        raise ShapeError(f"needs as many outputs as inputs (sampled_values with sampling_values), "
                         f"got {n_inputs} inputs and {n_outputs} outputs")


def check_weights(weights, weights_dtype: str, values, values_dtype, n_inputs: int, n_outputs: int) -> None:
    """WeightedSample: float [batch, dim] weights, values alike, as many outputs as inputs."""
    check_counts(n_inputs, n_outputs)
    if len(weights) != 2 or weights_dtype != "float32":
        raise ShapeError(f"sampling_weights must be a 2-D float tensor [batch, weights_dim], got "
                         f"{list(weights)} {weights_dtype}")
    if values is not None and (tuple(values) != tuple(weights) or values_dtype != "float32"):
        raise ShapeError(f"sampling_values {list(values)} {values_dtype} must be float like "
                         f"sampling_weights {list(weights)}")


def sample_shape(weights) -> tuple:
    """[batch, 1], or [0] when the batch or the rows are empty (Caffe2's)."""
    return (weights[0], 1) if weights[0] > 0 and weights[1] > 0 else (0,)


@rule("weighted_sample_sample")
def sample(op: OpView, inputs: list) -> list:
    """int32 indices and float values, [batch, 1] each ([0] when empty)."""
    weights = inputs[0]
    values = inputs[1] if len(inputs) > 1 else None
    check_counts(op.n_inputs, op.n_outputs)
    if weights is None:
        return [None] * op.n_outputs
    check_weights(weights.shape, weights.dtype, None if values is None else values.shape,
                  None if values is None else values.dtype, op.n_inputs, op.n_outputs)
    shape = sample_shape(weights.shape)
    return [TensorInfo(shape, "int32"), TensorInfo(shape, "float32")][:op.n_outputs]


def check_cdf(cdf, dtype: str, num_samples, has_shape: bool) -> None:
    if len(cdf) != 1 or dtype != "float32":
        raise ShapeError(f"sampling_cdf must be a 1-D float tensor, got {list(cdf)} {dtype}")
    if has_shape and num_samples is not None:
        raise ShapeError("the output shape comes from shape_tensor; do not also give num_samples")


@rule("weighted_sample_multi_sampling")
def multi_sampling(op: OpView, inputs: list) -> list:
    """int32 of [num_samples] or shape_tensor's shape; [0] for an empty cdf."""
    cdf = inputs[0]
    shape = inputs[1] if len(inputs) > 1 else None
    if op.n_inputs > 1 and op.arg("num_samples") is not None:
        raise ShapeError("the output shape comes from shape_tensor; do not also give num_samples")
    if cdf is not None:
        check_cdf(cdf.shape, cdf.dtype, op.arg("num_samples"), op.n_inputs > 1)
        if cdf.shape[0] == 0:
            return [TensorInfo((0,), "int32")]
    if op.n_inputs > 1:
        return [None if shape is None or cdf is None else TensorInfo(shape.shape, "int32")]
    return [None if cdf is None else TensorInfo((op.arg("num_samples") or 0,), "int32")]
