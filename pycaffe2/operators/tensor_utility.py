"""Tensor utility kernels (NumPy): Size, NanCheck, IsMemberOf, ScaleBlobs,
EnsureDense and CopyRowsToTensor, with their gradient makers. The checks are the family's inference
module's (schema/inference/tensor_utility.py)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import gradient_op, register_cpu, register_gradient
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.tensor_utility import (
    check_copy_rows,
    copy_rows_gradient_type,
    float_input,
    member_type,
    one_output_each,
)


@register_cpu("Size")
def size(data):
    return np.array(np.size(data), dtype=np.int64)


@register_cpu("NanCheck")
def nan_check(*tensors):
    for index, x in enumerate(tensors):
        float_input(index, x.shape, x.dtype.name)
        if not np.isfinite(x).all():
            raise ValueError(f"input {index} holds a NaN or an infinity")
    return tensors[0]


gradient_op("NanCheck", "GO0", gradient_type="NanCheck")  # the gradient is checked the same way


@register_cpu("IsMemberOf")
def is_member_of(x, *, value):
    values = list(value)
    member_type(x.shape, x.dtype.name, values)
    if x.dtype == object:  # string tensors hold bytes
        wanted = {v.encode("utf-8") if isinstance(v, str) else v for v in values}
        return np.vectorize(lambda item: item in wanted, otypes=[bool])(x) if x.size else np.zeros(x.shape, bool)
    return np.isin(x, np.array(values, dtype=x.dtype) if values else np.zeros(0, x.dtype))


@register_cpu("ScaleBlobs")
def scale_blobs(*tensors, scale, num_outputs):
    one_output_each(len(tensors), num_outputs)
    scaled = []
    for index, x in enumerate(tensors):
        float_input(index, x.shape, x.dtype.name)
        scaled.append(x * x.dtype.type(scale))
    return tuple(scaled)


@register_gradient("ScaleBlobs")
def _scale_blobs_gradient(g):
    # Scale each output's gradient back by the same factor (those that have one).
    present = [i for i in range(len(g.op.output)) if g.has_GO(i)]
    return [g.Op("ScaleBlobs", [g.GO(i) for i in present], [g.GI(i) for i in present])]


@register_cpu("EnsureDense")
def ensure_dense(x):
    return x


@register_gradient("EnsureDense")
def _ensure_dense_gradient(g):
    # A sparse gradient is scattered into the shape of the output (the input's, and
    # still there when the op ran in place); a dense one passes through.
    if g.is_sparse_GO(0):
        return [g.Op("SparseToDense", [g.GO_I(0), g.GO_V(0), g.O(0)], [g.GI(0)], inherit_args=False)]
    g.SetDense(0, g.GO(0))
    return []


@register_cpu("CopyRowsToTensor")
def copy_rows_to_tensor(tensor, indices, row):
    check_copy_rows(tensor.shape, tensor.dtype.name, indices.shape, indices.dtype.name, row.shape, row.dtype.name)
    if indices.size and (indices.min() < 0 or indices.max() >= tensor.shape[0]):
        bad = int(indices[(indices < 0) | (indices >= tensor.shape[0])][0])
        raise ShapeError(f"index {bad} is out of range for input_tensor's {tensor.shape[0]} rows")
    out = tensor.copy()
    out[indices] = row
    return out


@register_cpu("CopyRowsToTensorGradient")
def copy_rows_to_tensor_gradient(dy):
    copy_rows_gradient_type(dy.dtype.name)
    return dy.copy()


@register_gradient("CopyRowsToTensor")
def _copy_rows_to_tensor_gradient(g):
    # Caffe2's: the output's gradient passes through (a sparse one part by part).
    if g.is_sparse_GO(0):
        g.SetSparse(0, g.GI_I(0), g.GI_V(0))
        return [g.Op("CopyRowsToTensorGradient", [g.GO_I(0)], [g.GI_I(0)]),
                g.Op("CopyRowsToTensorGradient", [g.GO_V(0)], [g.GI_V(0)])]
    return [g.Op("CopyRowsToTensorGradient", [g.GO(0)], [g.GI(0)])]
