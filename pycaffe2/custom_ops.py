"""User-defined ops, without editing pycaffe2: the one documented place for them.

An op is a schema (a YAML family file in a folder of the user's, in the format of
docs/schema_format.md) and a kernel (a Python function registered here), plus, when it
trains, a gradient maker and the gradient op's schema and kernel:

    from pycaffe2 import custom_ops

    @custom_ops.register_cpu("Square")
    def square(x):
        return x * x

    custom_ops.load_schema_dir("my_schemas")     # my_schemas/square.yaml holds Square's schema

Schema folders come from `load_schema_dir`, from the PYCAFFE2_SCHEMAS environment
variable (folders separated by os.pathsep, read with pycaffe2's own schemas) and, on the
command line, from `--schemas DIR`. A schema file is data: it is read with a safe YAML
loader and checked fully (errors name the file, line and op), it cannot redefine an op
pycaffe2 or an earlier folder defines, and its `inference:` may only name a rule that is
registered already: pycaffe2's own, or one registered here with `inference_rule`. Nothing
named in a schema file is imported.

Code comes only from where the user says: a module the user imports, a `--plugin MODULE`
on the command line, or a package installed with an entry point in the group
`pycaffe2.ops` (ENTRY_POINT_GROUP), which the command line loads at start and
`load_plugins` loads from Python. An entry point names a module (importing it registers
its kernels) or a function (called with no arguments; it registers what it needs and may
return schema folders to load).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from types import ModuleType

from pycaffe2.errors import PyCaffe2Error, ShapeError
from pycaffe2.operators.registry import (
    ALL_SCHEMA_ARGS,
    CONTEXT_PARAMS,
    GradientContext,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema import SCHEMAS_ENV, load_schema_dir, user_schema_dirs
from pycaffe2.schema.inference import OpView, TensorInfo
from pycaffe2.schema.inference import rule as inference_rule

ENTRY_POINT_GROUP = "pycaffe2.ops"

__all__ = [
    "ALL_SCHEMA_ARGS",
    "CONTEXT_PARAMS",
    "ENTRY_POINT_GROUP",
    "SCHEMAS_ENV",
    "GradientContext",
    "OpView",
    "PluginError",
    "ShapeError",
    "TensorInfo",
    "gradient_op",
    "inference_rule",
    "load_plugin",
    "load_plugins",
    "load_schema_dir",
    "register_cpu",
    "register_cuda",
    "register_gradient",
    "user_schema_dirs",
]


class PluginError(PyCaffe2Error):
    """A plugin module or entry point could not be loaded, or returned something odd."""


def load_plugin(module: str) -> ModuleType:
    """Import a plugin module by its dotted name (the command line's --plugin); importing it
    registers its kernels, and it may load its schema folders itself."""
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise PluginError(f"plugin module '{module}' failed to import: {type(exc).__name__}: {exc}") from exc


def load_plugins() -> list[str]:
    """Load every entry point of the group `pycaffe2.ops` of the installed packages, once
    each; returns their names. A function's return value (None, or schema folders) is
    loaded as schema folders."""
    loaded = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.value in _loaded_entry_points:
            continue
        where = f"plugin entry point '{entry.name}' ({entry.value})"
        try:
            target = entry.load()
            result = None if isinstance(target, ModuleType) else target()
        except Exception as exc:
            raise PluginError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        for folder in _folders(result, where):
            load_schema_dir(folder)
        _loaded_entry_points.add(entry.value)
        loaded.append(entry.name)
    return loaded


_loaded_entry_points: set[str] = set()


def _folders(result, where: str) -> list[Path]:
    if result is None:
        return []
    if isinstance(result, (str, Path)):
        result = [result]
    if not isinstance(result, Iterable) or not all(isinstance(item, (str, Path)) for item in result):
        raise PluginError(f"{where} returned {type(result).__name__}; expected None or schema folder paths")
    return [Path(item) for item in result]
