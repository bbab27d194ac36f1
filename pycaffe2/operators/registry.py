"""The registries and the registration verbs the op families use.

Kernels: CPU_KERNELS and CUDA_KERNELS (op type -> Kernel), filled by
register_cpu / register_cuda; load_kernels imports every family once (see the
package's docstring for what a kernel takes and returns).

Gradient makers: GRADIENT_MAKERS (op type -> maker), filled by register_gradient
and gradient_op. What an op does under backprop is stated once, in its
schema's `gradient:` field: `none` (NO_GRADIENT: a silent sink, e.g.
StopGradient), `should_not` (SHOULD_NOT_DO_GRADIENT: an error if a gradient
reaches it), or the op types its maker emits. Makers are registered beside
the op's kernel, named after it, in Caffe2's vocabulary (I(i), O(i), GO(i),
GI(i), SetDense; for sparse gradients GO_I(i), GO_V(i), GI_I(i), GI_V(i),
SetSparse):

    @register_gradient("SoftmaxWithLoss")
    def make_softmax_with_loss_gradient(g):
        return [g.Op("SoftmaxWithLossGradient", [g.I(0), g.I(1), g.O(0), g.GO(1)], [g.GI(0)])]

and the common one-op case is one line: `gradient_op("Relu", "O0 GO0")`.
Emitted ops inherit the forward op's device option and engine, are marked
`is_gradient_op`, and take every forward arg their own schema declares
(gradient ops declare all of their forward op's args).

They live here, below gradient/, so that the families register makers without
importing the backward-pass builder, which itself needs the families loaded.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pycaffe2.errors import GradientError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import bind_args

# `subnets` (the op's net args, compiled), `blobs` (the live blob mapping, at run time;
# the kernel returns {name: value} of what it writes) and `is_gradient_op` serve control ops;
# `workspace` (the executor Workspace) the Python op; `compile_net` ops that compile parts
# of a net arg themselves (RecurrentNetwork's step net, in segments); `root_folder` (the
# workspace's, "." without one) ops that take relative file names under it (Save, Print, ...);
# `engine` (the op's engine field, else an `engine` arg, else "") ops whose engine changes the result.
CONTEXT_PARAMS = ("num_outputs", "rng", "input_names", "output_names", "subnets", "blobs", "is_gradient_op",
                  "workspace", "compile_net", "root_folder", "engine")


@dataclass(frozen=True)
class Kernel:
    op_type: str
    function: Callable
    arg_names: tuple[str, ...]  # schema args it takes
    context: tuple[str, ...]  # which of CONTEXT_PARAMS it takes
    specialize: bool = False  # `function` is a factory: function(**args) -> kernel


CPU_KERNELS: dict[str, Kernel] = {}
CUDA_KERNELS: dict[str, Kernel] = {}  # their functions take and return GPUArrays


ALL_SCHEMA_ARGS = "all schema args"  # `args=` for a kernel taking every schema arg (engine args aside)


def _arg_names(op_type: str, args, keyword: list[str]) -> tuple[str, ...]:
    """The schema args a kernel takes: its keyword-only parameters, or `args`."""
    if args == ALL_SCHEMA_ARGS:
        return tuple(name for name, spec in get_schema(op_type).args.items() if spec.group != "engine")
    if args is not None:
        return tuple(args)
    return tuple(name for name in keyword if name not in CONTEXT_PARAMS)


def _registrar(registry: dict, device: str, op_types, specialize: bool, args):
    def register(function: Callable) -> Callable:
        keyword = [p.name for p in inspect.signature(function).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        names = _arg_names(op_types[0], args, keyword)
        context = tuple(name for name in keyword if name in CONTEXT_PARAMS)
        for op_type in op_types:
            if op_type in registry:
                raise ValueError(f"{device} kernel for {op_type} registered twice")
            registry[op_type] = Kernel(op_type, function, names, context, specialize)
        return function
    return register


def register_cpu(*op_types: str, specialize: bool = False, args=None):
    """Register a CPU kernel for one or more op types. The schema args it takes are
    its keyword-only parameters; a kernel taking them as **kwargs names them in
    `args` (or takes ALL_SCHEMA_ARGS). With `specialize=True` the function is a
    factory: called once per op at CreateNet with the args, it returns the kernel."""
    return _registrar(CPU_KERNELS, "CPU", op_types, specialize, args)


def register_cuda(*op_types: str, specialize: bool = False, args=None):
    """Register a CUDA launcher: inputs are GPUArrays (or NumPy arrays it copies
    over with _cuda.as_gpu), outputs GPUArrays."""
    return _registrar(CUDA_KERNELS, "CUDA", op_types, specialize, args)


_loaded = False


def load_kernels() -> dict[str, Kernel]:
    """Import every family module once; returns the CPU kernel registry."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__package__}.{module.name}")
        _loaded = True
    return CPU_KERNELS


# -- gradient makers --------------------------------------------------------------------------------

Maker = Callable[["GradientContext"], list]
GRADIENT_MAKERS: dict[str, Maker] = {}


class GradientSlice(NamedTuple):
    """A sparse gradient, as Caffe2's: `values[k]` is the gradient of row
    `indices[k]` of the blob (rows may repeat; they add up). Gather makes one
    for its DATA; several are summed by concatenating indices and values."""

    indices: str
    values: str


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
        """The dense gradient of output i; it must exist."""
        gradient = self._g_output(i)
        if isinstance(gradient, GradientSlice):
            raise GradientError(
                f"the gradient of output {i} ('{self.op.output[i]}') is sparse (indices "
                f"'{gradient.indices}', values '{gradient.values}'), and {self.op.type}'s gradient "
                f"needs it dense: write EnsureDense('{self.op.output[i]}', '{self.op.output[i]}') "
                "after the op that reads it sparsely, or give that Gather dense_gradient=1")
        return gradient

    def GO_I(self, i: int) -> str:
        """The indices of output i's sparse gradient."""
        return self._sparse_g_output(i).indices

    def GO_V(self, i: int) -> str:
        """The values of output i's sparse gradient."""
        return self._sparse_g_output(i).values

    def is_sparse_GO(self, i: int) -> bool:
        return isinstance(self._g_output(i), GradientSlice)

    def _g_output(self, i: int):
        if self.g_output[i] is None:
            raise GradientError(f"output {i} ({self.op.output[i]}) has no gradient")
        return self.g_output[i]

    def _sparse_g_output(self, i: int) -> GradientSlice:
        gradient = self._g_output(i)
        if not isinstance(gradient, GradientSlice):
            raise GradientError(f"the gradient of output {i} ('{self.op.output[i]}') is dense, not sparse")
        return gradient

    def has_GO(self, i: int) -> bool:
        return i < len(self.g_output) and self.g_output[i] is not None

    def GI(self, i: int) -> str:
        """The gradient blob of input i (`<input>_grad`), recorded as produced."""
        self.g_input[i] = f"{self.op.input[i]}_grad{self.suffix}"
        return self.g_input[i]

    def GI_I(self, i: int) -> str:
        """The indices blob of input i's sparse gradient (`<input>_grad_indices`)."""
        return f"{self.op.input[i]}_grad_indices{self.suffix}"

    def GI_V(self, i: int) -> str:
        """The values blob of input i's sparse gradient (`<input>_grad_values`)."""
        return f"{self.op.input[i]}_grad_values{self.suffix}"

    def SetDense(self, i: int, name: str) -> None:
        """Input i's gradient is the existing blob `name` (no op computes it)."""
        self.g_input[i] = name

    def SetSparse(self, i: int, indices: str, values: str) -> None:
        """Input i's gradient is sparse: rows `indices` get `values` (blobs that
        exist, or that this maker's ops write as GI_I(i) / GI_V(i))."""
        self.g_input[i] = GradientSlice(indices, values)

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


__all__ = [
    "CONTEXT_PARAMS",
    "CPU_KERNELS",
    "CUDA_KERNELS",
    "GRADIENT_MAKERS",
    "GradientContext",
    "GradientError",
    "GradientSlice",
    "Kernel",
    "Maker",
    "gradient_op",
    "load_kernels",
    "register_cpu",
    "register_cuda",
    "register_gradient",
]
