"""The Python family's registry of functions and its one check.

core.Net.Python registers a function here under a token and writes only the
token into the op; the kernels (operators/python.py) and shape inference
look it up. The registry lives in this process alone, so a net read from a
file can name no function in it unless the net was made by this very
process: tokens carry a random part, so they cannot be guessed either. The
check is shared by validate, CreateNet and the kernels, and nothing from a
file is ever unpickled or executed.
"""
from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pycaffe2.schema.inference import OpView, ShapeError, rule

NOT_FROM_FILES = ("Python ops run only in the process that registered their function "
                  "(core.Net.Python or core.CreatePythonOperator); a net file cannot carry one")
PICKLED_ARGS = ("pickled_builder", "pickled_grad_builder")


@dataclass
class PythonFunction:
    """A registered forward function, its gradient function (None until given) and
    whether the forward one also takes the workspace."""

    forward: Callable
    pass_workspace: bool = False
    gradient: Callable | None = None


FUNCTIONS: dict[str, PythonFunction] = {}
_lock = threading.Lock()


def register_function(function: Callable, pass_workspace: bool = False, name: str = "") -> str:
    """Register `function` and return its new token: `name:` (when given), the
    function's __name__, and a random part."""
    if not callable(function):
        raise TypeError(f"a Python op needs a callable, got {type(function).__name__}")
    base = (f"{name}:" if name else "") + getattr(function, "__name__", type(function).__name__)
    with _lock:
        token = f"{base}:{secrets.token_hex(8)}"
        while token in FUNCTIONS:
            token = f"{base}:{secrets.token_hex(8)}"
        FUNCTIONS[token] = PythonFunction(function, bool(pass_workspace))
    return token


def register_gradient_function(token: str, function: Callable) -> None:
    """Give the function registered under `token` its gradient function."""
    if not callable(function):
        raise TypeError(f"a gradient function must be callable, got {type(function).__name__}")
    if token not in FUNCTIONS:
        raise KeyError(f"no Python function is registered under token '{token}'")
    FUNCTIONS[token].gradient = function


def registered_function(token: str, pickled_arg: str | None = None, gradient: bool = False) -> PythonFunction:
    """The registration an op's args name, or ShapeError saying why there is none;
    `pickled_arg` names a pickled-builder arg the op carries (refused, never read)."""
    if pickled_arg:
        raise ShapeError(f"arg {pickled_arg} holds a pickled Python function, which pycaffe2 never "
                         f"unpickles: {NOT_FROM_FILES}")
    if not token:
        raise ShapeError(f"arg token is missing: {NOT_FROM_FILES}")
    found = FUNCTIONS.get(token)
    if found is None:
        raise ShapeError(f"no Python function is registered under token '{token}' in this process: "
                         f"{NOT_FROM_FILES}")
    if gradient and found.gradient is None:
        raise ShapeError(f"the Python function under token '{token}' was registered without a "
                         "gradient function (net.Python(f, grad_f))")
    return found


@rule("python_function")
def python_function(op: OpView, inputs: list) -> list:
    """Python / PythonGradient: the function must be registered here; its outputs are
    unknown until it runs."""
    pickled = next((name for name in PICKLED_ARGS if op.arg(name)), None)
    registered_function(op.arg("token"), pickled, op.type == "PythonGradient")
    return [None] * op.n_outputs
