"""One op's gradient: its schema's `gradient:` kind, then its registered maker
(operators/registry.py), whose ops are checked against the schema and marked
as gradient ops of the forward op."""
from __future__ import annotations

from pycaffe2.operators.registry import GRADIENT_MAKERS, GradientContext, GradientError, load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema


def _decorate(op: caffe2_pb2.OperatorDef, forward: caffe2_pb2.OperatorDef) -> None:
    if forward.HasField("device_option"):
        op.device_option.CopyFrom(forward.device_option)
    if forward.engine:
        op.engine = forward.engine
    op.is_gradient_op = True


def GetGradientForOp(op: caffe2_pb2.OperatorDef, g_output: list, op_index: int | None = None,
                     suffix: str = ""):
    """(gradient ops, gradient blob or None per input) for one forward op; `suffix`
    tags the input gradient names (`<input>_grad<suffix>`)."""
    ops, context = make_gradient(op, g_output, op_index, suffix)
    return ops, (context.g_input if context else [None] * len(op.input))


def make_gradient(op, g_output, op_index=None, suffix=""):
    """(gradient ops, the maker's GradientContext or None when no maker ran)."""
    load_kernels()  # makers live beside the kernels
    where = f"op {op_index} ({op.type})" if op_index is not None else op.type
    schema = get_schema(op.type)
    if schema is None:
        raise GradientError(f"{where}: unknown op type {op.type}")
    kind = schema.gradient
    if kind == "none" or not any(g is not None for g in g_output):
        return [], None
    if kind == "should_not":
        raise GradientError(f"{where}: one should not call gradient for operator {op.type} "
                            f"(a gradient reached its output {_with_gradient(op, g_output)})")
    maker = GRADIENT_MAKERS.get(schema.type)
    if kind == "not_implemented" or maker is None:
        raise GradientError(f"{where}: gradient not implemented for {op.type}")
    context = GradientContext(op, g_output, suffix)
    try:
        ops = list(maker(context))
    except GradientError as exc:
        raise GradientError(f"{where}: {exc}") from exc
    for grad_op in ops:
        if grad_op.type not in kind:
            raise GradientError(f"{where}: its maker emitted {grad_op.type}, which the schema's "
                                f"gradient list {list(kind)} does not name")
        _decorate(grad_op, op)
    return ops, context


def _with_gradient(op, g_output) -> str:
    return ", ".join(op.output[i] for i, g in enumerate(g_output) if g is not None)
