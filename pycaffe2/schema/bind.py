"""Binding an OperatorDef to its schema: typed args with defaults, and inference.

Used by the checker and by net compilation, so an op's args are resolved in
one place. What depends on the schema alone (typed defaults, required and net
args, input names) is worked out once per schema and kept (`facts`), so binding
an op costs a look at its own args only.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from pycaffe2.files import check_alloc, max_blob_bytes
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import ARG_FIELDS, LIST_FIELDS, convert, python_value
from pycaffe2.schema.inference import RULES, OpView, ShapeError, TensorInfo
from pycaffe2.schema.opschema import OpSchema

__all__ = ["UNFIT", "ShapeError", "TensorInfo", "bind_args", "bound_with", "facts", "fitting_value", "infer_op"]


class SchemaFacts(NamedTuple):
    """What binding and checking need from one schema, worked out once."""

    defaults: dict  # arg name -> typed default (None where there is none), in the schema's order
    list_defaults: tuple[str, ...]  # the names whose default is a list (copied per op: callers may edit)
    required: tuple[str, ...]
    has_net_args: bool
    fields: dict  # arg name -> the Argument fields its types are stored in
    empty_list_ok: dict  # arg name -> whether an empty Argument fits (some type is a list)


_FACTS: dict[int, tuple[OpSchema, SchemaFacts]] = {}  # id(schema) -> (the schema, kept alive, its facts)


def facts(schema: OpSchema) -> SchemaFacts:
    """The schema's SchemaFacts, computed on first use."""
    entry = _FACTS.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    defaults = {name: None if spec.default is None else _typed_default(spec)
                for name, spec in schema.args.items()}
    found = SchemaFacts(
        defaults, tuple(name for name, value in defaults.items() if isinstance(value, list)),
        tuple(name for name, spec in schema.args.items() if spec.required),
        any("net" in spec.types or "nets" in spec.types for spec in schema.args.values()),
        {name: frozenset(ARG_FIELDS[t] for t in spec.types) for name, spec in schema.args.items()},
        {name: any(ARG_FIELDS[t] in LIST_FIELDS for t in spec.types) for name, spec in schema.args.items()})
    _FACTS[id(schema)] = (schema, found)
    return found


_NAME_FIELD = caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["name"]  # number 1: listed first when set


def fitting_value(arg: caffe2_pb2.Argument, fields: frozenset, empty_list_ok: bool, missing=None):
    """The arg's value when its stored field is one of `fields` (as args.fits says), else `missing`."""
    stored = arg.ListFields()
    if stored and stored[0][0] is _NAME_FIELD:
        del stored[0]
    if not stored:
        return [] if empty_list_ok else missing
    if len(stored) == 1 and stored[0][0].name in fields:
        return python_value(stored[0][0].name, stored[0][1])
    return missing


def bind_args(schema: OpSchema, op: caffe2_pb2.OperatorDef) -> dict:
    """name -> Python value for every schema arg: the op's own where it fits
    the declared type, else the schema default (None when there is none)."""
    known = facts(schema)
    given = {arg.name: arg for arg in op.arg}  # the last of a name given twice counts
    fields = known.fields
    return bound_with(known, {name: fitting_value(arg, fields[name], known.empty_list_ok[name], UNFIT)
                              for name, arg in given.items() if name in fields})


UNFIT = object()  # fitting_value's answer for an arg stored in a field its types do not use


def bound_with(known: SchemaFacts, fitted: dict) -> dict:
    """bind_args' answer from the schema's facts and the op's fitted values (name -> value, or
    UNFIT where the op's arg of that name does not fit: the default stands)."""
    bound = dict(known.defaults)
    for name in known.list_defaults:
        bound[name] = list(bound[name])
    for name, value in fitted.items():
        if value is not UNFIT:
            bound[name] = value
    return bound


def _typed_default(spec):
    for type_name in spec.types:
        try:
            value = convert(spec.default, type_name)
        except ValueError:
            continue
        return value.decode() if isinstance(value, bytes) else value
    return spec.default


def infer_op(op: caffe2_pb2.OperatorDef, inputs: list[TensorInfo | None],
             schema: OpSchema | None = None, max_bytes: int | None = None,
             args: dict | None = None) -> list[TensorInfo | None]:
    """Output infos of `op` given its input infos; None entries are unknown.

    Raises ShapeError when the known inputs cannot work. Ops without a schema or
    without a rule give all-unknown outputs. What the caller has already worked out
    may come along: `schema` (the op's), `max_bytes` (files.max_blob_bytes(), read
    once for many ops), `args` (bind_args' answer).
    """
    if schema is None:
        schema = get_schema(op.type)
    if schema is None or schema.inference == "none":
        return [None] * len(op.output)
    view = OpView(op.type, bind_args(schema, op) if args is None else args, len(op.input), len(op.output),
                  _input_names(schema, len(op.input)))
    outputs = list(RULES[schema.inference](view, list(inputs)))
    outputs += [None] * (len(op.output) - len(outputs))
    outputs = outputs[:len(op.output)]
    _check_sizes(outputs, max_bytes)
    return outputs


_INPUT_NAMES: dict[tuple[int, int], tuple[OpSchema, tuple[str, ...]]] = {}


def _input_names(schema: OpSchema, count: int) -> tuple[str, ...]:
    """The schema's names of an op's `count` inputs (kept for the usual counts)."""
    entry = _INPUT_NAMES.get((id(schema), count))
    if entry is None or entry[0] is not schema:
        entry = schema, tuple(schema.input_name(i) for i in range(count))
        if count <= 64:
            _INPUT_NAMES[id(schema), count] = entry
    return entry[1]


_ITEMSIZE: dict[str, int] = {}


def _check_sizes(outputs, cap: int | None) -> None:
    """An output that args (a fill's shape, Tile's tiles, ...) make too large is refused
    before the net runs: files.check_alloc says so. Sizes plainly under the cap skip it."""
    for index, info in enumerate(outputs):
        if info is None:
            continue
        itemsize = _itemsize(info.dtype)
        if itemsize is not None and all(type(d) is int for d in info.shape):
            cap = max_blob_bytes() if cap is None else cap
            if math.prod(info.shape) * itemsize <= cap:
                continue
        check_alloc(info.shape, info.dtype, f"output {index}")


def _itemsize(dtype) -> int | None:
    size = _ITEMSIZE.get(dtype)
    if size is None and isinstance(dtype, str):
        try:
            size = _ITEMSIZE[dtype] = np.dtype(dtype).itemsize
        except TypeError:
            return None
    return size
