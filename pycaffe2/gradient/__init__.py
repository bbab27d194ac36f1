"""Gradients: backward passes and blocking rules; the registry of gradient
makers (kept in operators/registry.py, beside the kernels' registries, so the
op families need nothing from here) is re-exported.

    from pycaffe2.gradient import GetBackwardPass, BlockGradients, only_update
    grad_ops, grad_map = GetBackwardPass(net.op, ["loss"])
"""
from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.gradient.blocking import BlockGradients, only_update
from pycaffe2.gradient.for_op import GetGradientForOp
from pycaffe2.operators.registry import (
    GRADIENT_MAKERS,
    GradientContext,
    GradientError,
    gradient_op,
    register_gradient,
)


class GradientRegistry:
    """Caffe2's spelling: GradientRegistry.GetBackwardPass(ops, ys)."""

    GetBackwardPass = staticmethod(GetBackwardPass)
    GetGradientForOp = staticmethod(GetGradientForOp)
    RegisterGradient = staticmethod(register_gradient)


__all__ = [
    "GRADIENT_MAKERS",
    "BlockGradients",
    "GetBackwardPass",
    "GetGradientForOp",
    "GradientContext",
    "GradientError",
    "GradientRegistry",
    "gradient_op",
    "only_update",
    "register_gradient",
]
