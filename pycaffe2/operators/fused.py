"""Fused float ops: ConvRelu (conv.py's Conv, then Relu; on CUDA conv's launcher and
activation.cu's relu) and FbFCPacked (FC on a weight rounded to float16 as fbgemm
packs it, float32 products and sums)."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._conv_pool import register_cuda_factory, register_factory
from pycaffe2.operators.conv import conv, conv_cuda
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.fused import check_packed_types
from pycaffe2.schema.inference.linalg import check_fc_bias, fc_output_shape, fc_sizes


@register_factory("ConvRelu")
def conv_relu(**args):
    run_conv = conv(**args)

    def run(x, w, bias=None):
        y = run_conv(x, w, bias)
        return np.maximum(y, 0, out=y)  # y is the conv's own new array: no second one

    return run


_relu_cuda = cuda.elementwise("activation.cu", "relu", ())


@register_cuda_factory("ConvRelu")
def conv_relu_cuda(**args):
    run_conv = conv_cuda(**args)
    return lambda x, w, bias=None: _relu_cuda(run_conv(x, w, bias))


@register_cpu("FbFCPacked")
def fb_fc_packed(x, w, b, *, axis, axis_w):
    check_packed_types(x.dtype, w.dtype)
    m, k, n = fc_sizes(x.shape, w.shape, axis, axis_w, False)
    check_fc_bias(b.shape, w.shape, n)
    weights = w.astype(np.float16).astype(np.float32).reshape(n, k)
    y = np.dot(x.reshape(m, k), weights.T)
    y += b.reshape(n).astype(np.float32)
    return y.reshape(fc_output_shape(x.shape, axis, n))
