"""Caffe2's lmdb and leveldb DB types (pycaffe2.kvdb, the `db` extra): raw records,
cursors, transactions and modes; Save/Load, CreateDB/TensorProtosDBInput and the
helpers over them; `pycaffe2 db`; core.C.create_db; the error without the extra."""
import numpy as np
import pytest

from pycaffe2 import brew, core, db, kvdb, model_helper, workspace
from pycaffe2.cli import main
from pycaffe2.errors import NetError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.tensor_proto import array_to_tensor

TYPES = ["lmdb", "leveldb"]
lmdb = pytest.importorskip("lmdb")
plyvel = pytest.importorskip("plyvel")


def write(path, records, db_type, mode=db.Mode.new):
    with db.create_db(db_type, str(path), mode) as out:
        transaction = out.new_transaction()
        for key, value in records:
            transaction.put(key, value)
        transaction.commit()


def read_all(path, db_type):
    store = db.create_db(db_type, str(path), db.Mode.read)
    try:
        return list(store.new_cursor())
    finally:
        store.close()


def examples_db(path, db_type, count=10):
    """count records `%08d` of TensorProtos (float [2, 3] example, int32 label)."""
    data = np.arange(count * 6, dtype=np.float32).reshape(count, 2, 3)
    labels = np.arange(count, dtype=np.int32) % 3
    records = [(f"{i:08d}", caffe2_pb2.TensorProtos(protos=[array_to_tensor(data[i]), array_to_tensor(
        labels[i])]).SerializeToString()) for i in range(count)]
    write(path, records, db_type)
    return data, labels


@pytest.mark.parametrize("db_type", TYPES)
def test_records_round_trip_in_key_order(tmp_path, db_type):
    path = tmp_path / f"r.{db_type}"
    records = [(f"k{i:02d}", bytes([i]) * (i + 1)) for i in range(20)] + [("ünï", b"\x00x\xff")]
    write(path, reversed(records), db_type)
    assert path.is_dir()
    assert read_all(path, db_type) == sorted(records, key=lambda r: r[0].encode())


def test_lmdb_layout_is_a_plain_lmdb_environment(tmp_path):
    """What Caffe2's lmdb.cc reads: the records as key/value pairs of the unnamed database."""
    path = tmp_path / "plain.lmdb"
    write(path, [("a", b"1"), ("b", b"2")], "lmdb")
    with lmdb.open(str(path), readonly=True) as env, env.begin() as txn:
        assert list(txn.cursor()) == [(b"a", b"1"), (b"b", b"2")]
    # and one written by the lmdb package (as CIFAR10_Part1 writes its DBs) reads back here
    other = tmp_path / "other.lmdb"
    with lmdb.open(str(other), map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b"x", b"42")
    assert read_all(other, "lmdb") == [("x", b"42")]


def test_leveldb_layout_is_a_plain_leveldb(tmp_path):
    path = tmp_path / "plain.leveldb"
    write(path, [("a", b"1"), ("b", b"2")], "leveldb")
    handle = plyvel.DB(str(path))
    try:
        assert list(handle) == [(b"a", b"1"), (b"b", b"2")]
    finally:
        handle.close()


@pytest.mark.parametrize("db_type", TYPES)
def test_cursor_seek_next_and_end(tmp_path, db_type):
    path = tmp_path / f"c.{db_type}"
    write(path, [("a", b"1"), ("c", b"3"), ("e", b"5")], db_type)
    store = db.create_db(db_type, str(path), db.Mode.read)
    cursor = store.new_cursor()
    assert cursor.supports_seek() and cursor.valid() and cursor.key() == "a"
    cursor.seek("b")  # the first key not below "b"
    assert (cursor.key(), cursor.value()) == ("c", b"3")
    cursor.next()
    cursor.next()
    assert not cursor.valid()
    with pytest.raises(db.DBError, match="past the last record"):
        cursor.key()
    cursor.seek_to_first()
    assert cursor.key() == "a"
    store.close()


@pytest.mark.parametrize("db_type", TYPES)
def test_transactions_modes_and_atomic_new(tmp_path, db_type):
    path = tmp_path / f"t.{db_type}"
    write(path, [("a", b"1")], db_type)
    write(path, [("b", b"2")], db_type, mode=db.Mode.write)  # write: adds to what is there
    assert read_all(path, db_type) == [("a", b"1"), ("b", b"2")]
    store = db.create_db(db_type, str(path), db.Mode.write)
    transaction = store.new_transaction()
    transaction.put("c", b"3")  # not committed: closing commits it, as Caffe2's destructor did
    store.close()
    assert [k for k, _ in read_all(path, db_type)] == ["a", "b", "c"]
    with pytest.raises(RuntimeError), db.create_db(db_type, str(path), db.Mode.new) as failing:
        failing.new_transaction().put("z", b"9")
        raise RuntimeError("a failure while writing")
    assert [k for k, _ in read_all(path, db_type)] == ["a", "b", "c"]  # untouched
    write(path, [("n", b"new")], db_type)  # new: replaces the DB
    assert read_all(path, db_type) == [("n", b"new")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary folders left


@pytest.mark.parametrize("db_type", TYPES)
def test_errors_name_the_db(tmp_path, db_type):
    with pytest.raises(db.DBError, match=f"cannot open {db_type} .*missing.*no such folder"):
        db.create_db(db_type, str(tmp_path / "missing"), db.Mode.read)
    (tmp_path / "file").write_bytes(b"not a folder")
    with pytest.raises(db.DBError, match="not a folder"):
        db.create_db(db_type, str(tmp_path / "file"), db.Mode.read)
    with pytest.raises(db.DBError, match=f"{db_type} .*no_parent.*No such file"):
        db.save_blobs(str(tmp_path / "no_parent" / "x"), {"a": b"1"}, db_type)
    store = db.create_db(db_type, str(tmp_path / "w"), db.Mode.new)
    with pytest.raises(db.DBError, match="opened for writing"):
        store.new_cursor()
    store.close()


def test_lmdb_key_too_long_is_a_db_error(tmp_path):
    with pytest.raises(db.DBError, match=r"lmdb .*long\.lmdb"):
        write(tmp_path / "long.lmdb", [("k" * 1000, b"v")], "lmdb")
    assert not (tmp_path / "long.lmdb").exists()


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(kvdb.PACKAGES, "lmdb", "pycaffe2_no_such_package")
    assert "pip install 'pycaffe2[db]'" in db.missing_extra("lmdb")
    assert db.missing_extra("leveldb") is None and db.missing_extra("minidb") is None
    with pytest.raises(db.DBError, match=r"needs the Python package .*pip install 'pycaffe2\[db\]'"):
        db.create_db("lmdb", str(tmp_path / "x"), db.Mode.new)
    ws = workspace.C.Workspace()  # a Save naming it is refused when its net is made, not later
    net = core.Net("saver")
    net.Save(["x"], [], db=str(tmp_path / "x"), db_type="lmdb", absolute_path=1)
    ws.create_blob("x").feed(np.zeros(2, np.float32))
    with pytest.raises(NetError, match=r"op 0 \(Save\): .*pip install 'pycaffe2\[db\]'"):
        ws.create_net(net)


@pytest.mark.parametrize("db_type", TYPES)
def test_save_and_load_blobs(tmp_path, db_type):
    blobs = {"w": np.arange(25, dtype=np.float32).reshape(5, 5), "ids": np.arange(7, dtype=np.int64),
             "s": b"bytes"}
    path = str(tmp_path / f"m.{db_type}")
    db.save_blobs(path, blobs, db_type, chunk_size=4)  # chunked: keys w#%0 ... w#%6, out of order
    loaded = db.load_blobs(path, db_type)
    assert sorted(loaded) == sorted(blobs)
    for name, value in blobs.items():
        np.testing.assert_array_equal(loaded[name], value) if name != "s" else None
    assert loaded["s"] == b"bytes" and loaded["w"].dtype == np.float32
    # through the ops, with a reader open on the same DB (both backends lock a folder per process)
    ws = workspace.C.Workspace()
    ws.run(core.CreateOperator("CreateDB", [], ["reader"], db=path, db_type=db_type))
    ws.run(core.CreateOperator("Load", ["reader"], ["w", "ids"]))
    np.testing.assert_array_equal(ws.fetch_blob("w"), blobs["w"])
    ws.run(core.CreateOperator("Load", [], ["ids"], db=path, db_type=db_type, absolute_path=1))
    np.testing.assert_array_equal(ws.fetch_blob("ids"), blobs["ids"])
    out = str(tmp_path / f"saved.{db_type}")
    ws.run(core.CreateOperator("Save", ["w", "ids"], [], db=out, db_type=db_type, absolute_path=1))
    assert sorted(db.load_blobs(out, db_type)) == ["ids", "w"]
    ws.run(core.CreateOperator("DBExists", [], ["yes"], db_name=out, db_type=db_type, absolute_path=1))
    assert bool(ws.fetch_blob("yes"))


@pytest.mark.parametrize("db_type", TYPES)
def test_model_reads_batches_that_equal_the_records(tmp_path, db_type):
    path = str(tmp_path / f"examples.{db_type}")
    data, labels = examples_db(path, db_type, count=10)
    model = model_helper.ModelHelper(name=f"reader_{db_type}")
    model.TensorProtosDBInput([], ["x", "y"], batch_size=4, db=path, db_type=db_type)
    other = model_helper.ModelHelper(name=f"brew_{db_type}")
    brew.db_input(other, ["x2", "y2"], batch_size=3, db=path, db_type=db_type)
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(model.param_init_net)
        workspace.RunNetOnce(other.param_init_net)  # the same blob dbreader_<db>: one shared reader
        workspace.CreateNet(model.net)
        seen = []
        for _ in range(3):  # 12 records from 10: wraps around
            workspace.RunNet(model.net.Proto().name)
            seen.append(workspace.FetchBlob("y"))
            assert workspace.FetchBlob("x").shape == (4, 2, 3)
        np.testing.assert_array_equal(np.concatenate(seen), np.concatenate([labels, labels[:2]]))
        workspace.RunNetOnce(other.net)  # goes on where the first net stopped
        np.testing.assert_array_equal(workspace.FetchBlob("x2"), data[2:5])
    finally:
        workspace.ResetWorkspace()
    with pytest.raises(ValueError, match="makes its own"):
        model.TensorProtosDBInput(["reader"], ["x"], batch_size=1, db=path, db_type=db_type)


def test_extension_create_db_writes_and_reads_bytes(tmp_path):
    path = str(tmp_path / "c.lmdb")
    handle = core.C.create_db("lmdb", path, core.C.Mode.write)
    transaction = handle.new_transaction()
    transaction.put("b", b"2")
    transaction.put(b"a", b"1")
    del transaction
    del handle  # Caffe2's destructor closed the DB and kept what was written
    reader = workspace.C.create_db("lmdb", path, workspace.C.Mode.read)
    cursor = reader.new_cursor()
    pairs = []
    while cursor.valid():
        pairs.append((cursor.key(), cursor.value()))
        cursor.next()
    reader.close()
    assert pairs == [(b"a", b"1"), (b"b", b"2")]
    assert "leveldb" in core.C.registered_dbs()


@pytest.mark.parametrize("db_type", TYPES)
def test_cli_db_write_and_info(tmp_path, capsys, db_type):
    np.savez(tmp_path / "data.npz", data=np.arange(12, dtype=np.float32).reshape(3, 4),
             label=np.array([0, 1, 2], np.int32))
    out = tmp_path / f"data.{db_type}"
    assert main(["db", "write", str(tmp_path / "data.npz"), str(out), "--db-type", db_type]) == 0
    assert "wrote 3 record(s)" in capsys.readouterr().err
    assert main(["db", "info", str(out)]) == 0  # the type from what the folder holds
    text = capsys.readouterr().out
    assert f"{db_type}, 3 records" in text and "float32" in text and "int32" in text
    protos = db.parse_tensor_protos(read_all(out, db_type)[2][1], "record 2")
    np.testing.assert_array_equal(db.record_tensor(protos.protos[1], str(out), "2"), 2)
    assert main(["db", "info", str(tmp_path / "nothing")]) == 2


READER_NET = """\
name: reader
op:
  - {type: CreateDB, output: [reader], arg: {db: train.lmdb, db_type: lmdb}}
  - {type: TensorProtosDBInput, input: [reader], output: [x, y], arg: {batch_size: 4}}
  - {type: CreateDB, output: [other], arg: {db: train.leveldb}}
  - {type: CreateDB, output: [plain], arg: {db: a.minidb, db_type: minidb}}
"""


def test_validate_warns_when_a_db_types_package_is_missing(tmp_path, monkeypatch, capsys):
    from pycaffe2.validate import validate
    net = tmp_path / "reader.yaml"
    net.write_text(READER_NET)
    assert not validate([net]).warnings  # everything installed: nothing to say
    monkeypatch.setitem(kvdb.PACKAGES, "lmdb", "pycaffe2_no_such_package")
    monkeypatch.setitem(kvdb.PACKAGES, "leveldb", "pycaffe2_no_such_package")
    report = validate([net])
    assert not report.problems  # the net is valid ...
    assert [(w.op_index, w.op_type, w.line) for w in report.warnings] == [(0, "CreateDB", 3),
                                                                          (2, "CreateDB", 5)]
    assert "db_type 'lmdb'" in report.warnings[0].message
    assert "db_type 'leveldb'" in report.warnings[1].message  # CreateDB's default, as in Caffe2
    assert "pip install 'pycaffe2[db]'" in report.warnings[0].message
    assert main(["validate", str(net)]) == 0  # ... a warning, not a failure
    err = capsys.readouterr().err
    assert "warning:" in err and "reader.yaml:3" in err and "pycaffe2[db]" in err
