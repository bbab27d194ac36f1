"""Strided layouts for the CUDA launchers that walk operands over an output's
shape (arithmetic, elementwise, reduction, tensor): each operand gets strides
that are 0 on its broadcast dims; dims of 1 are dropped and neighbours merged
first, so most layouts become 1-3 dims. The dims and strides go to the kernels
as a small int64 GPU array, cached by value.
"""
from __future__ import annotations

import atexit
import math

import numpy as np

from pycaffe2.operators import _cuda as cuda

_META: dict = {}


def _strides_over(shape: tuple, out_shape: tuple) -> list:
    """Row-major strides of a contiguous `shape` over `out_shape` (right-aligned), 0 where it broadcasts."""
    lead = len(out_shape) - len(shape)
    strides, step = [0] * len(out_shape), 1
    for i in range(len(shape) - 1, -1, -1):
        strides[lead + i] = step if shape[i] != 1 else 0
        step *= shape[i]
    return strides


def _collapse(dims: tuple, *strides: list) -> tuple:
    """(dims, strides per operand) without dims of 1, neighbours merged where every operand
    walks them as one (outer stride = inner dim * inner stride): the same offsets, fewer dims."""
    merged: list = []
    for i, dim in enumerate(dims):
        inner = [s[i] for s in strides]
        if dim == 1:
            continue
        if merged and all(outer == s * dim for outer, s in zip(merged[-1][1], inner)):
            merged[-1] = (merged[-1][0] * dim, inner)
        else:
            merged.append((dim, inner))
    return [d for d, _ in merged], [[s[k] for _, s in merged] for k in range(len(strides))]


def _device_ints(values: tuple):
    """An int64 GPU array holding `values` (plus a pad, so it is never empty), cached."""
    array = _META.get(values)
    if array is None:
        if len(_META) >= 1024:
            _META.clear()  # freeing waits for running kernels
        array = cuda.as_gpu(np.array(values + (0,), np.int64))  # starts CUDA if need be
        if not _META:  # atexit runs last-in first: freed before the context is popped
            atexit.register(_META.clear)
        _META[values] = array
    return array


def _reduction_layout(x_shape: tuple, target: tuple) -> tuple:
    """(meta, kept dims, reduced dims, reduced count) for reducing x to `target` (which
    broadcasts to x): meta on the GPU holds the kept dims and x's strides along them,
    then the reduced ones, as arithmetic.cu's and reduction.cu's kernels read them."""
    dims, (x_strides, t_strides) = _collapse(x_shape, _strides_over(x_shape, x_shape),
                                             _strides_over(target, x_shape))
    kept = [i for i, s in enumerate(t_strides) if s != 0]
    reduced = [i for i, s in enumerate(t_strides) if s == 0]
    meta = _device_ints(tuple([dims[i] for i in kept] + [x_strides[i] for i in kept]
                              + [dims[i] for i in reduced] + [x_strides[i] for i in reduced]))
    return meta, np.int32(len(kept)), np.int32(len(reduced)), math.prod(dims[i] for i in reduced)
