"""Standard protobuf JSON (what google.protobuf.json_format writes) read as a
NetDef, beside pycaffe2's own JSON.

json_format spells fields in camelCase (`externalInput`), writes 64-bit
integers as strings (`"i": "3"`) and bytes in base64 (`"s": "TkNIVw=="`).
pycaffe2's own JSON has none of the first two (its reader refuses both), so a
tree with either is told apart safely and handed to json_format whole. A tree
with neither reads the same both ways except for bytes fields, which pycaffe2's
JSON keeps as text: such a file is read as pycaffe2's.
"""
from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from pycaffe2 import _yaml
from pycaffe2.errors import NetFileError
from pycaffe2.proto import caffe2_pb2

_INT64_TYPES = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64)


def _field_names():
    """(camelCase names that differ from the field's, names of 64-bit integer fields)
    over every message a NetDef or PlanDef can hold."""
    camel, int64, seen = set(), set(), set()
    todo = [caffe2_pb2.NetDef.DESCRIPTOR, caffe2_pb2.PlanDef.DESCRIPTOR]
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        for fd in descriptor.fields:
            if fd.json_name != fd.name:
                camel.add(fd.json_name)
            if fd.type in _INT64_TYPES:
                int64.add(fd.name)
            if fd.message_type is not None:
                todo.append(fd.message_type)
    return frozenset(camel), frozenset(int64)


CAMEL_NAMES, INT64_FIELDS = _field_names()


def is_protojson(tree) -> bool:
    """Whether a parsed JSON/YAML tree uses json_format's camelCase names or
    64-bit integers written as strings anywhere."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in CAMEL_NAMES:
                    return True
                if key in INT64_FIELDS and (isinstance(value, str) or (
                        isinstance(value, list) and any(isinstance(v, str) for v in value))):
                    return True
                if isinstance(value, (dict, list)):
                    todo.append(value)
        elif isinstance(node, list):
            todo.extend(item for item in node if isinstance(item, (dict, list)))
    return False


def parse(tree, cls, file: str, path: str = ""):
    """A `cls` message from a json_format tree; faults raise NetFileError naming the file."""
    message = cls()
    try:
        json_format.ParseDict(tree, message)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        where = f"{path}: " if path else ""
        raise NetFileError(f"{where}bad protobuf JSON: {exc}", file=file,
                           line=_yaml.line_of(tree)) from None
    return message
