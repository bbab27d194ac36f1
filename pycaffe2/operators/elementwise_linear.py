"""NumPy kernels of the elementwise_linear family: Y = X * a + b per feature."""
from __future__ import annotations

from pycaffe2.operators.registry import gradient_op, register_cpu
from pycaffe2.schema.inference import same_shapes
from pycaffe2.schema.inference.elementwise_linear import features


@register_cpu("ElementwiseLinear")
def elementwise_linear(x, a, b, *, axis):
    n, d = features(x.shape, axis, {"a": a.shape, "b": b.shape})
    return (x.reshape(n, d) * a + b).astype(x.dtype).reshape(x.shape)


@register_cpu("ElementwiseLinearGradient")
def elementwise_linear_gradient(dy, x, a, *, axis):
    n, d = features(x.shape, axis, {"a": a.shape})
    same_shapes({"dY": dy.shape, "X": x.shape})
    dy2, x2 = dy.reshape(n, d), x.reshape(n, d)
    return (dy2 * a).astype(x.dtype).reshape(x.shape), (dy2 * x2).sum(axis=0).astype(x.dtype), \
        dy2.sum(axis=0).astype(x.dtype)


gradient_op("ElementwiseLinear", "GO0 I0 I1", "GI0 GI1 GI2")
