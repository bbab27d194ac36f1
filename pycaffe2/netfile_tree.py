"""NetDef and PlanDef messages as plain data (YAML/JSON trees) and back.

This holds what the YAML and JSON spellings mean. They use NetDef's field
names; an op's `arg` may be a mapping whose values get their Argument field
from the op's schema (`alpha: 1` is the float 1.0 for HardSigmoid); bytes
fields are text when they are UTF-8 and `{base64: ...}` otherwise; float32
fields are written as the shortest decimals that read back to the same
float32; fields that caffe2.proto does not declare (a newer or foreign
writer's, kept by a .pb) are the key `unknown_fields: {base64: ...}` holding
their wire bytes, so .pb -> .yaml -> .pb keeps them. `DictReader` builds messages from a parsed tree, with errors located
by line and op; `net_to_tree` and `message_to_tree` are its inverse.

The seam with netfile.py: netfile deals with files (extensions, parsing and
writing bytes, .pb and .pbtxt, model files and folders, where their paths may
lead); this module only with trees already parsed, in both directions, so the
reader and its inverse stay side by side and need no file. netfile re-exports
`net_to_tree` and `message_to_tree`.
"""
from __future__ import annotations

import base64
import difflib

import numpy as np
from google.protobuf.descriptor import FieldDescriptor

from pycaffe2 import _yaml, protojson
from pycaffe2.errors import NetFileError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import UNKNOWN_FIELDS_KEY, has_unknown_fields, is_repeated, unknown_bytes
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import DTYPE_BY_NUMBER, arg_value, make_argument, set_fields

_PLAIN_ARG_FIELDS = {"f", "i", "s", "floats", "ints", "strings"}
_FLOAT32_FIELDS = {("Argument", "f"), ("Argument", "floats"), ("TensorProto", "float_data")}


# ---------------------------------------------------------------- reading

_ARGUMENT_FIELDS = set(caffe2_pb2.Argument.DESCRIPTOR.fields_by_name)


def _net_shaped(value) -> bool:
    """A net arg written as the net itself (`then_net: {name: t, op: [...]}`), or a list
    of nets, rather than as an Argument's fields (`{n: {...}}`)."""
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, dict) and not set(map(str, v)) & _ARGUMENT_FIELDS - {"name"}
                               for v in items)


class DictReader:
    """Builds protobuf messages from YAML/JSON trees, with located errors."""

    def __init__(self, file: str, op_lines: dict[int, int]):
        self.file, self.op_lines = file, op_lines

    def fail(self, message, node, path, op_index=None, op_type=None):
        where = f"{path}: " if path else ""
        raise NetFileError(where + message, file=self.file, line=_yaml.line_of(node),
                           op_index=op_index, op_type=op_type)

    def message(self, tree, cls, path, parent=None, skip=None):
        """A `cls` message from a mapping; the key `skip` (an op's friendly arg mapping) is the caller's."""
        if not isinstance(tree, dict):
            self.fail(f"expected a {cls.DESCRIPTOR.name} mapping, got {_kind(tree)}",
                      tree if hasattr(tree, "line") else parent, path)
        if cls is caffe2_pb2.NetDef and protojson.is_protojson(tree):  # json_format's spelling
            self.op_lines.update(enumerate(getattr(tree.get("op"), "item_lines", [])))
            return protojson.parse(tree, cls, self.file, path)
        message = cls()
        fields = cls.DESCRIPTOR.fields_by_name
        for key, value in tree.items():
            if skip is not None and key == skip:
                continue
            name = str(key)
            if name == UNKNOWN_FIELDS_KEY and name not in fields:
                self.unknown_fields(message, value, f"{path}.{name}" if path else name, tree)
                continue
            if name not in fields:
                hint = difflib.get_close_matches(name, list(fields), n=1)
                self.fail(f"unknown {cls.DESCRIPTOR.name} field '{name}'"
                          + (f" (did you mean '{hint[0]}'?)" if hint else ""), tree, path)
            if value is None:
                continue
            sub = f"{path}.{name}" if path else name
            if cls is caffe2_pb2.NetDef and name == "op":
                self.ops(message, value, sub, tree)
            else:
                self.field(message, fields[name], value, sub, tree)
        return message

    def unknown_fields(self, message, value, path, parent):
        """Fields caffe2.proto does not declare, kept as their wire bytes."""
        data = self.bytes_value(value, path, parent) if isinstance(value, dict) else None
        if data is None:
            self.fail("expected {base64: ...} (the wire bytes of fields caffe2.proto does not declare)",
                      parent, path)
        try:
            message.MergeFromString(data)
        except Exception as exc:  # noqa: BLE001 (protobuf raises several types for bad bytes)
            self.fail(f"not valid protobuf wire bytes: {exc}", parent, path)

    def ops(self, net, value, path, parent):
        if not isinstance(value, list):
            self.fail("'op' must be a list of operators", parent, path)
        lines = getattr(value, "item_lines", []) if "[" not in path else []  # a control op's net: not the file's ops
        for index, tree in enumerate(value):
            op_type = tree.get("type") if isinstance(tree, dict) else None
            if index < len(lines):
                self.op_lines[index] = lines[index]
            try:
                op = self.operator(tree, f"{path}[{index}]", value)
            except NetFileError as exc:
                if exc.op_index is not None:
                    raise
                raise NetFileError(exc.message, file=self.file, line=exc.line or self.op_lines.get(index),
                                   op_index=index, op_type=op_type) from None
            net.op.append(op)

    def operator(self, tree, path, parent):
        op = _plain_op(tree) if isinstance(tree, dict) else None
        friendly = isinstance(tree, dict) and isinstance(tree.get("arg"), dict)
        if op is None:
            op = self.message(tree, caffe2_pb2.OperatorDef, path, parent, skip="arg" if friendly else None)
        if friendly:
            op.arg.extend(self.friendly_args(op.type, tree["arg"], f"{path}.arg"))
        return op

    def friendly_args(self, op_type, mapping, path):
        """The Arguments of an op's `arg` mapping, each typed by the op's schema."""
        schema = get_schema(op_type)
        args = []
        for name, value in mapping.items():
            spec = schema.args.get(str(name)) if schema else None
            if spec is not None and ("net" in spec.types or "nets" in spec.types) and _net_shaped(value):
                nets = [self.message(v, caffe2_pb2.NetDef, f"{path}.{name}", mapping)
                        for v in (value if isinstance(value, list) else [value])]
                arg = caffe2_pb2.Argument(name=str(name))
                if isinstance(value, list):
                    arg.nets.extend(nets)
                else:
                    arg.n.CopyFrom(nets[0])
            elif isinstance(value, dict):  # an Argument written out field by field
                arg = self.message(value, caffe2_pb2.Argument, f"{path}.{name}", mapping)
                arg.name = str(name)
            else:
                try:
                    arg = make_argument(str(name), value, spec.types if spec else ())
                except (ValueError, TypeError) as exc:  # incl. a lone surrogate, an int out of range
                    self.fail(f"arg '{name}' {exc}", mapping, path)
            args.append(arg)
        return args

    def field(self, message, fd, value, path, parent):
        if _repeated(fd):
            if not isinstance(value, list):
                self.fail(f"expected a list, got {_kind(value)}", parent, path)
            target = getattr(message, fd.name)
            if fd.type == FieldDescriptor.TYPE_STRING and all(type(item) is str for item in value):
                before = len(target)
                try:  # blob names, the common case: at once (a fault is found item by item below)
                    target.extend(value)
                    return
                except (ValueError, TypeError):
                    del target[before:]
            for index, item in enumerate(value):
                converted = self.scalar(fd, item, f"{path}[{index}]", value)
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    target.add().CopyFrom(converted)
                    continue
                try:
                    target.append(converted)
                except (ValueError, TypeError) as exc:  # e.g. an integer out of the field's range
                    self.fail(str(exc), value, f"{path}[{index}]")
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, fd.name).CopyFrom(self.scalar(fd, value, path, parent))
        else:
            try:
                setattr(message, fd.name, self.scalar(fd, value, path, parent))
            except (ValueError, TypeError) as exc:
                self.fail(str(exc), parent, path)

    def scalar(self, fd, value, path, parent):
        kind = fd.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            return self.message(value, fd.message_type._concrete_class, path, parent)
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.enum(fd, value, path, parent)
        if kind == FieldDescriptor.TYPE_BOOL:
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
        elif kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind == FieldDescriptor.TYPE_STRING:
            if isinstance(value, str):
                return value
        elif kind == FieldDescriptor.TYPE_BYTES:
            return self.bytes_value(value, path, parent)
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        self.fail(f"expected {_FIELD_KINDS.get(kind, 'an integer')}, got {_kind(value)} {value!r:.40}",
                  parent, path)

    def enum(self, fd, value, path, parent):
        values = fd.enum_type.values_by_name
        if isinstance(value, str) and value in values:
            return values[value].number
        if isinstance(value, int) and not isinstance(value, bool) \
                and value in fd.enum_type.values_by_number:
            return value
        self.fail(f"expected one of {', '.join(values)}, got {value!r}", parent, path)

    def bytes_value(self, value, path, parent):
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
            try:
                return base64.b64decode(value["base64"], validate=True)
            except ValueError:
                self.fail("invalid base64", parent, path)
        self.fail(f"expected text or {{base64: ...}}, got {_kind(value)}", parent, path)


_OP_TEXT = frozenset({"type", "name", "engine"})
_OP_NAMES = frozenset({"input", "output", "control_input"})


def _plain_op(tree: dict):
    """The OperatorDef of an op mapping holding only text fields and lists of blob names
    (besides a friendly `arg` mapping, which the caller reads), built in one call; None
    for anything else, which message() reads field by field and reports."""
    fields = {}
    for key, value in tree.items():
        if key in _OP_TEXT:
            if type(value) is not str:
                return None
        elif key in _OP_NAMES:
            if not isinstance(value, list) or not all(type(item) is str for item in value):
                return None
        elif key == "arg" and isinstance(value, dict):
            continue
        else:
            return None
        fields[key] = value
    try:
        return caffe2_pb2.OperatorDef(**fields)
    except (ValueError, TypeError):
        return None


def _repeated(fd) -> bool:
    known = _REPEATED.get(fd)
    if known is None:
        known = _REPEATED[fd] = is_repeated(fd)
    return known


_REPEATED: dict = {}  # field descriptor -> is_repeated


_FIELD_KINDS = {
    FieldDescriptor.TYPE_BOOL: "a bool", FieldDescriptor.TYPE_FLOAT: "a number",
    FieldDescriptor.TYPE_DOUBLE: "a number", FieldDescriptor.TYPE_STRING: "text",
}


def _kind(value) -> str:
    for kind, text in ((bool, "a bool"), (dict, "a mapping"), (list, "a list"), (str, "text"),
                       (int, "an integer"), (float, "a number"), (type(None), "nothing")):
        if isinstance(value, kind):
            return text
    return type(value).__name__


# ---------------------------------------------------------------- writing

def net_to_tree(net: caffe2_pb2.NetDef) -> dict:
    """A NetDef as plain data, with each op's args as a friendly mapping when
    re-reading that mapping through the schema gives back the same Arguments."""
    tree = message_to_tree(net)
    for op, op_tree in zip(net.op, tree.get("op", [])):
        friendly = _friendly_args(op)
        if friendly is not None:
            op_tree["arg"] = friendly
    return tree


def _friendly_args(op: caffe2_pb2.OperatorDef):
    if not op.arg:
        return None
    schema = get_schema(op.type)
    mapping = {}
    for arg in op.arg:
        spec = schema.args.get(arg.name) if schema else None
        types = spec.types if spec else ()
        fields = set_fields(arg)
        if has_unknown_fields(arg) or len(fields) > 1 or not set(fields) <= _PLAIN_ARG_FIELDS:  # kept field by field
            return None
        value = arg_value(arg)
        if arg.name in mapping or isinstance(value, bytes) or any(
                isinstance(v, bytes) for v in (value if isinstance(value, list) else [])):
            return None
        if arg.HasField("f") or len(arg.floats):
            value = _short_floats(value)
        try:
            if make_argument(arg.name, value, types) != arg:
                return None
        except ValueError:
            return None
        mapping[arg.name] = _dtype_name(arg, value, types)
    return mapping


def _dtype_name(arg: caffe2_pb2.Argument, value, types):
    """A dtype number spelled by name where reading the name back stores the same
    Argument; an arg that also takes text (Cast's `to`) would read the name as text,
    so it keeps its number."""
    if "dtype" in types and type(value) is int and value in DTYPE_BY_NUMBER:
        name = DTYPE_BY_NUMBER[value]
        if make_argument(arg.name, name, types) == arg:
            return name
    return value


def _short_floats(value):
    """float32 values as the shortest decimals that read back to the same float32."""
    if isinstance(value, list):
        return np.asarray(value, np.float32).astype(str).astype(np.float64).tolist()
    return _short_floats([value])[0]


def message_to_tree(message) -> dict:
    """Any proto message as plain data (the inverse of the dict reader)."""
    tree = {}
    owner = message.DESCRIPTOR.name
    for fd, value in message.ListFields():
        if _repeated(fd):
            items = [_value_to_tree(fd, v) for v in value]
            if (owner, fd.name) in _FLOAT32_FIELDS:
                items = _short_floats(items)
            tree[fd.name] = items
        else:
            item = _value_to_tree(fd, value)
            tree[fd.name] = _short_floats(item) if (owner, fd.name) in _FLOAT32_FIELDS else item
    if has_unknown_fields(message):
        tree[UNKNOWN_FIELDS_KEY] = {"base64": base64.b64encode(unknown_bytes(message)).decode("ascii")}
    return tree


def _value_to_tree(fd, value):
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_tree(value)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        enum_value = fd.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else value
    if fd.type == FieldDescriptor.TYPE_BYTES:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    return value
