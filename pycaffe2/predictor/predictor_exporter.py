"""Caffe2's predictor_exporter: a trained net saved for inference in one db.

`save_to_db` writes the parameters and, under the key "!!META_NET_DEF", a
MetaNetDef holding three nets (Caffe2's names, suffixed with the export's name
when it has one): GLOBAL_INIT_NET_TYPE loads the parameters from the db reader
blob "!!PREDICTOR_DBREADER", PREDICT_INIT_NET_TYPE zero-fills the inputs and
outputs, PREDICT_NET_TYPE is the net itself; and the lists of parameters, inputs
and outputs (PARAMETERS_BLOB_TYPE, INPUTS_BLOB_TYPE, OUTPUTS_BLOB_TYPE).
`prepare_prediction_net` reads it back into the current workspace, ready to run.
"""
from __future__ import annotations

import collections

from pycaffe2 import core, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor.net import compile_net
from pycaffe2.predictor import predictor_py_utils as utils
from pycaffe2.predictor import serde
from pycaffe2.predictor.predictor_constants import predictor_constants as pc
from pycaffe2.proto import caffe2_pb2, metanet_pb2
from pycaffe2.proto.checks import message_problem

_FIELDS = "predict_net, parameters, inputs, outputs, shapes, name, extra_init_net, net_type, num_workers"


class PredictorExportMeta(collections.namedtuple("PredictorExportMeta", _FIELDS)):
    """What to export: the predict net (core.Net, NetDef or PlanDef), its parameters,
    inputs and outputs (names or BlobReferences), optional input/output shapes, a
    name telling several exported nets apart, an extra init net, and the net's
    type and worker count."""

    def __new__(cls, predict_net, parameters, inputs, outputs, shapes=None, name="",
                extra_init_net=None, net_type=None, num_workers=None):
        inputs, outputs, parameters = ([str(b) for b in blobs] for blobs in (inputs, outputs, parameters))
        if len(set(inputs)) != len(inputs):
            raise PyCaffe2Error(f"PredictorExportMeta: the inputs must be unique: {inputs}")
        for what, blobs in (("inputs", inputs), ("outputs", outputs)):
            common = sorted(set(parameters) & set(blobs))
            if common:
                raise PyCaffe2Error(f"PredictorExportMeta: parameters and {what} must be disjoint; "
                                    f"both hold {', '.join(common)}")
        if hasattr(predict_net, "Proto"):
            predict_net = predict_net.Proto()
        if not isinstance(predict_net, (caffe2_pb2.NetDef, caffe2_pb2.PlanDef)):
            raise PyCaffe2Error("PredictorExportMeta: predict_net must be a core.Net, NetDef or PlanDef, "
                                f"not {type(predict_net).__name__}")
        return super().__new__(cls, predict_net, parameters, inputs, outputs, dict(shapes or {}), name,
                               extra_init_net, net_type, num_workers)

    def inputs_name(self) -> str:
        return utils.get_comp_name(pc.INPUTS_BLOB_TYPE, self.name)

    def outputs_name(self) -> str:
        return utils.get_comp_name(pc.OUTPUTS_BLOB_TYPE, self.name)

    def parameters_name(self) -> str:
        return utils.get_comp_name(pc.PARAMETERS_BLOB_TYPE, self.name)

    def global_init_name(self) -> str:
        return utils.get_comp_name(pc.GLOBAL_INIT_NET_TYPE, self.name)

    def predict_init_name(self) -> str:
        return utils.get_comp_name(pc.PREDICT_INIT_NET_TYPE, self.name)

    def predict_net_name(self) -> str:
        return utils.get_comp_name(pc.PREDICT_NET_TYPE, self.name)

    def train_init_plan_name(self) -> str:
        return utils.get_comp_name(pc.TRAIN_INIT_PLAN_TYPE, self.name)

    def train_plan_name(self) -> str:
        return utils.get_comp_name(pc.TRAIN_PLAN_TYPE, self.name)


def get_predictor_exporter_helper(submodelNetName: str) -> PredictorExportMeta:
    """An empty export named `submodelNetName`, for its *_name() methods."""
    return PredictorExportMeta(core.Net(submodelNetName), [], [], [], name=submodelNetName)


def _global_init_net(meta: PredictorExportMeta) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="global-init")
    net.op.append(core.CreateOperator("Load", [pc.PREDICTOR_DBREADER], meta.parameters))
    net.external_input.append(pc.PREDICTOR_DBREADER)
    net.external_output.extend(meta.parameters)
    utils.AddModelIdArg(meta, net)
    return net


def get_meta_net_def(predictor_export_meta, ws=None):
    """The MetaNetDef of an export; shapes not in the export come from `ws`'s blobs
    (default: the current workspace)."""
    meta = predictor_export_meta
    ws = getattr(ws, "workspace", ws) or workspace.C()
    meta_net_def = metanet_pb2.MetaNetDef()
    utils.AddNet(meta_net_def, meta.predict_init_name(), utils.create_predict_init_net(ws, meta))
    utils.AddNet(meta_net_def, meta.global_init_name(), _global_init_net(meta))
    utils.AddNet(meta_net_def, meta.predict_net_name(), utils.create_predict_net(meta))
    utils.AddBlobs(meta_net_def, meta.parameters_name(), meta.parameters)
    utils.AddBlobs(meta_net_def, meta.inputs_name(), meta.inputs)
    utils.AddBlobs(meta_net_def, meta.outputs_name(), meta.outputs)
    return meta_net_def


def set_model_info(meta_net_def, project_str: str, model_class_str: str, version: str) -> None:
    meta_net_def.modelInfo.project = project_str
    meta_net_def.modelInfo.modelClass = model_class_str
    meta_net_def.modelInfo.version = version


def save_to_db(db_type: str, db_destination: str, predictor_export_meta) -> None:
    """Save the MetaNetDef, then the parameters (from the current workspace), to one db."""
    meta_net_def = get_meta_net_def(predictor_export_meta)
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.PROTO_CPU)):
        workspace.FeedBlob(pc.META_NET_DEF, serde.serialize_protobuf_struct(meta_net_def))
    blobs = [pc.META_NET_DEF] + predictor_export_meta.parameters
    workspace.RunOperatorOnce(core.CreateOperator(
        "Save", blobs, [], absolute_path=True, db=str(db_destination), db_type=db_type))


def load_from_db(filename: str, db_type: str, device_option=None):
    """The MetaNetDef of an exported db. Leaves the db reader in the current workspace
    under "!!PREDICTOR_DBREADER" for the global init net; `device_option` (default:
    the current device scope) is set on every op of its nets."""
    workspace.RunOperatorOnce(core.CreateOperator(
        "CreateDB", [], [pc.PREDICTOR_DBREADER], db=str(filename), db_type=db_type))
    workspace.RunOperatorOnce(core.CreateOperator("Load", [pc.PREDICTOR_DBREADER], [pc.META_NET_DEF]))
    blob = workspace.FetchBlob(pc.META_NET_DEF)
    if not isinstance(blob, bytes):
        raise PyCaffe2Error(f"{filename}: the {pc.META_NET_DEF} record is not a string blob; "
                            "is this an exported predictor db?")
    try:
        meta_net_def = serde.deserialize_protobuf_struct(blob, metanet_pb2.MetaNetDef)
    except PyCaffe2Error as exc:
        raise PyCaffe2Error(f"{filename}: the {pc.META_NET_DEF} record: {exc}") from None
    problem = message_problem(meta_net_def)
    if problem:
        raise PyCaffe2Error(f"{filename}: the {pc.META_NET_DEF} record: {problem}")
    device_option = device_option if device_option is not None else core.CurrentDeviceScope()
    if device_option is not None:
        for entry in meta_net_def.nets:
            for op in entry.value.op:
                op.device_option.CopyFrom(device_option)
    return meta_net_def


def _net(meta_net_def, key: str, filename) -> caffe2_pb2.NetDef:
    net = utils.GetNet(meta_net_def, key)
    if net is None:
        raise PyCaffe2Error(f"{filename}: the exported MetaNetDef has no net {key}")
    return net


def prepare_prediction_net(filename, db_type: str, device_option=None) -> core.Net:
    """Load an exported db into the current workspace (parameters loaded, inputs
    zero-filled, the predict net created) and return the predict net to run."""
    meta_net_def = load_from_db(filename, db_type, device_option)
    # Every net found and checked before any runs, so a bad one loads no parameters.
    nets = [_net(meta_net_def, key, filename)
            for key in (pc.GLOBAL_INIT_NET_TYPE, pc.PREDICT_INIT_NET_TYPE, pc.PREDICT_NET_TYPE)]
    for net in nets:
        try:
            compile_net(net)
        except PyCaffe2Error as exc:
            raise PyCaffe2Error(f"{filename}: the exported net '{net.name}' is not valid: {exc}") from None
    predict_net = core.Net(nets[2])
    try:
        workspace.RunNetOnce(nets[0])
        workspace.RunNetOnce(nets[1])
        workspace.CreateNet(predict_net)
    except PyCaffe2Error as exc:
        raise PyCaffe2Error(f"{filename}: {exc}") from None
    return predict_net
