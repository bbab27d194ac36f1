"""Shape and type inference rules, named by the schemas' `inference:` field.

A rule takes the op's view (typed args with schema defaults, input and output
counts) and one TensorInfo per input (None where unknown), and returns one
TensorInfo or None per output. It raises ShapeError when the known inputs
cannot work, with a message naming the input and shapes at fault. Family
modules in this package register rules with `@rule("name")`; every module
here is imported, so a new family needs no list to be edited.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from pycaffe2.errors import ShapeError  # rules raise it; importers find it here too


class TensorInfo(NamedTuple):
    """A blob's shape (a tuple of ints) and dtype (a NumPy dtype name)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def describe(self) -> str:
        return f"{list(self.shape)} {self.dtype}"


def info_of(value) -> TensorInfo | None:
    """The TensorInfo of an array (NumPy or device), None for None: what a kernel hands
    the shape rules it shares with inference."""
    return None if value is None else TensorInfo(tuple(value.shape), np.dtype(value.dtype).name)


class OpView:
    """An op as a rule sees it: args typed and defaulted by the schema."""

    def __init__(self, op_type: str, args: dict, n_inputs: int, n_outputs: int, input_names=()):
        self.type, self.args = op_type, args
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.input_names = tuple(input_names)  # the schema's names of the inputs, for messages

    def arg(self, name: str, default=None):
        value = self.args.get(name)
        return default if value is None else value

    def has(self, name: str) -> bool:
        return self.args.get(name) is not None


Rule = Callable[[OpView, list], list]
RULES: dict[str, Rule] = {}


def rule(name: str):
    """Register an inference rule under `name`."""
    def register(function: Rule) -> Rule:
        if name in RULES:
            raise ValueError(f"inference rule {name} registered twice")
        RULES[name] = function
        return function
    return register


def same_shape(first, second, names: tuple[str, str]) -> None:
    """Raise when two shapes that pair element by element differ (None: unknown). One
    check for every family, so the words are the same everywhere."""
    if first is not None and second is not None and tuple(first) != tuple(second):
        raise ShapeError(f"{names[0]} is {list(first)} but {names[1]} is "
                         f"{list(second)}: they must have the same shape")


def _agree(named: dict, measure, what: str) -> None:
    """Raise unless the known shapes (name -> shape or None) agree by `measure`."""
    known = {name: shape for name, shape in named.items() if shape is not None}
    if len({measure(shape) for shape in known.values()}) > 1:
        shapes = ", ".join(f"{name} {list(shape)}" for name, shape in known.items())
        raise ShapeError(f"{shapes}: these must {what}")


def same_sizes(named: dict) -> None:
    """Raise unless the known shapes (name -> shape) hold the same number of elements."""
    _agree(named, math.prod, "hold the same number of elements")


def same_shapes(named: dict) -> None:
    """Raise unless the known shapes (name -> shape) are all the same."""
    _agree(named, tuple, "have the same shape")


def shape_of(info: TensorInfo | None):
    """A TensorInfo's shape, None where unknown."""
    return None if info is None else info.shape


@rule("identical")
def identical(op: OpView, inputs: list) -> list:
    """Every output has the type and shape of input 0."""
    return [inputs[0] if inputs else None] * op.n_outputs


def _load_family_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_family_modules()
