"""The gradient registry: op type -> gradient maker.

What an op does under backprop is stated once, in its schema's `gradient:`
field: `none` (NO_GRADIENT: a silent sink, e.g. StopGradient), `should_not`
(SHOULD_NOT_DO_GRADIENT: an error if a gradient reaches it), or the op types
its maker emits. Makers are registered beside the op's kernel, in Caffe2's
vocabulary (I(i), O(i), GO(i), GI(i), SetDense):

    @register_gradient("SoftmaxWithLoss")
    def _(g):
        return [g.Op("SoftmaxWithLossGradient", [g.I(0), g.I(1), g.O(0), g.GO(1)], [g.GI(0)])]

and the common one-op case is one line: `gradient_op("Relu", "O0 GO0")`.
Emitted ops inherit the forward op's device option and engine, are marked
`is_gradient_op`, and take every forward arg their own schema declares
(gradient ops declare all of their forward op's args).
"""
from __future__ import annotations

from collections.abc import Callable

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import bind_args


class GradientError(PyCaffe2Error):
    """A backward pass cannot be built."""


Maker = Callable[["GradientContext"], list]
GRADIENT_MAKERS: dict[str, Maker] = {}


class GradientContext:
    """What a maker sees: the forward op, its args, and its outputs' gradients."""

    def __init__(self, op: caffe2_pb2.OperatorDef, g_output: list, suffix: str = ""):
        self.op, self.g_output, self.suffix = op, list(g_output), suffix
        self.g_input: list = [None] * len(op.input)
        self.reads: set[tuple[str, int]] = set()  # ("input" | "output", index) the maker used
        self._args = None

    def I(self, i: int) -> str:
        self.reads.add(("input", i))
        return self.op.input[i]

    def O(self, i: int) -> str:
        self.reads.add(("output", i))
        return self.op.output[i]

    def GO(self, i: int) -> str:
        """The gradient of output i; it must exist."""
        if self.g_output[i] is None:
            raise GradientError(f"{self.op.type}: output {i} ({self.op.output[i]}) has no gradient")
        return self.g_output[i]

    def has_GO(self, i: int) -> bool:
        return i < len(self.g_output) and self.g_output[i] is not None

    def GI(self, i: int) -> str:
        """The gradient blob of input i (`<input>_grad`), recorded as produced."""
        self.g_input[i] = f"{self.op.input[i]}_grad{self.suffix}"
        return self.g_input[i]

    def SetDense(self, i: int, name: str) -> None:
        """Input i's gradient is the existing blob `name` (no op computes it)."""
        self.g_input[i] = name

    def arg(self, name: str):
        """The forward op's arg, typed and defaulted by its schema."""
        if self._args is None:
            self._args = bind_args(get_schema(self.op.type), self.op)
        return self._args[name]

    def Op(self, op_type: str, inputs, outputs, inherit_args: bool = True, **args) -> caffe2_pb2.OperatorDef:
        """A gradient OperatorDef; `args` are set on it beside the inherited ones."""
        op = caffe2_pb2.OperatorDef(type=op_type, input=list(inputs), output=list(outputs))
        schema = get_schema(op_type)
        for name, value in args.items():
            spec = schema.args.get(name) if schema else None
            op.arg.append(make_argument(name, value, spec.types if spec else ()))
        if inherit_args and schema is not None:
            own = set(args)
            op.arg.extend(a for a in self.op.arg if a.name in schema.args and a.name not in own)
        return op


def register_gradient(*op_types: str):
    """Register a maker: a function of a GradientContext returning gradient ops."""
    def register(maker: Maker) -> Maker:
        for op_type in op_types:
            if op_type in GRADIENT_MAKERS:
                raise ValueError(f"gradient maker for {op_type} registered twice")
            GRADIENT_MAKERS[op_type] = maker
        return maker
    return register


def gradient_op(op_type: str, inputs: str, outputs: str = "GI0", gradient_type: str | None = None) -> None:
    """Register the common maker: one `<Type>Gradient` op whose inputs and
    outputs are written as I0, O0, GO0, GI0 tokens, e.g. gradient_op("Relu", "O0 GO0")."""
    emitted = gradient_type or f"{op_type}Gradient"

    def maker(g: GradientContext) -> list:
        names = {"I": g.I, "O": g.O, "GO": g.GO, "GI": g.GI}

        def resolve(token: str) -> str:
            return names[token.rstrip("0123456789")](int(token.lstrip("GIO")))
        return [g.Op(emitted, [resolve(t) for t in inputs.split()], [resolve(t) for t in outputs.split()])]
    register_gradient(op_type)(maker)


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
    from pycaffe2.operators import load_kernels
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
