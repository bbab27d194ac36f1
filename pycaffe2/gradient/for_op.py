"""One op's gradient: its schema's `gradient:` kind, then its registered maker
(operators/registry.py), whose ops are checked against the schema and marked
as gradient ops of the forward op.

Makers registered from Python the way Caffe2 users do,

    @GradientRegistry.RegisterGradient("MyOp")
    def my_op_gradient(op, g_output):
        return grad_ops, g_input          # one gradient blob (or None) per input

serve op types that have no maker of their own (as in Caffe2, where the C++
maker wins), schema or not; their ops are taken as returned."""
from __future__ import annotations

from pycaffe2.gradient.accumulate import parts
from pycaffe2.operators.registry import (
    GRADIENT_MAKERS,
    GradientContext,
    GradientError,
    GradientSlice,
    load_kernels,
)
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema

PYTHON_GRADIENT_MAKERS: dict = {}  # op type -> f(op, g_output) -> (grad ops, g_input)


def RegisterGradient(op_type: str):
    """Caffe2's decorator: register f(op, g_output) -> (grad ops, g_input) for
    `op_type`. Registering again replaces the maker, as in Caffe2."""
    def register(function):
        PYTHON_GRADIENT_MAKERS[op_type] = function
        return function
    return register


class PythonGradient:
    """What the backward pass needs of a Python maker's result (GradientContext's shape)."""

    def __init__(self, op, g_input, grad_ops, g_output, where):
        self.g_input = list(g_input)
        self.reads = _forward_reads(op, grad_ops, g_output, where)


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


def gradient_kind(op_type: str):
    """The schema's `gradient:` kind, or "python" for an op served by a Python
    maker, or None for an op type nothing knows."""
    schema = get_schema(op_type)
    if schema is not None and (schema.gradient in ("none", "should_not") or GRADIENT_MAKERS.get(schema.type)):
        return schema.gradient
    if op_type in PYTHON_GRADIENT_MAKERS:
        return "python"
    return None if schema is None else schema.gradient


def make_gradient(op, g_output, op_index=None, suffix=""):
    """(gradient ops, the maker's GradientContext or None when no maker ran)."""
    load_kernels()  # makers live beside the kernels
    where = f"op {op_index} ({op.type})" if op_index is not None else op.type
    kind = gradient_kind(op.type)
    if kind is None:
        raise GradientError(f"{where}: unknown op type {op.type}")
    if kind == "python":
        return _python_gradient(op, g_output, where)
    if kind == "none" or not (any(g is not None for g in g_output) or is_gradient_source(op)):
        return [], None
    if kind == "should_not":
        raise GradientError(f"{where}: one should not call gradient for operator {op.type} "
                            f"(a gradient reached its output {_with_gradient(op, g_output)})")
    schema = get_schema(op.type)
    maker = GRADIENT_MAKERS.get(schema.type)
    if kind == "not_implemented" or maker is None:
        raise GradientError(f"{where}: gradient not implemented for {op.type}")
    _check_counts(op, schema, where)
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


def is_gradient_source(op) -> bool:
    """An op with no outputs and a maker of its own (ZeroGradient) makes gradients from nothing."""
    if op.output:
        return False
    schema = get_schema(op.type)
    return schema is not None and isinstance(schema.gradient, tuple) and schema.type in GRADIENT_MAKERS


def _check_counts(op, schema, where) -> None:
    """A maker indexes inputs and outputs by the schema: a miscounted op is refused first."""
    for kind, blobs, count in (("input", op.input, schema.num_inputs), ("output", op.output, schema.num_outputs)):
        if not count.allows(len(blobs)):
            raise GradientError(f"{where}: does not pass its schema check: takes {count.describe()} "
                                f"{kind}(s), got {len(blobs)}")


def _python_gradient(op, g_output, where):
    if not any(g is not None for g in g_output):
        return [], None
    grad_ops, g_input = PYTHON_GRADIENT_MAKERS[op.type](op, list(g_output))
    grad_ops = [] if grad_ops is None else [grad_ops] if isinstance(grad_ops, caffe2_pb2.OperatorDef) else list(grad_ops)
    g_input = [_as_gradient(g) for g in g_input]
    if len(g_input) != len(op.input):
        raise GradientError(f"{where}: its Python gradient maker gave {len(g_input)} input gradient(s) "
                            f"for {len(op.input)} input(s)")
    return grad_ops, PythonGradient(op, g_input, grad_ops, g_output, where)


def _as_gradient(gradient):
    """A Python maker's input gradient as names: None, a blob or a GradientSlice."""
    if gradient is None:
        return None
    if isinstance(gradient, GradientSlice):  # core.GradientSlice, perhaps of BlobReferences
        return GradientSlice(str(gradient.indices), str(gradient.values))
    return str(gradient)


def _forward_reads(op, grad_ops, g_output, where) -> set:
    """The forward blobs a Python maker's ops read, as GradientContext.reads records them;
    a name that is no forward blob, gradient or earlier gradient op's output is refused."""
    reads, local = set(), {name for g in g_output if g is not None for name in parts(g)}
    for grad_op in grad_ops:
        for name in grad_op.input:
            if name in local:
                continue
            if name in op.output:
                reads.add(("output", list(op.output).index(name)))
            elif name in op.input:
                reads.add(("input", list(op.input).index(name)))
            else:
                raise GradientError(f"{where}: gradient op {grad_op.type} reads '{name}', which is neither "
                                    "an input or output of the op, nor an output gradient, nor made by an "
                                    "earlier gradient op")
        local.update(grad_op.output)
    return reads


def _with_gradient(op, g_output) -> str:
    return ", ".join(op.output[i] for i, g in enumerate(g_output) if g is not None)
