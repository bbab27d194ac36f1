"""Operator schemas: the YAML files under ops/, their loader and the net checker.

This package imports no kernels, so validating nets stays light.

    from pycaffe2 import schema
    schema.get_schema("HardSigmoid").args["alpha"].default   # 0.2
"""
from __future__ import annotations

import difflib
from functools import lru_cache

from pycaffe2.errors import SchemaError
from pycaffe2.schema.inference import RULES
from pycaffe2.schema.loader import load_schemas
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
]


@lru_cache(maxsize=1)
def all_schemas() -> dict[str, OpSchema]:
    """Every op type (aliases included) -> its schema; loaded once."""
    return load_schemas(inference_rules=RULES)


def get_schema(op_type: str) -> OpSchema | None:
    return all_schemas().get(op_type)


def closest_types(op_type: str, n: int = 3) -> list[str]:
    """The known op types spelled most like `op_type`."""
    names = list(all_schemas())
    by_case = [name for name in names if name.lower() == op_type.lower()]
    return by_case or difflib.get_close_matches(op_type, names, n=n, cutoff=0.6)
