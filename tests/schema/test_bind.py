"""bind_args and fitting_value, which keep each schema's facts, give what binding gave
when it walked the schema for every op: checked against that plain walk (kept here as
the reference) for every schema, with args of every field, fitting or not, and given twice."""
import pytest

from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.args import arg_value, fits
from pycaffe2.schema.bind import UNFIT, _typed_default, bind_args, facts, fitting_value


def reference_bind(schema, op) -> dict:
    """Binding as a walk over the schema's args for each op."""
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


def _arguments(name: str) -> list:
    """One Argument of `name` in each field, and an empty one."""
    return [caffe2_pb2.Argument(name=name, f=0.5), caffe2_pb2.Argument(name=name, i=3),
            caffe2_pb2.Argument(name=name, s=b"NCHW"), caffe2_pb2.Argument(name=name, s=b"\xff"),
            caffe2_pb2.Argument(name=name, floats=[1.0, 2.0]), caffe2_pb2.Argument(name=name, ints=[1, 2]),
            caffe2_pb2.Argument(name=name, strings=[b"a", b"\xfe"]), caffe2_pb2.Argument(name=name),
            caffe2_pb2.Argument(name=name, n=caffe2_pb2.NetDef(name="inner")),
            caffe2_pb2.Argument(name=name, i=1, f=2.0)]


def _schemas():
    return sorted({id(schema): schema for schema in all_schemas().values()}.values(), key=lambda s: s.type)


@pytest.mark.parametrize("schema", _schemas(), ids=lambda schema: schema.type)
def test_bind_args_as_the_schema_walk(schema):
    names = list(schema.args)[-4:] + ["not_an_arg"]
    for index, name in enumerate(names):
        for arg in _arguments(name):
            op = caffe2_pb2.OperatorDef(type=schema.type)
            op.arg.append(arg)
            if index % 2:  # the same name given twice: the last one counts
                op.arg.insert(0, _arguments(name)[index % 7])
            assert bind_args(schema, op) == reference_bind(schema, op)
            spec = schema.args.get(name)
            if spec is not None:
                known = facts(schema)
                value = fitting_value(arg, known.fields[name], known.empty_list_ok[name], UNFIT)
                assert (value is not UNFIT) == fits(arg, spec.types)
                if value is not UNFIT:
                    assert value == arg_value(arg)


def test_bound_lists_are_the_callers_own():
    schema = next(s for s in _schemas() if facts(s).list_defaults)
    op = caffe2_pb2.OperatorDef(type=schema.type)
    first = bind_args(schema, op)
    name = facts(schema).list_defaults[0]
    first[name].append("edited")
    assert bind_args(schema, op) == reference_bind(schema, op)
