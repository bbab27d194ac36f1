"""Gradients: backward passes and blocking rules; the registry of gradient
makers (kept in operators/registry.py, beside the kernels' registries, so the
op families need nothing from here) is re-exported.

    from pycaffe2.gradient import GetBackwardPass, BlockGradients, only_update
    grad_ops, grad_map = GetBackwardPass(net.op, ["loss"])
"""
from pycaffe2.gradient import control as _control  # noqa: F401 (registers the control ops' makers)
from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.gradient.blocking import BlockGradients, only_update
from pycaffe2.gradient.for_op import PYTHON_GRADIENT_MAKERS, GetGradientForOp, RegisterGradient
from pycaffe2.operators.registry import (
    GRADIENT_MAKERS,
    GradientContext,
    GradientError,
    GradientSlice,
    gradient_op,
    register_gradient,
)


class GradientRegistry:
    """Caffe2's spelling: GradientRegistry.GetBackwardPass(ops, ys), and
    RegisterGradient("Op") for makers f(op, g_output) -> (grad ops, g_input)."""

    GetBackwardPass = staticmethod(GetBackwardPass)
    GetGradientForOp = staticmethod(GetGradientForOp)
    RegisterGradient = staticmethod(RegisterGradient)


__all__ = [
    "GRADIENT_MAKERS",
    "PYTHON_GRADIENT_MAKERS",
    "BlockGradients",
    "GetBackwardPass",
    "GetGradientForOp",
    "GradientContext",
    "GradientError",
    "GradientRegistry",
    "GradientSlice",
    "RegisterGradient",
    "gradient_op",
    "only_update",
    "register_gradient",
]
