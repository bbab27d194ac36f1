"""NumPy kernels of the adagrad_fused family: SparseAdagrad and RowWiseSparseAdagrad
fused with the gradients of SparseLengthsSum, SparseLengthsMean and
SparseLengthsWeightedSum. The segment rows of grad are spread to their indices,
then the rows are updated one index at a time, in order (a row named twice is
updated twice), as in Caffe2's loops. Like every kernel they return new arrays.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.training import _scalar, check_floats
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.adagrad_fused import fused_shapes
from pycaffe2.schema.inference.sparse_update import index_range


def _segments(param, moment, indices, grad, lengths, row_wise):
    """(segment of each index, position of each index in its segment), checked."""
    check_floats({"param": param, "moment": moment, "grad": grad})
    indices, lengths = np.asarray(indices), np.asarray(lengths)
    fused_shapes(param.shape, moment.shape, indices.shape, indices.dtype, grad.shape, lengths.shape,
                 lengths.dtype, row_wise)
    counts = lengths.astype(np.int64)
    if counts.size and counts.min() < 0:
        raise ShapeError(f"lengths must not be negative, got {int(counts.min())}")
    if int(counts.sum()) != indices.size:
        raise ShapeError(f"lengths sum to {int(counts.sum())} but there are {indices.size} indices")
    index_range(indices, param.shape[0])
    segment = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return segment, np.arange(indices.size) - starts[segment], counts


def _fused(param, moment, indices, grad, lr, lengths, *, epsilon, weight_decay=0.0, row_wise=False,
           mean=False, aux_param=None, approx=False):
    segment, position, counts = _segments(param, moment, indices, grad, lengths, row_wise)
    t = param.dtype.type
    lr, epsilon, weight_decay = _scalar("lr", lr, param.dtype), t(epsilon), t(weight_decay)
    rows = param.shape[0]
    p = param.reshape(rows, -1).copy()
    h = moment.reshape(rows, 1 if row_wise else -1).copy()
    segment_rows = grad.reshape(counts.size, -1).astype(param.dtype, copy=False)
    if mean:  # SparseLengthsMean's gradient: each segment's row over its length
        segment_rows = segment_rows / np.maximum(counts, 1).astype(param.dtype)[:, None]
    flat = np.asarray(indices).reshape(-1)
    g = segment_rows[segment]
    aux_grad = None
    if aux_param is not None:
        check_floats({"aux_param": aux_param})
        weights = np.asarray(aux_param).reshape(-1)
        if counts.size and counts.max() > weights.size:
            raise ShapeError(f"aux_param holds {weights.size} positional weights but a segment has "
                             f"{int(counts.max())} indices")
        aux_grad = np.einsum("ij,ij->i", g, p[flat]).astype(grad.dtype)  # before any update
        g = g * weights[position].astype(param.dtype)[:, None]
    for i, k in enumerate(flat):
        if approx and aux_param is not None:
            aux_grad[i] = np.dot(segment_rows[segment[i]], p[k])  # param as it is now
        gi = g[i] + weight_decay * p[k] if weight_decay else g[i]
        h[k] += np.mean(gi * gi) if row_wise else gi * gi
        p[k] += lr * gi / (np.sqrt(h[k]) + epsilon)
    outputs = (p.reshape(param.shape), h.reshape(moment.shape))
    return outputs if aux_param is None else (*outputs, aux_grad)


def _register_lengths(op_type: str, row_wise: bool, mean: bool):
    if row_wise:
        @register_cpu(op_type)
        def row_wise_kernel(param, moment, indices, grad, lr, lengths, *, epsilon, round_option):
            return _fused(param, moment, indices, grad, lr, lengths, epsilon=epsilon, row_wise=True, mean=mean)
        return row_wise_kernel

    @register_cpu(op_type)
    def kernel(param, moment, indices, grad, lr, lengths, *, epsilon, weight_decay):
        return _fused(param, moment, indices, grad, lr, lengths, epsilon=epsilon, weight_decay=weight_decay)
    return kernel


def _register_weighted(op_type: str, row_wise: bool, approx: bool):
    if row_wise:
        @register_cpu(op_type)
        def row_wise_kernel(param, moment, aux_param, indices, grad, lr, lengths, *, epsilon, round_option):
            return _fused(param, moment, indices, grad, lr, lengths, epsilon=epsilon, row_wise=True,
                          aux_param=aux_param, approx=approx)
        return row_wise_kernel

    @register_cpu(op_type)
    def kernel(param, moment, aux_param, indices, grad, lr, lengths, *, epsilon, weight_decay):
        return _fused(param, moment, indices, grad, lr, lengths, epsilon=epsilon, weight_decay=weight_decay,
                      aux_param=aux_param, approx=approx)
    return kernel


PREFIX, ROW_WISE = "SparseAdagradFusedWithSparseLengths", "RowWiseSparseAdagradFusedWithSparseLengths"
for _approx in ("", "Approx"):
    _register_lengths(f"{PREFIX}SumGradient{_approx}", row_wise=False, mean=False)
    _register_lengths(f"{ROW_WISE}SumGradient{_approx}", row_wise=True, mean=False)
    _register_lengths(f"{ROW_WISE}MeanGradient{_approx}", row_wise=True, mean=True)
    _register_weighted(f"{PREFIX}WeightedSumGradient{_approx}", row_wise=False, approx=bool(_approx))
    _register_weighted(f"{ROW_WISE}WeightedSumGradient{_approx}", row_wise=True, approx=bool(_approx))
