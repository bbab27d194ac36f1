"""Hostile input through the lmdb/leveldb folders, exported predictor dbs, the
models folder and memonger: each ends in a PyCaffe2Error naming what is wrong,
never a traceback, a hang, a write outside the DB, or a wrong net."""
import os

import numpy as np
import pytest

from pycaffe2 import core, db, memonger, models, workspace
from pycaffe2.errors import DBError, PyCaffe2Error
from pycaffe2.predictor import predictor_exporter
from pycaffe2.predictor.predictor_constants import predictor_constants as pc
from pycaffe2.proto import caffe2_pb2, metanet_pb2

lmdb = pytest.importorskip("lmdb")


def _lmdb(path, records):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
    env.close()
    return str(path)


def test_a_lock_file_link_is_refused_and_its_target_untouched(tmp_path):
    path = _lmdb(tmp_path / "d", [(b"a", b"b")])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.remove(os.path.join(path, "lock.mdb"))
    os.symlink(victim, os.path.join(path, "lock.mdb"))
    with pytest.raises(DBError, match="'lock.mdb' is a symlink"):
        db.describe_db(path, "lmdb")
    assert victim.read_text() == "precious\n"


def test_a_fifo_or_device_in_the_folder_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "data.mdb")
    with pytest.raises(DBError, match="'data.mdb' is not a regular file"):
        db.load_blobs(str(fifo), "lmdb")
    zero = tmp_path / "zero"
    zero.mkdir()
    os.symlink("/dev/zero", zero / "data.mdb")
    with pytest.raises(DBError, match="symlink"):
        db.DBReader("lmdb", str(zero))


def test_a_folder_that_is_no_db_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DBError, match=r"has no 'data.mdb', so it is not a lmdb DB"):
        db.describe_db(str(tmp_path), "lmdb")
    assert db.detect_db_type(str(tmp_path)) is None


@pytest.mark.parametrize("how", ["truncated", "cut_in_a_page", "cut_at_a_page", "zeros", "random"])
def test_a_damaged_data_file_is_refused(tmp_path, how):
    path = _lmdb(tmp_path / "d", [(b"%08d" % i, b"v" * 100) for i in range(50)])
    data_file = tmp_path / "d" / "data.mdb"
    data = data_file.read_bytes()
    # A cut inside the mapped pages was a SIGBUS that killed the process.
    damaged = {"truncated": data[:100], "cut_in_a_page": data[:4096 + 2308], "cut_at_a_page": data[:3 * 4096],
               "zeros": bytes(len(data)),
               "random": np.random.default_rng(0).bytes(len(data))}[how]
    data_file.write_bytes(damaged)
    with pytest.raises(DBError, match=path):
        db.describe_db(path, "lmdb")


def test_records_that_are_not_tensors_or_claim_huge_dims(tmp_path):
    garbage = _lmdb(tmp_path / "g", [(b"\xff\xfe", b"\xff\xff not a message")])
    with pytest.raises(DBError, match=r"record 0 \(\\xff\\xfe\): not a TensorProtos"):
        db.describe_db(garbage, "lmdb")
    huge = caffe2_pb2.TensorProtos(protos=[caffe2_pb2.TensorProto(dims=[10**9, 10**9], data_type=1)])
    path = _lmdb(tmp_path / "h", [(b"0", huge.SerializeToString())])
    workspace.ResetWorkspace()
    workspace.RunOperatorOnce(core.CreateOperator("CreateDB", [], ["r"], db=path, db_type="lmdb"))
    with pytest.raises(PyCaffe2Error, match="do not fill dims"):
        workspace.RunOperatorOnce(core.CreateOperator("TensorProtosDBInput", ["r"], ["x"], batch_size=1))
    blob = caffe2_pb2.BlobProto(name="w", type="Tensor",
                                tensor=caffe2_pb2.TensorProto(dims=[10**12], data_type=1))
    path = _lmdb(tmp_path / "b", [(b"w#%0", blob.SerializeToString())])
    with pytest.raises(DBError, match="claim 1,000,000,000,000 elements"):
        db.load_blobs(path, "lmdb")


def test_load_of_a_bad_record_leaves_the_workspace_as_it_was(tmp_path):
    path = str(tmp_path / "two.lmdb")
    records = db.serialize_blob("a", np.ones(3, np.float32)) + [("b#%0", b"\xff\xff")]
    with db.create_db("lmdb", path, db.Mode.new) as out:
        txn = out.new_transaction()
        for key, value in records:
            txn.put(key, value)
    workspace.ResetWorkspace()
    workspace.FeedBlob("a", np.zeros(2, np.float32))
    with pytest.raises(PyCaffe2Error, match="not a BlobProto"):
        workspace.RunOperatorOnce(core.CreateOperator("Load", [], ["a", "b"], db=path, db_type="lmdb",
                                                      absolute_path=1))
    assert workspace.FetchBlob("a").tolist() == [0, 0] and not workspace.HasBlob("b")


# ---------------------------------------------------------------- exported predictor dbs

def _exported(tmp_path, meta):
    path = str(tmp_path / "export.minidb")
    db.save_blobs(path, {pc.META_NET_DEF: meta})
    return path


def _meta(**nets):
    meta = metanet_pb2.MetaNetDef()
    for key, net in nets.items():
        entry = meta.nets.add()
        entry.key = key
        entry.value.CopyFrom(net)
    return meta.SerializeToString()


def test_a_garbage_meta_net_def_names_the_file(tmp_path):
    path = _exported(tmp_path, b"\xff\xfe\x00 garbage")
    workspace.ResetWorkspace()
    with pytest.raises(PyCaffe2Error, match=f"{path}: the !!META_NET_DEF record: not a serialized"):
        predictor_exporter.prepare_prediction_net(path, "minidb")


def test_an_invalid_exported_net_loads_nothing(tmp_path):
    load = caffe2_pb2.NetDef(name="init")
    load.op.add(type="ConstantFill", output=["w"]).arg.add(name="shape", ints=[2])
    bad = caffe2_pb2.NetDef(name="predict")
    bad.op.add(type="NoSuchOp", input=["w"], output=["y"])
    path = _exported(tmp_path, _meta(**{pc.GLOBAL_INIT_NET_TYPE: load, pc.PREDICT_INIT_NET_TYPE: load,
                                         pc.PREDICT_NET_TYPE: bad}))
    workspace.ResetWorkspace()
    with pytest.raises(PyCaffe2Error, match="(?s)exported net .predict. is not valid.*NoSuchOp"):
        predictor_exporter.prepare_prediction_net(path, "minidb")
    assert not workspace.HasBlob("w")  # the init nets did not run


def test_a_missing_net_is_named(tmp_path):
    path = _exported(tmp_path, _meta())
    workspace.ResetWorkspace()
    with pytest.raises(PyCaffe2Error, match="has no net GLOBAL_INIT_NET_TYPE"):
        predictor_exporter.prepare_prediction_net(path, "minidb")


# ---------------------------------------------------------------- the models folder

@pytest.mark.parametrize("name", ["../outside", "/abs/outside", "a/b", ".hidden", ""])
def test_model_names_never_leave_the_models_folder(tmp_path, monkeypatch, name):
    monkeypatch.setenv("PYCAFFE2_MODELS", str(tmp_path / "models"))
    with pytest.raises(PyCaffe2Error, match="is not a model name"):
        models.load_net_file(name, "init_net")


def test_a_bad_model_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCAFFE2_MODELS", str(tmp_path))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "init_net.pb").write_bytes(b"\xff\xff\xff\xff")
    os.mkfifo(tmp_path / "m" / "predict_net.pb")
    with pytest.raises(PyCaffe2Error, match="init_net.pb is not a NetDef"):
        models.load_net_file("m", "init_net")
    with pytest.raises(PyCaffe2Error, match="predict_net.pb: is not a regular file"):
        models.load_net_file("m", "predict_net")


# ---------------------------------------------------------------- memonger

def _net(ops, external_output):
    net = caffe2_pb2.NetDef(name="n", external_input=["x"], external_output=external_output)
    for op_type, inputs, outputs in ops:
        net.op.add(type=op_type, input=inputs, output=outputs)
    return net


def test_memonger_never_reuses_a_name_the_net_has():
    net = _net([("Relu", ["x"], ["a"]), ("Relu", ["a"], ["__m0_shared"]), ("Relu", ["__m0_shared"], ["c"]),
                ("Relu", ["c"], ["d"]), ("Add", ["d", "__m0_shared"], ["out"])], ["out"])
    optimized = memonger.optimize_inference_for_dag(net, ["x"])
    assert memonger.verify_graph_equality(net, optimized)


def test_memonger_keeps_blobs_that_args_name_and_refuses_an_unreadable_step_net():
    net = _net([("Relu", ["x"], ["a"]), ("Relu", ["a"], ["b"]), ("Relu", ["b"], ["c"]),
                ("RecurrentNetwork", ["c"], ["d"])], ["d"])
    net.op[3].arg.add(name="alias_src", strings=[b"a"])
    optimized = memonger.optimize_inference_for_dag(net, ["x"])
    assert optimized.op[0].output == ["a"]
    net.op[3].arg.add(name="step_net", s=b"\xff\xfe\x80 garbage")
    with pytest.raises(PyCaffe2Error, match="arg 'step_net' is not a NetDef in text form"):
        memonger.optimize_inference_for_dag(net, ["x"])
