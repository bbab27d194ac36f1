"""Operator schemas: the YAML files under ops/, their loader and the net checker.

This package imports no kernels, so validating nets stays light.

    from pycaffe2 import schema
    schema.get_schema("HardSigmoid").args["alpha"].default   # 0.2

Users' own op schemas join the built-in ones from folders: those PYCAFFE2_SCHEMAS
names (os.pathsep-separated; read with the built-in schemas) and those given to
`load_schema_dir` (pycaffe2.custom_ops, the CLI's --schemas).
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path

from pycaffe2.errors import SchemaError
from pycaffe2.schema.inference import RULES
from pycaffe2.schema.loader import load_schemas, load_user_schemas
from pycaffe2.schema.opschema import ArgSpec, Count, OpSchema, TensorSpec

__all__ = [
    "ArgSpec",
    "Count",
    "OpSchema",
    "SchemaError",
    "TensorSpec",
    "all_schemas",
    "closest_types",
    "get_schema",
    "load_schema_dir",
    "user_schema_dirs",
]

SCHEMAS_ENV = "PYCAFFE2_SCHEMAS"
_user_dirs: list[Path] = []  # the user folders loaded, in order


@lru_cache(maxsize=1)
def all_schemas() -> dict[str, OpSchema]:
    """Every op type (aliases included) -> its schema; loaded once, with the
    folders PYCAFFE2_SCHEMAS names."""
    schemas = load_schemas(inference_rules=RULES)
    for folder in os.environ.get(SCHEMAS_ENV, "").split(os.pathsep):
        if folder.strip():
            _add(schemas, Path(folder.strip()))
    return schemas


def _add(schemas: dict, folder: Path) -> list[str]:
    resolved = folder.resolve()
    if resolved in _user_dirs:
        return []
    new = load_user_schemas(folder, RULES, schemas)
    schemas.update(new)
    _user_dirs.append(resolved)
    return sorted(new)


def load_schema_dir(folder) -> list[str]:
    """Add a folder of the user's schema files (the format of docs/schema_format.md)
    to the registry; returns the op types it added ([] for a folder loaded before).
    Raises SchemaError naming the file, line and op for a malformed file."""
    return _add(all_schemas(), Path(folder))


def user_schema_dirs() -> list[Path]:
    """The user schema folders loaded so far."""
    all_schemas()
    return list(_user_dirs)


def get_schema(op_type: str) -> OpSchema | None:
    return all_schemas().get(op_type)


def closest_types(op_type: str, n: int = 3) -> list[str]:
    """The known op types spelled most like `op_type`."""
    names = list(all_schemas())
    by_case = [name for name in names if name.lower() == op_type.lower()]
    return by_case or difflib.get_close_matches(op_type, names, n=n, cutoff=0.6)
