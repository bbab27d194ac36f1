"""pycaffe2.db and the minidb store under it (pycaffe2.minidb): the minidb byte
layout, cursors and readers, atomic writes, errors on damaged files, blob records
as Save writes them, and the npz tools."""
import struct

import numpy as np
import pytest

from pycaffe2 import db, minidb
from pycaffe2.proto import caffe2_pb2


def write(path, records, mode=db.Mode.new):
    with db.create_db("minidb", str(path), mode) as out:
        transaction = out.new_transaction()
        for key, value in records:
            transaction.put(key, value)
        transaction.commit()


def read_all(path):
    out = db.create_db("minidb", str(path), db.Mode.read)
    try:
        return list(out.new_cursor())
    finally:
        out.close()


def test_record_bytes_are_caffe2s_layout(tmp_path):
    path = tmp_path / "one.minidb"
    write(path, [("key1", b"\x00value\xff")])
    # [int32 key length][int32 value length][key][value], little-endian, nothing else
    expected = (4).to_bytes(4, "little") + (7).to_bytes(4, "little") + b"key1" + b"\x00value\xff"
    assert path.read_bytes() == expected


def test_round_trip_keeps_order_and_bytes(tmp_path):
    path = tmp_path / "many.minidb"
    records = [(f"k{i}", bytes([i]) * (i + 1)) for i in range(20)] + [("ünï", b"x")]
    write(path, records)
    assert read_all(path) == records


def test_reads_a_file_encoded_by_hand(tmp_path):
    path = tmp_path / "hand.minidb"
    path.write_bytes(struct.pack("<ii", 1, 3) + b"a" + b"xyz" + struct.pack("<ii", 2, 1) + b"bc" + b"!")
    assert read_all(path) == [("a", b"xyz"), ("bc", b"!")]


def test_write_mode_appends(tmp_path):
    path = tmp_path / "append.minidb"
    write(path, [("a", b"1")])
    write(path, [("b", b"2")], mode=db.Mode.write)
    assert read_all(path) == [("a", b"1"), ("b", b"2")]


def test_cursor_seek_to_first_and_end(tmp_path):
    path = tmp_path / "c.minidb"
    write(path, [("a", b"1"), ("b", b"2")])
    cursor = db.create_db("minidb", str(path), db.Mode.read).new_cursor()
    assert (cursor.key(), cursor.value()) == ("a", b"1")
    cursor.next()
    cursor.next()
    assert not cursor.valid()
    with pytest.raises(db.DBError, match="past the last record"):
        cursor.key()
    cursor.seek_to_first()
    assert cursor.key() == "a"


@pytest.mark.parametrize("cut, message", [
    (3, "byte 0: the file ends inside a record header"),
    (10, "byte 0: the record needs 12 bytes but the file has only 10 left"),
    (12 + 5, "byte 12: the file ends inside a record header"),
    (12 + 10, "byte 12: the record needs 12 bytes but the file has only 10 left"),
])
def test_truncated_file_names_file_and_offset(tmp_path, cut, message):
    path = tmp_path / "whole.minidb"
    write(path, [("ab", b"cd"), ("ef", b"gh")])
    damaged = tmp_path / "damaged.minidb"
    damaged.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(db.DBError, match=message) as error:
        read_all(damaged)
    assert str(damaged) in str(error.value)


def test_garbage_lengths_are_reported(tmp_path):
    path = tmp_path / "garbage.minidb"
    path.write_bytes(struct.pack("<ii", -5, 3) + b"abc")
    with pytest.raises(db.DBError, match=r"garbage.minidb: byte 0: record lengths key=-5"):
        read_all(path)


def test_missing_file_and_unknown_type():
    with pytest.raises(db.DBError, match="cannot open minidb /nonexistent/x.minidb"):
        db.create_db("minidb", "/nonexistent/x.minidb", db.Mode.read)
    with pytest.raises(db.DBError, match="db_type 'rocksdb' is not available"):
        db.create_db("rocksdb", "x", db.Mode.read)


def test_empty_key_or_value_is_refused(tmp_path):
    with pytest.raises(db.DBError, match="empty key or value"):
        write(tmp_path / "e.minidb", [("k", b"")])
    assert not (tmp_path / "e.minidb").exists()


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "keep.minidb"
    write(path, [("old", b"data")])
    before = path.read_bytes()
    with pytest.raises(RuntimeError), db.create_db("minidb", str(path), db.Mode.new) as out:
        out.new_transaction().put("new", b"partial")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.minidb"]


def test_unclosed_write_never_appears(tmp_path):
    path = tmp_path / "never.minidb"
    out = db.create_db("minidb", str(path), db.Mode.new)
    out.new_transaction().put("k", b"v")
    del out
    assert list(tmp_path.iterdir()) == []


def test_reader_wraps_around_and_shards(tmp_path):
    path = tmp_path / "r.minidb"
    write(path, [(str(i), bytes([i])) for i in range(5)])
    reader = db.DBReader("minidb", str(path))
    assert [reader.read()[0] for _ in range(12)] == [str(i % 5) for i in range(12)]
    shard = db.DBReader("minidb", str(path), num_shards=2, shard_id=1)
    assert [shard.read()[0] for _ in range(5)] == ["1", "3", "1", "3", "1"]


def test_reader_of_empty_db(tmp_path):
    path = tmp_path / "empty.minidb"
    write(path, [])
    assert path.read_bytes() == b""
    with pytest.raises(db.DBError, match="holds no records"):
        db.DBReader("minidb", str(path)).read()


def test_blob_records_are_caffe2_blob_protos(tmp_path):
    records = db.serialize_blob("w", np.arange(5, dtype=np.float32), chunk_size=2)
    assert [key for key, _ in records] == ["w#%0", "w#%1", "w#%2"]
    proto = caffe2_pb2.BlobProto.FromString(records[1][1])
    assert (proto.name, proto.type, list(proto.tensor.dims)) == ("w", "Tensor", [5])
    assert (proto.tensor.segment.begin, proto.tensor.segment.end) == (2, 4)
    assert list(proto.tensor.float_data) == [2.0, 3.0]


def test_save_and_load_blobs_with_chunks_out_of_order(tmp_path):
    values = {"f": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
              "i": np.array([[1, -2], [3, 2**40]], dtype=np.int64),
              "s": np.array([b"a", b"", b"ccc"], dtype=object),
              "empty": np.zeros((0, 3), dtype=np.float64), "text": b"hello"}
    path = tmp_path / "blobs.minidb"
    records = [r for name, v in values.items() for r in db.serialize_blob(name, v, chunk_size=5)]
    write(path, records[::-1])  # chunks in any order
    loaded = db.load_blobs(str(path))
    assert sorted(loaded) == sorted(values)
    for name, value in values.items():
        if isinstance(value, bytes):
            assert loaded[name] == value
        else:
            assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
            assert loaded[name].tolist() == value.tolist()
    assert db.blob_names(str(path)) == ["text", "empty", "s", "i", "f"]


def test_incomplete_chunked_blob_is_an_error(tmp_path):
    path = tmp_path / "part.minidb"
    write(path, db.serialize_blob("w", np.ones(6, dtype=np.float32), chunk_size=4)[:1])
    with pytest.raises(db.DBError, match="blob 'w' is incomplete: 4 of 6 elements"):
        db.load_blobs(str(path))


def test_write_npz_to_minidb_and_describe(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.random((7, 1, 3, 3), dtype=np.float32)
    label = np.arange(7, dtype=np.int32) % 3
    np.savez(tmp_path / "d.npz", label=label, data=data)
    out = tmp_path / "d.minidb"
    assert db.write_npz_to_minidb(str(tmp_path / "d.npz"), str(out)) == 7
    records = read_all(out)
    assert [key for key, _ in records] == [f"{i:08d}" for i in range(7)]
    protos = caffe2_pb2.TensorProtos.FromString(records[4][1]).protos
    assert [list(t.dims) for t in protos] == [[1, 3, 3], []]  # sorted names: data, label
    assert list(protos[0].float_data) == data[4].ravel().tolist()
    assert list(protos[1].int32_data) == [label[4]]
    text = db.describe_db(str(out))
    assert "7 records" in text and "00000000 00000001 00000002 ... 00000005 00000006" in text
    assert "0: [1, 3, 3] float32" in text and "1: [] int32" in text


def test_write_npz_order_and_errors(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 2)), y=np.ones(3))
    with pytest.raises(db.DBError, match="one common first dim"):
        db.write_npz_to_minidb(str(tmp_path / "d.npz"), str(tmp_path / "o.minidb"))
    with pytest.raises(db.DBError, match="no array"):
        db.write_npz_to_minidb(str(tmp_path / "d.npz"), str(tmp_path / "o.minidb"), names=["z"])
    assert db.write_npz_to_minidb(str(tmp_path / "d.npz"), str(tmp_path / "o.minidb"), names=["y"]) == 3


def test_describe_a_save_file(tmp_path):
    path = tmp_path / "ck.minidb"
    db.save_blobs(str(path), {"w": np.zeros((2, 3), np.float32), "it": np.array([4])})
    text = db.describe_db(str(path))
    assert "blobs (Save format)" in text and "w: [2, 3] float32" in text and "it: [1] int64" in text


def test_record_that_is_not_a_blob_proto(tmp_path):
    path = tmp_path / "bad.minidb"
    write(path, [("w#%0", b"\xff\xff\xff")])
    with pytest.raises(db.DBError, match=r"bad.minidb: record 'w#%0': not a BlobProto"):
        db.load_blobs(str(path))


def test_the_store_names_are_still_importable_from_db():
    """The minidb store moved to pycaffe2.minidb; pycaffe2.db hands out the same objects."""
    for name in ("Mode", "Cursor", "Transaction", "MiniDB"):
        assert getattr(db, name) is getattr(minidb, name)
    assert db.DB_TYPES["minidb"] is minidb.MiniDB
    from pycaffe2.db import Cursor, MiniDB, Mode, Transaction  # noqa: F401 (the import is the test)
