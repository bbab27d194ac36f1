"""Gradients: the registry of gradient makers, backward passes, blocking rules.

    from pycaffe2.gradient import GetBackwardPass, BlockGradients, only_update
    grad_ops, grad_map = GetBackwardPass(net.op, ["loss"])
"""
from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.gradient.blocking import BlockGradients, only_update
from pycaffe2.gradient.registry import (
    GRADIENT_MAKERS,
    GetGradientForOp,
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
