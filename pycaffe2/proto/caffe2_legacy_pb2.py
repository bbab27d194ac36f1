"""Caffe2's caffe2_legacy.proto: the LegacyPadding enum and CaffeDatum (Caffe1's Datum
record, which ImageInput reads with use_caffe_datum=1), with Caffe2's names and
field numbers. Built from a descriptor in a private pool at import, so no
generated code or protoc is needed and the wire format is Caffe2's:

    channels = 1, height = 2, width = 3 (int32); data = 4 (bytes); label = 5 (int32);
    float_data = 6 (repeated float); encoded = 7 (bool, default false).
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PADDINGS = {"NOTSET": 0, "VALID": 1, "SAME": 2, "CAFFE_LEGACY_POOLING": 3}
_DATUM_FIELDS = [("channels", 1, _F.TYPE_INT32), ("height", 2, _F.TYPE_INT32), ("width", 3, _F.TYPE_INT32),
                 ("data", 4, _F.TYPE_BYTES), ("label", 5, _F.TYPE_INT32), ("float_data", 6, _F.TYPE_FLOAT),
                 ("encoded", 7, _F.TYPE_BOOL)]


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="caffe2/proto/caffe2_legacy.proto", package="caffe2",
                                              syntax="proto2")
    enum = file.enum_type.add(name="LegacyPadding")
    for name, number in _PADDINGS.items():
        enum.value.add(name=name, number=number)
    datum = file.message_type.add(name="CaffeDatum")
    for name, number, kind in _DATUM_FIELDS:
        label = _F.LABEL_REPEATED if name == "float_data" else _F.LABEL_OPTIONAL
        field = datum.field.add(name=name, number=number, type=kind, label=label)
        if name == "encoded":
            field.default_value = "false"
    return file


_pool = descriptor_pool.DescriptorPool()
DESCRIPTOR = _pool.Add(_file())
CaffeDatum = message_factory.GetMessageClass(_pool.FindMessageTypeByName("caffe2.CaffeDatum"))
NOTSET, VALID, SAME, CAFFE_LEGACY_POOLING = _PADDINGS.values()

__all__ = ["CAFFE_LEGACY_POOLING", "NOTSET", "SAME", "VALID", "CaffeDatum"]
