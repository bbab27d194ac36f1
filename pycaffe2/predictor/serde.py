"""Protobuf messages to and from the bytes a string blob holds (Caffe2's predictor.serde)."""
from __future__ import annotations

from pycaffe2.errors import PyCaffe2Error


def serialize_protobuf_struct(protobuf_struct) -> bytes:
    return protobuf_struct.SerializeToString()


def deserialize_protobuf_struct(serialized: bytes, struct_type):
    message = struct_type()
    try:
        message.ParseFromString(bytes(serialized))
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types for bad bytes)
        raise PyCaffe2Error(f"not a serialized {struct_type.DESCRIPTOR.name}: {exc}") from None
    return message
