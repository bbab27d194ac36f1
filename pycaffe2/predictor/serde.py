"""Protobuf messages to and from the bytes a string blob holds (Caffe2's predictor.serde)."""
from __future__ import annotations

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto.checks import message_from_bytes


def serialize_protobuf_struct(protobuf_struct) -> bytes:
    return protobuf_struct.SerializeToString()


def deserialize_protobuf_struct(serialized: bytes, struct_type):
    message, problem = message_from_bytes(struct_type, serialized)
    if problem:
        raise PyCaffe2Error(f"not a serialized {struct_type.DESCRIPTOR.name}: {problem}")
    return message
