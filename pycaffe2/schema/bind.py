"""Binding an OperatorDef to its schema: typed args with defaults, and inference.

Used by the checker now and by net compilation later, so an op's args are
resolved in one place.
"""
from __future__ import annotations

from pycaffe2.files import check_alloc
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import arg_value, convert, fits
from pycaffe2.schema.inference import RULES, OpView, ShapeError, TensorInfo
from pycaffe2.schema.opschema import OpSchema

__all__ = ["ShapeError", "TensorInfo", "bind_args", "infer_op"]


def bind_args(schema: OpSchema, op: caffe2_pb2.OperatorDef) -> dict:
    """name -> Python value for every schema arg: the op's own where it fits
    the declared type, else the schema default (None when there is none)."""
    given = {arg.name: arg for arg in op.arg}
    bound = {}
    for name, spec in schema.args.items():
        arg = given.get(name)
        if arg is not None and fits(arg, spec.types):
            bound[name] = arg_value(arg)
        elif spec.default is not None:
            bound[name] = _typed_default(spec)
        else:
            bound[name] = None
    return bound


def _typed_default(spec):
    for type_name in spec.types:
        try:
            value = convert(spec.default, type_name)
        except ValueError:
            continue
        return value.decode() if isinstance(value, bytes) else value
    return spec.default


def infer_op(op: caffe2_pb2.OperatorDef, inputs: list[TensorInfo | None]) -> list[TensorInfo | None]:
    """Output infos of `op` given its input infos; None entries are unknown.

    Raises ShapeError when the known inputs cannot work. Ops without a schema or
    without a rule give all-unknown outputs.
    """
    schema = get_schema(op.type)
    if schema is None or schema.inference == "none":
        return [None] * len(op.output)
    view = OpView(op.type, bind_args(schema, op), len(op.input), len(op.output),
                  [schema.input_name(i) for i in range(len(op.input))])
    outputs = list(RULES[schema.inference](view, list(inputs)))
    outputs += [None] * (len(op.output) - len(outputs))
    outputs = outputs[:len(op.output)]
    for index, info in enumerate(outputs):
        # An output that args (a fill's shape, Tile's tiles, ...) make too large is refused
        # before the net runs.
        if info is not None:
            check_alloc(info.shape, info.dtype, f"output {index}")
    return outputs

