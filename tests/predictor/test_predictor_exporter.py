"""predictor_exporter: a net saved with its parameters to one minidb, the MetaNetDef
under Caffe2's keys, and loaded back into a fresh workspace where it predicts what
the direct run did."""
import numpy as np
import pytest

from pycaffe2 import db, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.predictor import predictor_exporter as pe
from pycaffe2.predictor import predictor_py_utils as utils
from pycaffe2.predictor_constants import predictor_constants as pc
from pycaffe2.proto import caffe2_pb2, metanet_pb2


def export_meta(model, **kwargs):
    return pe.PredictorExportMeta(predict_net=model.net.Proto(), parameters=model.params,
                                  inputs=["data"], outputs=["softmax"], **kwargs)


def test_constants_are_caffe2s():
    assert (pc.META_NET_DEF, pc.PREDICTOR_DBREADER) == ("!!META_NET_DEF", "!!PREDICTOR_DBREADER")
    assert pc.PREDICT_NET_TYPE == "PREDICT_NET_TYPE" and pc.DEFERRED_BLOB_READER == "__DEFERRED_BLOB_READER__"


def test_save_writes_meta_net_def_and_parameters(trained, tmp_path):
    model, _, _ = trained
    path = str(tmp_path / "model.minidb")
    pe.save_to_db("minidb", path, export_meta(model))
    assert db.blob_names(path) == [pc.META_NET_DEF] + [str(p) for p in model.params]
    meta = metanet_pb2.MetaNetDef.FromString(db.load_blobs(path)[pc.META_NET_DEF])
    assert {entry.key for entry in meta.nets} == {"GLOBAL_INIT_NET_TYPE", "PREDICT_INIT_NET_TYPE",
                                                  "PREDICT_NET_TYPE"}
    assert utils.GetBlobs(meta, "INPUTS_BLOB_TYPE") == ["data"]
    assert utils.GetBlobs(meta, "PARAMETERS_BLOB_TYPE") == [str(p) for p in model.params]
    load, = utils.GetNet(meta, "GLOBAL_INIT_NET_TYPE").op
    assert (load.type, list(load.input)) == ("Load", [pc.PREDICTOR_DBREADER])
    zero_fills = utils.GetNet(meta, "PREDICT_INIT_NET_TYPE").op
    assert [(op.type, op.output[0]) for op in zero_fills] == [("ConstantFill", "data"),
                                                             ("ConstantFill", "softmax")]


def test_prepare_prediction_net_predicts_like_the_direct_run(trained, tmp_path):
    model, data, expected = trained
    path = str(tmp_path / "model.minidb")
    pe.save_to_db("minidb", path, export_meta(model))
    workspace.ResetWorkspace()
    predict_net = pe.prepare_prediction_net(path, "minidb")
    np.testing.assert_array_equal(workspace.FetchBlob("data"), np.zeros_like(data))  # zero-filled
    workspace.FeedBlob("data", data)
    workspace.RunNet(predict_net.Proto().name)
    np.testing.assert_allclose(workspace.FetchBlob("softmax"), expected, rtol=1e-6)


def test_named_export_and_device_option(trained, tmp_path):
    model, _, _ = trained
    path = str(tmp_path / "named.minidb")
    meta = export_meta(model, name="clf", shapes={"data": (1, 2, 8, 8), "softmax": (1, 5)})
    assert meta.predict_net_name() == "PREDICT_NET_TYPE_clf"
    pe.save_to_db("minidb", path, meta)
    workspace.ResetWorkspace()
    loaded = pe.load_from_db(path, "minidb", device_option=caffe2_pb2.DeviceOption(device_type=0))
    init = utils.GetNet(loaded, meta.predict_init_name())
    assert list(init.op[0].arg[0].ints) == [1, 2, 8, 8]
    assert all(op.HasField("device_option") for entry in loaded.nets for op in entry.value.op)


def test_bad_exports_are_refused(trained, tmp_path):
    model, _, _ = trained
    with pytest.raises(PyCaffe2Error, match="disjoint"):
        pe.PredictorExportMeta(model.net, model.params, ["data"], [model.params[0]])
    with pytest.raises(PyCaffe2Error, match="unique"):
        pe.PredictorExportMeta(model.net, [], ["data", "data"], ["softmax"])
    with pytest.raises(PyCaffe2Error, match="not in the workspace"):
        pe.save_to_db("minidb", str(tmp_path / "x.minidb"),
                      pe.PredictorExportMeta(model.net, model.params, ["nowhere"], ["softmax"]))
    plain = str(tmp_path / "plain.minidb")
    db.save_blobs(plain, {pc.META_NET_DEF: np.zeros(3, np.float32)})
    with pytest.raises(PyCaffe2Error, match="not a string blob"):
        pe.load_from_db(plain, "minidb")
