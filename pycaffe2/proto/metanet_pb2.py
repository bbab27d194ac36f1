"""Caffe2's predictor messages: MetaNetDef (metanet.proto) and PredictorConsts
(predictor_consts.proto), with Caffe2's package, names and field numbers, so a
MetaNetDef that Caffe2's predictor_exporter wrote parses here and the other way round.

The descriptors are built from a table at import rather than by protoc: the
messages are few and flat, and this keeps the project free of a code generator.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from pycaffe2.proto import caffe2_pb2

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REQUIRED, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REQUIRED, _F.LABEL_REPEATED
_STRING, _MESSAGE = _F.TYPE_STRING, _F.TYPE_MESSAGE

# message -> [(field, number, label, type or message name, default)]
_MESSAGES = {
    "ModelInfo": [("project", 1, _OPTIONAL, _STRING, None), ("modelClass", 2, _OPTIONAL, _STRING, None),
                  ("version", 3, _OPTIONAL, _STRING, None),
                  ("predictorType", 4, _OPTIONAL, _STRING, "SINGLE_PREDICTOR"),
                  ("modelId", 5, _OPTIONAL, _STRING, None)],
    "BlobsMap": [("key", 1, _REQUIRED, _STRING, None), ("value", 2, _REPEATED, _STRING, None)],
    "NetsMap": [("key", 1, _REQUIRED, _STRING, None), ("value", 2, _REQUIRED, ".caffe2.NetDef", None)],
    "PlansMap": [("key", 1, _REQUIRED, _STRING, None), ("value", 2, _REQUIRED, ".caffe2.PlanDef", None)],
    "StringMap": [("key", 1, _REQUIRED, _STRING, None), ("value", 2, _REQUIRED, _STRING, None)],
    "MetaNetDef": [("blobs", 1, _REPEATED, ".caffe2.BlobsMap", None),
                   ("nets", 2, _REPEATED, ".caffe2.NetsMap", None),
                   ("modelInfo", 3, _OPTIONAL, ".caffe2.ModelInfo", None),
                   ("plans", 4, _REPEATED, ".caffe2.PlansMap", None),
                   ("applicationSpecificInfo", 5, _REPEATED, ".caffe2.StringMap", None),
                   ("blobsOrder", 6, _REPEATED, _STRING, None),
                   ("preLoadBlobs", 7, _REPEATED, _STRING, None)],
    # Every field a string whose default is the constant (Caffe2's way of keeping them in one proto).
    "PredictorConsts": [(name, number, _OPTIONAL, _STRING, default) for number, (name, default) in enumerate([
        ("META_NET_DEF", "!!META_NET_DEF"), ("PREDICTOR_DBREADER", "!!PREDICTOR_DBREADER"),
        ("PARAMETERS_BLOB_TYPE", "PARAMETERS_BLOB_TYPE"), ("INPUTS_BLOB_TYPE", "INPUTS_BLOB_TYPE"),
        ("OUTPUTS_BLOB_TYPE", "OUTPUTS_BLOB_TYPE"), ("GLOBAL_INIT_NET_TYPE", "GLOBAL_INIT_NET_TYPE"),
        ("PREDICT_INIT_NET_TYPE", "PREDICT_INIT_NET_TYPE"), ("PREDICT_NET_TYPE", "PREDICT_NET_TYPE"),
        ("SINGLE_PREDICTOR", "SINGLE_PREDICTOR"), ("MULTI_PREDICTOR", "MULTI_PREDICTOR"),
        ("TRAIN_INIT_PLAN_TYPE", "TRAIN_INIT_PLAN_TYPE"), ("TRAIN_PLAN_TYPE", "TRAIN_PLAN_TYPE"),
        ("SHAPE_INFO_BLOB", "SHAPE_INFO_BLOB"), ("DEFERRED_BLOB_READER", "__DEFERRED_BLOB_READER__")], 1)],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="pycaffe2/metanet.proto", package="caffe2",
                                               syntax="proto2", dependency=[caffe2_pb2.DESCRIPTOR.name])
    for message, fields in _MESSAGES.items():
        described = proto.message_type.add(name=message)
        for name, number, label, kind, default in fields:
            field = described.field.add(name=name, number=number, label=label)
            if isinstance(kind, str):
                field.type, field.type_name = _MESSAGE, kind
            else:
                field.type = kind
            if default is not None:
                field.default_value = default
    return proto


def _classes() -> dict:
    pool = descriptor_pool.Default()
    try:
        described = pool.FindFileByName("pycaffe2/metanet.proto")
    except KeyError:
        described = pool.Add(_file())
    return {name: message_factory.GetMessageClass(described.message_types_by_name[name]) for name in _MESSAGES}


_CLASSES = _classes()
ModelInfo = _CLASSES["ModelInfo"]
BlobsMap = _CLASSES["BlobsMap"]
NetsMap = _CLASSES["NetsMap"]
PlansMap = _CLASSES["PlansMap"]
StringMap = _CLASSES["StringMap"]
MetaNetDef = _CLASSES["MetaNetDef"]
PredictorConsts = _CLASSES["PredictorConsts"]
