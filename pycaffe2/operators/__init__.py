"""Operator kernels: one module per op family, registered by op type.

A CPU kernel takes the op's input arrays positionally and its schema args as
keyword-only parameters without defaults (the schema supplies every default
once, when a net is created). It returns its outputs: a tuple, or one array
for a single output; optional outputs the op did not ask for are dropped.
Kernels never modify their inputs: that is what lets a failing op leave the
workspace as it was.

A kernel may also declare the keyword-only parameters `num_outputs` (how many
outputs the op asked for), `rng` (a NumPy Generator, seeded from the op's
device_option.random_seed when it has one) and `input_names` / `output_names`
(the op's blob names, for ops such as Save that key data by name); the
executor fills them.

`register_cpu(..., specialize=True)` registers a kernel factory instead: it
takes only the keyword args, once, when the net is created, and returns the
function to call on the inputs (e.g. plain `np.add` when Add has no legacy
broadcast), so args cost nothing per run.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

CONTEXT_PARAMS = ("num_outputs", "rng", "input_names", "output_names")


@dataclass(frozen=True)
class Kernel:
    op_type: str
    function: Callable
    arg_names: tuple[str, ...]  # schema args it takes
    context: tuple[str, ...]  # which of CONTEXT_PARAMS it takes
    specialize: bool = False  # `function` is a factory: function(**args) -> kernel


CPU_KERNELS: dict[str, Kernel] = {}
CUDA_KERNELS: dict[str, Kernel] = {}  # their functions take and return GPUArrays


def _registrar(registry: dict, device: str, op_types, specialize: bool, args):
    def register(function: Callable) -> Callable:
        keyword = [p.name for p in inspect.signature(function).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        names = tuple(args) if args is not None else tuple(n for n in keyword if n not in CONTEXT_PARAMS)
        context = tuple(name for name in keyword if name in CONTEXT_PARAMS)
        for op_type in op_types:
            if op_type in registry:
                raise ValueError(f"{device} kernel for {op_type} registered twice")
            registry[op_type] = Kernel(op_type, function, names, context, specialize)
        return function
    return register


def register_cpu(*op_types: str, specialize: bool = False, args=None):
    """Register a CPU kernel (or kernel factory) for one or more op types. `args`
    names the schema args of a kernel that takes them as **kwargs."""
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
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True
    return CPU_KERNELS
