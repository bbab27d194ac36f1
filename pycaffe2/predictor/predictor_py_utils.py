"""The MetaNetDef helpers of Caffe2's predictor_py_utils: its maps are repeated
(key, value) pairs, read and added by key, and the nets an export holds are built here."""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2


def create_predict_net(predictor_export_meta) -> caffe2_pb2.NetDef:
    """The predict net's ops, with the export's inputs and parameters as its external
    inputs and the export's outputs as its external outputs."""
    meta = predictor_export_meta
    net = caffe2_pb2.NetDef(name=meta.predict_net.name or "predict")
    net.op.extend(meta.predict_net.op)
    net.external_input.extend(meta.inputs + meta.parameters)
    net.external_output.extend(meta.outputs)
    if meta.net_type is not None:
        net.type = meta.net_type
    if meta.num_workers is not None:
        net.num_workers = meta.num_workers
    return net


def create_predict_init_net(ws, predictor_export_meta) -> caffe2_pb2.NetDef:
    """Zero-filled inputs and outputs of the shapes the export gives, or else of the
    blobs' current shapes in `ws` (an executor Workspace), then the extra init net."""
    meta = predictor_export_meta
    net = caffe2_pb2.NetDef(name="predict-init")
    for blob in meta.inputs + meta.outputs:
        shape = meta.shapes.get(blob)
        if shape is None:
            if not ws.HasBlob(blob):
                raise PyCaffe2Error(f"predictor export: blob {blob} is not in the workspace and its "
                                    "shape is not in PredictorExportMeta.shapes")
            shape = ws.FetchBlob(blob).shape
        net.op.append(core.CreateOperator("ConstantFill", [], [blob], shape=list(shape), value=0.0))
    net.external_input.extend(meta.inputs + meta.outputs)
    if meta.extra_init_net:
        extra = meta.extra_init_net.Proto() if hasattr(meta.extra_init_net, "Proto") else meta.extra_init_net
        net.op.extend(extra.op)
        net.external_input.extend(n for n in extra.external_input if n not in net.external_input)
    return net


def get_comp_name(string: str, name: str) -> str:
    return f"{string}_{name}" if name else string


def _ProtoMapGet(field, key):
    """The value under `key` in a repeated (key, value) field, or None."""
    for entry in field:
        if entry.key == key:
            return entry.value
    return None


def GetPlan(meta_net_def, key):
    return _ProtoMapGet(meta_net_def.plans, key)


def GetNet(meta_net_def, key):
    return _ProtoMapGet(meta_net_def.nets, key)


GetPlanOriginal, GetNetOriginal = GetPlan, GetNet


def GetBlobs(meta_net_def, key) -> list:
    blobs = _ProtoMapGet(meta_net_def.blobs, key)
    return [] if blobs is None else list(blobs)


def GetApplicationSpecificInfo(meta_net_def, key):
    return _ProtoMapGet(meta_net_def.applicationSpecificInfo, key)


def AddBlobs(meta_net_def, blob_name, blob_def) -> None:
    blobs = _ProtoMapGet(meta_net_def.blobs, blob_name)
    if blobs is None:
        blobs = meta_net_def.blobs.add(key=blob_name).value
    blobs.extend(str(blob) for blob in blob_def)


def AddPlan(meta_net_def, plan_name, plan_def) -> None:
    meta_net_def.plans.add(key=plan_name, value=plan_def)


def AddNet(meta_net_def, net_name, net_def) -> None:
    meta_net_def.nets.add(key=net_name, value=net_def)


def AddModelIdArg(meta_net_def, net_def) -> None:
    """Copy the predict net's `model_id` argument, if it has one, to `net_def`."""
    model_id = next((arg for arg in meta_net_def.predict_net.arg if arg.name == "model_id"), None)
    if model_id is not None:
        net_def.arg.add().CopyFrom(model_id)
