"""IO family: CreateDB and TensorProtosDBInput read batches (wrapping around)
through nets; Save and Load round-trip blobs through minidb files with
Caffe2's naming args; Save is atomic; DBExists and Checkpoint; Print to stdout or a log file."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import db
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op


def make_net(name, ops, net_type=""):
    return caffe2_pb2.NetDef(name=name, type=net_type, op=[make_op(*op) for op in ops],
                             num_workers=2 if net_type else 0)


def run(workspace, name, ops):
    workspace.RunNetOnce(make_net(name, ops))


@pytest.fixture
def data_file(tmp_path):
    """A minidb of 5 examples: data [2, 3] float32 (= i + arange), label int32 (= i)."""
    data = np.stack([i + np.arange(6, dtype=np.float32).reshape(2, 3) for i in range(5)])
    np.savez(tmp_path / "d.npz", data=data, label=np.arange(5, dtype=np.int32))
    db.write_npz_to_minidb(str(tmp_path / "d.npz"), str(tmp_path / "d.minidb"))
    return str(tmp_path / "d.minidb"), data


def reader_workspace(path):
    workspace = Workspace()
    run(workspace, "init", [("CreateDB", [], ["reader"], {"db": path, "db_type": "minidb"})])
    return workspace


def test_batches_wrap_around_through_a_net(data_file):
    path, data = data_file
    workspace = reader_workspace(path)
    workspace.CreateNet(make_net("train", [
        ("TensorProtosDBInput", ["reader"], ["data", "label"], {"batch_size": 3})]))
    expected_labels = [[0, 1, 2], [3, 4, 0], [1, 2, 3], [4, 0, 1]]
    for labels in expected_labels:
        workspace.RunNet("train")
        assert workspace.FetchBlob("label").tolist() == labels
        assert workspace.FetchBlob("label").dtype == np.int32
        np.testing.assert_array_equal(workspace.FetchBlob("data"), data[labels])


def test_batch_size_0_gives_one_record_without_batch_axis(data_file):
    path, data = data_file
    workspace = reader_workspace(path)
    run(workspace, "read", [("TensorProtosDBInput", ["reader"], ["data", "label"])])
    np.testing.assert_array_equal(workspace.FetchBlob("data"), data[0])
    assert workspace.FetchBlob("label").shape == ()


def test_two_input_ops_share_a_reader(data_file):
    path, _ = data_file
    workspace = reader_workspace(path)
    run(workspace, "read", [("TensorProtosDBInput", ["reader"], ["d1", "l1"], {"batch_size": 2}),
                            ("TensorProtosDBInput", ["reader"], ["d2", "l2"], {"batch_size": 2})])
    assert workspace.FetchBlob("l1").tolist() == [0, 1]
    assert workspace.FetchBlob("l2").tolist() == [2, 3]


def _records(path, records):
    """A minidb of (key, TensorProtos of arrays) records."""
    with db.create_db("minidb", path, db.Mode.new) as out:
        transaction = out.new_transaction()
        for key, value in records:
            transaction.put(key, value)
        transaction.commit()
    return path


def _protos(*arrays):
    from pycaffe2.tensor_proto import array_to_tensor
    return caffe2_pb2.TensorProtos(protos=[array_to_tensor(a) for a in arrays]).SerializeToString()


def _batches(path, args, runs, monkeypatch, kept):
    """(data, label) of each run of TensorProtosDBInput, or the error message, with the records
    kept in memory or read record by record."""
    monkeypatch.setattr(db, "KEPT_BYTES", 64 << 20 if kept else 0)
    workspace = Workspace()
    run(workspace, "init", [("CreateDB", [], ["reader"], {"db": path, "db_type": "minidb", **args.pop("db", {})})])
    workspace.CreateNet(make_net("read", [("TensorProtosDBInput", ["reader"], ["data", "label"], args)]))
    seen = []
    for _ in range(runs):
        try:
            workspace.RunNet("read")
            seen.append((workspace.FetchBlob("data").tolist(), workspace.FetchBlob("label").tolist()))
        except OpFailure as exc:
            seen.append(str(exc))
    return seen


@pytest.mark.parametrize("args", [{"batch_size": 3}, {"batch_size": 7}, {"batch_size": 0},
                                  {"batch_size": 2, "db": {"num_shards": 2, "shard_id": 1}},
                                  {"batch_size": 4, "db": {"num_shards": 3, "shard_id": 2}}])
def test_kept_records_read_as_record_by_record(data_file, args, monkeypatch):
    path, _ = data_file
    kept = _batches(path, dict(args, db=dict(args.get("db", {}))), 6, monkeypatch, kept=True)
    assert kept == _batches(path, dict(args, db=dict(args.get("db", {}))), 6, monkeypatch, kept=False)


def test_a_faulty_or_odd_record_fails_the_same_batch_kept_or_not(tmp_path, monkeypatch):
    records = [(f"{i:02d}", _protos(np.full((2,), i, np.float32), np.int32(i))) for i in range(6)]
    records[3] = ("03", b"not a TensorProtos")
    records[5] = ("05", _protos(np.zeros((3,), np.float32), np.int32(5)))  # another shape
    path = _records(str(tmp_path / "odd.minidb"), records)
    kept = _batches(path, {"batch_size": 2}, 6, monkeypatch, kept=True)
    assert kept == _batches(path, {"batch_size": 2}, 6, monkeypatch, kept=False)
    assert isinstance(kept[1], str) and "record '03'" in kept[1]  # records 2 and 3
    assert "differs between the records of a batch" in kept[2]  # records 4 and 5


def test_kept_batches_are_fresh_arrays(data_file):
    path, data = data_file
    workspace = reader_workspace(path)
    workspace.CreateNet(make_net("read", [("TensorProtosDBInput", ["reader"], ["data", "label"],
                                           {"batch_size": 5})]))
    workspace.RunNet("read")
    workspace.FetchBlob("data")[...] = -1  # an op writing in place must not reach the next epoch
    workspace.RunNet("read")
    np.testing.assert_array_equal(workspace.FetchBlob("data"), data)


def test_record_with_wrong_tensor_count(data_file):
    path, _ = data_file
    workspace = reader_workspace(path)
    with pytest.raises(OpFailure, match="holds 2 tensors, but the op has 3 outputs"):
        run(workspace, "read", [("TensorProtosDBInput", ["reader"], ["a", "b", "c"])])


def test_input_must_be_a_reader():
    workspace = Workspace()
    workspace.FeedBlob("x", np.zeros(2))
    with pytest.raises(OpFailure, match="must be a DB reader made by CreateDB"):
        run(workspace, "read", [("TensorProtosDBInput", ["x"], ["a"])])


def test_create_db_on_a_missing_file(tmp_path):
    with pytest.raises(OpFailure, match="cannot open minidb"):
        reader_workspace(str(tmp_path / "missing.minidb"))


BLOBS = {"w": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
         "it": np.array([123456789012], dtype=np.int64),
         "names": np.array([b"alpha", b"", b"\xffraw"], dtype=object),
         "flags": np.array([True, False]), "note": b"a byte string"}


def feed(workspace, blobs):
    for name, value in blobs.items():
        workspace.FeedBlob(name, value)


def assert_same(got, expected):
    if isinstance(expected, bytes):
        assert got == expected
    else:
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("net_type", ["", "dag"])
def test_save_then_load_round_trip(tmp_path, net_type):
    path = str(tmp_path / "ck.minidb")
    workspace = Workspace()
    feed(workspace, BLOBS)
    names = list(BLOBS)
    workspace.CreateNet(make_net("save", [("Save", names, [], {"db": path, "db_type": "minidb",
                                                                "absolute_path": 1})], net_type))
    workspace.RunNet("save")
    fresh = Workspace()
    run(fresh, "load", [("Load", [], names, {"db": path, "db_type": "minidb", "absolute_path": 1})])
    for name, value in BLOBS.items():
        assert_same(fresh.FetchBlob(name), value)


def test_relative_path_is_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workspace = Workspace()
    feed(workspace, {"w": BLOBS["w"]})
    run(workspace, "save", [("Save", ["w"], [], {"db": "rel.minidb", "db_type": "minidb"})])
    assert db.blob_names(str(tmp_path / "rel.minidb")) == ["w"]
    run(workspace, "load", [("Load", [], ["w2"], {"db": "rel.minidb", "db_type": "minidb",
                                                 "source_blob_names": ["w"]})])
    assert_same(workspace.FetchBlob("w2"), BLOBS["w"])


def test_absolute_db_path_needs_absolute_path():
    workspace = Workspace()
    workspace.FeedBlob("w", np.zeros(1))
    with pytest.raises(NetError, match="absolute path: pass absolute_path=1"):
        run(workspace, "save", [("Save", ["w"], [], {"db": "/tmp/x.minidb", "db_type": "minidb"})])


def test_blob_name_overrides_and_prefixes(tmp_path):
    path = str(tmp_path / "names.minidb")
    args = {"db": path, "db_type": "minidb", "absolute_path": 1}
    workspace = Workspace()
    feed(workspace, {"gpu_0/w": BLOBS["w"], "gpu_0/b": BLOBS["it"]})
    run(workspace, "save", [("Save", ["gpu_0/w", "gpu_0/b"], [], {**args, "blob_name_overrides": ["W", "B"]})])
    assert db.blob_names(path) == ["W", "B"]
    run(workspace, "save", [("Save", ["gpu_0/w", "gpu_0/b"], [], {**args, "strip_prefix": "gpu_0/"})])
    assert db.blob_names(path) == ["w", "b"]
    run(workspace, "load", [("Load", [], ["gpu_1/b"], {**args, "add_prefix": "gpu_1/"})])
    assert_same(workspace.FetchBlob("gpu_1/b"), BLOBS["it"])


def test_override_count_must_match():
    workspace = Workspace()
    workspace.FeedBlob("w", np.zeros(1))
    with pytest.raises(NetError, match="2 blob_name_overrides for 1 inputs"):
        run(workspace, "save", [("Save", ["w"], [], {"db": "x", "db_type": "minidb",
                                                     "blob_name_overrides": ["a", "b"]})])


def test_failing_save_leaves_the_existing_file(tmp_path, data_file):
    path = str(tmp_path / "ck.minidb")
    db.save_blobs(path, {"w": BLOBS["w"]})
    before = Path(path).read_bytes()
    workspace = reader_workspace(data_file[0])
    workspace.FeedBlob("w", np.ones(3, dtype=np.float32))
    with pytest.raises(OpFailure, match="blob 'reader' holds a DBReader, which cannot be saved"):
        run(workspace, "save", [("Save", ["w", "reader"], [], {"db": path, "db_type": "minidb",
                                                              "absolute_path": 1})])
    assert Path(path).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.minidb", "d.minidb", "d.npz"]


def test_big_tensor_is_chunked_and_reassembled(tmp_path):
    path = str(tmp_path / "big.minidb")
    value = np.random.default_rng(0).standard_normal((10, 7)).astype(np.float32)
    workspace = Workspace()
    workspace.FeedBlob("big", value)
    run(workspace, "save", [("Save", ["big"], [], {"db": path, "db_type": "minidb",
                                                  "absolute_path": 1, "chunk_size": 16})])
    keys = [key for key, _ in db.create_db("minidb", path, db.Mode.read).new_cursor()]
    assert keys == [f"big#%{k}" for k in range(5)]
    run(workspace, "load", [("Load", [], ["back"], {"db": path, "db_type": "minidb", "absolute_path": 1,
                                                   "source_blob_names": ["big"]})])
    np.testing.assert_array_equal(workspace.FetchBlob("back"), value)


def test_load_errors(tmp_path):
    path = str(tmp_path / "ck.minidb")
    db.save_blobs(path, {"w": BLOBS["w"], "b": BLOBS["it"]})
    args = {"db": path, "db_type": "minidb", "absolute_path": 1}
    workspace = Workspace()
    with pytest.raises(OpFailure, match="expected to load 2 blobs, got 1 only: nope not in"):
        run(workspace, "load", [("Load", [], ["w", "nope"], args)])
    assert not workspace.HasBlob("w")  # a failing op writes nothing
    with pytest.raises(OpFailure, match="also holds b"):
        run(workspace, "load", [("Load", [], ["w"], {**args, "load_all": 1})])
    run(workspace, "load", [("Load", [], ["w", "b"], {**args, "load_all": 1})])
    assert_same(workspace.FetchBlob("b"), BLOBS["it"])


@pytest.mark.parametrize("net_type", ["", "dag"])
def test_load_all_without_outputs_loads_every_blob_by_its_name(tmp_path, net_type):
    """Caffe2's output-less load_all: the file names the blobs (prefixes applied), and
    later ops of the net read them."""
    first, second = str(tmp_path / "a.minidb"), str(tmp_path / "b.minidb")
    db.save_blobs(first, {"w": BLOBS["w"]})
    db.save_blobs(second, {"b": BLOBS["it"]})
    workspace = Workspace()
    workspace.RunNetOnce(make_net("load", [
        ("Load", [], [], {"dbs": [first, second], "db_type": "minidb", "absolute_path": 1,
                          "load_all": 1, "add_prefix": "gpu_0/"}),
        ("Copy", ["gpu_0/w"], ["w_copy"])], net_type))
    assert sorted(workspace.Blobs()) == ["gpu_0/b", "gpu_0/w", "w_copy"]
    assert_same(workspace.FetchBlob("gpu_0/b"), BLOBS["it"])
    assert_same(workspace.FetchBlob("w_copy"), BLOBS["w"])


def test_load_all_without_outputs_fails_whole(tmp_path):
    first, second = str(tmp_path / "a.minidb"), str(tmp_path / "b.minidb")
    db.save_blobs(first, {"w": BLOBS["w"], "b": BLOBS["it"]})
    db.save_blobs(second, {"w": BLOBS["w"]})
    workspace = Workspace()
    with pytest.raises(OpFailure, match="blob 'w' is in both"):  # nothing written, b neither
        run(workspace, "load", [("Load", [], [], {"dbs": [first, second], "db_type": "minidb",
                                                  "absolute_path": 1, "load_all": 1})])
    assert workspace.Blobs() == []


def test_load_from_several_dbs_and_from_a_reader(tmp_path):
    first, second = str(tmp_path / "a.minidb"), str(tmp_path / "b.minidb")
    db.save_blobs(first, {"w": BLOBS["w"]})
    db.save_blobs(second, {"b": BLOBS["it"]})
    workspace = Workspace()
    run(workspace, "load", [("Load", [], ["b", "w"], {"dbs": [first, second], "db_type": "minidb",
                                                     "absolute_path": 1})])
    assert_same(workspace.FetchBlob("w"), BLOBS["w"])
    run(workspace, "read", [("CreateDB", [], ["r"], {"db": second, "db_type": "minidb"}),
                            ("Load", ["r"], ["b2"], {"source_blob_names": ["b"]})])
    assert_same(workspace.FetchBlob("b2"), BLOBS["it"])


def test_db_exists(tmp_path):
    db.save_blobs(str(tmp_path / "there.minidb"), {"w": BLOBS["w"]})
    workspace = Workspace()
    for name, expected in (("there", True), ("absent", False)):
        run(workspace, "exists", [("DBExists", [], [name], {"db_name": str(tmp_path / f"{name}.minidb"),
                                                           "db_type": "minidb", "absolute_path": 1})])
        assert workspace.FetchBlob(name).shape == () and bool(workspace.FetchBlob(name)) is expected


def test_checkpoint_every_n_iterations(tmp_path):
    workspace = Workspace()
    workspace.FeedBlob("ITER", np.array([0], dtype=np.int64))
    workspace.FeedBlob("w", BLOBS["w"])
    pattern = str(tmp_path / "ck_%03d.minidb")
    workspace.CreateNet(make_net("train", [
        ("Iter", ["ITER"], ["ITER"]),
        ("Checkpoint", ["ITER", "w"], [], {"db": pattern, "db_type": "minidb", "every": 2,
                                           "absolute_path": 1})]))
    workspace.RunNet("train", num_iter=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck_002.minidb", "ck_004.minidb"]
    saved = db.load_blobs(str(tmp_path / "ck_004.minidb"))
    assert saved["ITER"].tolist() == [4] and saved["w"].tolist() == BLOBS["w"].tolist()


def print_net(args):
    return caffe2_pb2.NetDef(name="taps", op=[make_op("Print", ["x"], [], args)])


def test_print_shows_name_type_dims_and_values_every_n_runs(capsys):
    workspace = Workspace()
    workspace.FeedBlob("x", np.arange(6, dtype=np.float32).reshape(2, 3))
    workspace.CreateNet(print_net({"every_n": 2, "limit": 4}))
    for _ in range(3):
        workspace.RunNet("taps")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Tensor x of type float32. Dims: (2,3,): 0.0,1.0,2.0,3.0"] * 2


def test_print_to_file_appends_to_a_log_named_after_the_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workspace = Workspace()
    workspace.FeedBlob("x", np.array([7], np.int64))
    workspace.RunNetOnce(print_net({"to_file": 1}))
    workspace.RunNetOnce(print_net({"to_file": 1}))
    assert (tmp_path / "x.log").read_text().splitlines() == ["Tensor x of type int64. Dims: (1,): 7"] * 2


def test_print_refuses_every_n_below_one():
    workspace = Workspace()
    workspace.FeedBlob("x", np.zeros(1, np.float32))
    with pytest.raises(NetError, match="every_n"):
        workspace.CreateNet(print_net({"every_n": 0}))
