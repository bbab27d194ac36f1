"""Caffe2's key-value databases as pycaffe2 uses them: a registry of DB types,
the DBReader that input ops share, blobs as Save writes them and Load reads
them, and data files of examples (one TensorProtos per record).

Saved blobs are BlobProto records keyed `name#%k` (k = chunk number, Caffe2's
kChunkIdSeparator), each tensor chunk holding its `segment` of the data. An Int8
blob (Int8Tensor) is one record keyed `name`, of type "Int8TensorCPU" holding a
QTensorProto, as Caffe2's int8_serialization.cc writes it (never chunked).

The seam: the minidb file itself (its byte layout, cursors, transactions and
atomic writes) is pycaffe2.minidb, which knows records only as keys and bytes;
this module gives the bytes their meaning. Mode, Cursor, Transaction and MiniDB
are re-exported here, so `from pycaffe2.db import ...` and `db.<name>` keep
working for every public name the module held before the split.
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np

from pycaffe2.errors import DBError, PyCaffe2Error
from pycaffe2.files import NpzArchive
from pycaffe2.kvdb import DB_CLASSES, INSTALL_HINT, detect_db_type, missing_package
from pycaffe2.minidb import Cursor, MiniDB, Mode, Transaction
from pycaffe2.objects import OBJECT_TYPES, ObjectBlob
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_from_bytes
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.tensor_proto import array_to_tensor, int8_to_qtensor, qtensor_to_int8, tensor_to_array

# Every public name, the store's (Cursor, MiniDB, Mode, Transaction) among them: re-exported.
__all__ = [
    "CHUNK_SEPARATOR", "DB_TYPES", "DEFAULT_CHUNK_SIZE", "BlobAssembler", "Cursor", "DBError", "DBReader",
    "MiniDB", "Mode", "Transaction", "blob_name", "blob_names", "check_db_type", "create_db",
    "describe_db", "detect_db_type", "load_blobs", "missing_extra", "parse_blob", "parse_tensor_protos", "printable", "record_tensor",
    "register_db", "save_blobs", "serialize_blob", "write_npz_to_db", "write_npz_to_minidb",
]

CHUNK_SEPARATOR = "#%"
DEFAULT_CHUNK_SIZE = 1_000_000  # elements per record (Caffe2's caffe2_tensor_chunk_size)


# lmdb and leveldb are always listed; opening one without its package (the `db` extra) fails, named.
DB_TYPES: dict[str, type] = {"minidb": MiniDB, **DB_CLASSES}


def register_db(db_type: str):
    """Register a DB class (constructor (source, mode)) under a db_type name."""
    def register(cls):
        DB_TYPES[db_type] = cls
        return cls
    return register


def check_db_type(db_type: str) -> None:
    """Refuse a db_type that is unknown, or known but without its package here."""
    if db_type not in DB_TYPES:
        raise DBError(f"db_type '{db_type}' is not available (known: {', '.join(sorted(DB_TYPES))})")
    missing = missing_extra(db_type)
    if missing:
        raise DBError(missing)


def missing_extra(db_type: str) -> str | None:
    """Why a known db_type cannot be opened here (its package is not installed), or None."""
    package = missing_package(db_type)
    if package is None:
        return None
    return f"db_type '{db_type}' needs the Python package '{package}' ({INSTALL_HINT})"


def create_db(db_type: str, source: str, mode: Mode):
    """Open a DB of a registered type (Caffe2's db::CreateDB)."""
    check_db_type(db_type)
    return DB_TYPES[db_type](source, mode)


KEPT_BYTES = 64 << 20  # a reader keeps its shard's records in memory up to this size


class DBReader:
    """A DB open for reading, shared by input ops (Caffe2's db::DBReader).

    `read` gives the current record and moves on, back to the first record
    after the last one, so readers cycle through epochs. With num_shards > 1
    it gives only records shard_id, shard_id + num_shards, ...

    A shard of up to KEPT_BYTES is read whole at the first read and kept
    (`records`), so later epochs touch no file and input ops can keep what
    they decode from it (`derived`, by keys of their own). The records are the
    same: an open DB is a snapshot (pycaffe2 writes a new file or folder and
    renames it; LMDB and LevelDB cursors read one version). A shard that
    cannot be read whole (a faulty record) is read record by record, so
    each fault shows at the read that reaches it, as before.
    """

    def __init__(self, db_type: str, source: str, num_shards: int = 1, shard_id: int = 0):
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            raise DBError(f"{source}: shard_id {shard_id} is not in [0, num_shards={num_shards})")
        self.db_type, self.source = db_type, str(source)
        self.num_shards, self.shard_id = num_shards, shard_id
        self.db = create_db(db_type, source, Mode.read)
        self.cursor = self.db.new_cursor()
        self._lock = threading.Lock()
        self._move_to_beginning()
        self._kept: list | None = None  # the shard's (key, value) records; [] when not kept
        self._position = 0  # the next record's index in _kept
        self.derived: dict = {}

    def read(self) -> tuple[str, bytes]:
        with self._lock:
            kept = self._keep()
            if kept:
                self._position, at = (self._position + 1) % len(kept), self._position
                return kept[at]
            if not self.cursor.valid():
                raise DBError(f"{self.source}: the DB holds no records")
            key, value = self.cursor.key(), self.cursor.value()
            for _ in range(self.num_shards):
                self.cursor.next()
                if not self.cursor.valid():
                    self._move_to_beginning()
                    break
            return key, value

    def records(self) -> list | None:
        """The shard's (key, value) records in reading order when kept, else None."""
        with self._lock:
            return self._keep() or None

    def take(self, n: int, stop_at=frozenset()) -> list[int]:
        """The indices in `records` of the next n reads, moving past them; a read of an
        index in `stop_at` is the last one taken. Only for a reader whose records are kept."""
        with self._lock:
            count, taken = len(self._kept), []
            for _ in range(n):
                taken.append(self._position)
                self._position = (self._position + 1) % count
                if taken[-1] in stop_at:
                    break
            return taken

    def seek_to_first(self) -> None:
        with self._lock:
            self._move_to_beginning()
            self._position = 0

    def _keep(self) -> list:
        if self._kept is None:
            self._kept = self._read_whole()
        return self._kept

    def _read_whole(self) -> list:
        """The shard's records if they fit in KEPT_BYTES and all read cleanly, else []."""
        if getattr(self.db, "size", 0) > KEPT_BYTES:
            return []
        records, total = [], 0
        try:
            cursor = self.db.new_cursor()
            index = 0
            while cursor.valid():
                if index % self.num_shards == self.shard_id:
                    records.append((cursor.key(), cursor.value()))
                    total += len(records[-1][1])
                    if total > KEPT_BYTES:
                        return []
                cursor.next()
                index += 1
        except DBError:
            return []
        return records

    def _move_to_beginning(self) -> None:
        self.cursor.seek_to_first()
        for _ in range(self.shard_id):
            self.cursor.next()
            if not self.cursor.valid():
                raise DBError(f"{self.source}: fewer records than shard_id {self.shard_id}")

    def __repr__(self) -> str:
        return f"DBReader({self.db_type!r}, {self.source!r})"


# Blobs as Save writes them and Load reads them.
def serialize_blob(name: str, value, chunk_size: int | None = None) -> list[tuple[str, bytes]]:
    """(key, BlobProto bytes) records for one blob: a tensor in chunks of
    `chunk_size` elements, bytes as a "std::string" blob, an Int8Tensor as one
    "Int8TensorCPU" blob (a QTensorProto)."""
    if isinstance(value, bytes):
        proto = caffe2_pb2.BlobProto(name=name, type="std::string", content=value)
        return [(name, proto.SerializeToString())]
    if isinstance(value, Int8Tensor):
        try:
            qtensor = int8_to_qtensor(value, name)
        except PyCaffe2Error as exc:
            raise DBError(str(exc)) from None
        return [(name, caffe2_pb2.BlobProto(name=name, type="Int8TensorCPU", qtensor=qtensor).SerializeToString())]
    if isinstance(value, ObjectBlob):  # a counter or an index, as Caffe2 saved them
        try:
            return [(name, value.blob_proto(name).SerializeToString())]
        except PyCaffe2Error as exc:
            raise DBError(str(exc)) from None
    if not isinstance(value, (np.ndarray, np.generic)):
        raise DBError(f"blob '{name}' holds a {type(value).__name__}, which cannot be saved")
    array = np.asarray(value)
    flat = array.reshape(-1)
    chunk = chunk_size if chunk_size and chunk_size > 0 else DEFAULT_CHUNK_SIZE
    records = []
    for begin in range(0, max(flat.size, 1), chunk):
        tensor = array_to_tensor(flat[begin:begin + chunk], name)
        del tensor.dims[:]
        tensor.dims.extend(array.shape)
        tensor.segment.begin, tensor.segment.end = begin, min(begin + chunk, flat.size)
        proto = caffe2_pb2.BlobProto(name=name, type="Tensor", tensor=tensor)
        records.append((f"{name}{CHUNK_SEPARATOR}{begin // chunk}", proto.SerializeToString()))
    return records


def blob_name(key: str) -> str:
    """The blob name of a record key (without its chunk number)."""
    return key.split(CHUNK_SEPARATOR, 1)[0]


class BlobAssembler:
    """Collects BlobProto records (chunks in any order) into whole values."""

    def __init__(self, source: str, data_bytes: int | None = None):
        """`data_bytes`: the size of what the records come from (the DB file);
        no tensor may claim more elements than that many bytes could hold."""
        self.source, self.data_bytes = source, data_bytes
        self._parts: dict[str, list] = {}  # name -> [flat buffer, filled, shape] or [bytes]

    def add(self, name: str, key: str, value: bytes) -> None:
        proto = parse_blob(value, f"{self.source}: record '{key}'")
        if proto.type == "Int8TensorCPU":
            self._whole(name, [self._int8(key, proto.qtensor, len(value))])
            return
        if proto.type in OBJECT_TYPES:
            try:
                self._whole(name, [OBJECT_TYPES[proto.type].from_blob_proto(proto)])
            except PyCaffe2Error as exc:
                raise DBError(f"{self.source}: record '{key}': {exc}") from None
            return
        if proto.type != "Tensor":
            if proto.type != "std::string":
                raise DBError(f"{self.source}: blob '{name}' has type '{proto.type}', which "
                              "pycaffe2 cannot load (only Tensor, Int8TensorCPU and std::string)")
            self._whole(name, [proto.content])
            return
        tensor = proto.tensor
        shape = tuple(tensor.dims)
        size = self._size(key, shape, len(value))
        begin, end = (tensor.segment.begin, tensor.segment.end) if tensor.HasField("segment") else (0, size)
        if not 0 <= begin <= end <= size:
            raise DBError(f"{self.source}: record '{key}': segment [{begin}, {end}) is outside "
                          f"a tensor of {size} elements")
        piece = caffe2_pb2.TensorProto()
        piece.CopyFrom(tensor)
        piece.ClearField("segment")
        del piece.dims[:]
        piece.dims.append(end - begin)
        try:
            values = tensor_to_array(piece)
        except PyCaffe2Error as exc:
            raise DBError(f"{self.source}: record '{key}': {exc}") from exc
        if name not in self._parts:
            self._parts[name] = [np.empty(size, dtype=values.dtype), 0, shape]
        part = self._parts[name]
        if len(part) != 3 or part[2] != shape or part[0].dtype != values.dtype:
            raise DBError(f"{self.source}: record '{key}' does not match earlier records of '{name}'")
        part[0][begin:end] = values
        part[1] += end - begin
        if part[1] > size:
            raise DBError(f"{self.source}: blob '{name}' has more data than its {size} elements")

    def _int8(self, key: str, qtensor, record_bytes: int) -> Int8Tensor:
        self._size(key, tuple(qtensor.dims), record_bytes)
        try:
            return qtensor_to_int8(qtensor)
        except PyCaffe2Error as exc:
            raise DBError(f"{self.source}: record '{key}': {exc}") from None

    def _size(self, key: str, shape: tuple, record_bytes: int) -> int:
        """Elements of a tensor of `shape`, checked before anything is allocated:
        every element takes at least one byte of the file."""
        if any(d < 0 for d in shape):
            raise DBError(f"{self.source}: record '{key}': negative size in dims {list(shape)}")
        size = math.prod(shape)
        room = record_bytes if self.data_bytes is None else self.data_bytes
        if size > room:
            raise DBError(f"{self.source}: record '{key}': dims {list(shape)} claim {size:,} elements, "
                          f"more than {room:,} bytes of data can hold")
        return size

    def _whole(self, name: str, part: list) -> None:
        if name in self._parts:
            raise DBError(f"{self.source}: blob '{name}' appears twice")
        self._parts[name] = part

    def finish(self) -> dict:
        values = {}
        for name, part in self._parts.items():
            if len(part) == 1:
                values[name] = part[0]
                continue
            buffer, filled, shape = part
            if filled != buffer.size:
                raise DBError(f"{self.source}: blob '{name}' is incomplete: {filled} of "
                              f"{buffer.size} elements")
            try:
                values[name] = buffer.reshape(shape)
            except ValueError as exc:  # over 64 dims, or sizes NumPy cannot index
                raise DBError(f"{self.source}: blob '{name}': dims {list(shape)} are not a NumPy "
                              f"shape: {exc}") from None
        return values


def parse_blob(value: bytes, where: str) -> caffe2_pb2.BlobProto:
    return _parse(caffe2_pb2.BlobProto, value, where)


def _parse(cls, value: bytes, where: str):
    """A message decoded from a record, its strings checked (see proto.checks)."""
    proto, problem = message_from_bytes(cls, value)
    if problem:
        raise DBError(f"{where}: {problem}")
    return proto


def parse_tensor_protos(value: bytes, where: str) -> caffe2_pb2.TensorProtos:
    """The TensorProtos of one record of a data file."""
    return _parse(caffe2_pb2.TensorProtos, value, where)


def save_blobs(path: str, blobs: dict, db_type: str = "minidb", chunk_size: int | None = None) -> None:
    """Write blobs {name: array or bytes} to a new DB, atomically, as Save does."""
    with create_db(db_type, path, Mode.new) as db:
        transaction = db.new_transaction()
        for name, value in blobs.items():
            for key, data in serialize_blob(name, value, chunk_size):
                transaction.put(key, data)
        transaction.commit()


def load_blobs(path: str, db_type: str = "minidb") -> dict:
    """Every blob of a DB written by Save, {name: array or bytes}."""
    db = create_db(db_type, path, Mode.read)
    try:
        assembler = BlobAssembler(path, getattr(db, "size", None))
        for key, value in db.new_cursor():
            assembler.add(blob_name(key), key, value)
        return assembler.finish()
    finally:
        db.close()


def blob_names(path: str, db_type: str = "minidb") -> list[str]:
    """The names of the blobs in a DB written by Save, in file order (what a
    Load with load_all=1 must list as outputs)."""
    db = create_db(db_type, path, Mode.read)
    try:
        names = (blob_name(key) for key, _ in _keys(db))
        return list(dict.fromkeys(names))
    finally:
        db.close()


def _keys(db):
    cursor = db.new_cursor()
    while cursor.valid():
        yield cursor.key(), cursor
        cursor.next()


# Data files: one TensorProtos per example, as TensorProtosDBInput reads them.
def write_npz_to_minidb(npz_path: str, out_path: str, names=None) -> int:
    """write_npz_to_db to a minidb (the name it had before lmdb and leveldb)."""
    return write_npz_to_db(npz_path, out_path, names)


def write_npz_to_db(npz_path: str, out_path: str, names=None, db_type: str = "minidb") -> int:
    """Write an .npz as a DB of examples; returns the number of records.

    Record i (key `%08d` of i) is a TensorProtos holding example i of every
    array: `array[i]` for each name in `names`, in that order (default: the
    npz's array names sorted). All arrays must have the same first dim.
    TensorProtosDBInput then gives one output per array, in the same order.
    """
    with NpzArchive(npz_path, DBError) as npz:
        names = sorted(npz.files) if names is None else list(names)
        missing = [n for n in names if n not in npz.files]
        if missing or not names:
            raise DBError(f"{npz_path}: no array(s) {', '.join(missing) or '(none given)'} "
                          f"(it has {', '.join(sorted(npz.files))})")
        arrays = [npz[n] for n in names]
    lengths = {n: (a.shape[0] if a.ndim else None) for n, a in zip(names, arrays)}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise DBError(f"{npz_path}: the arrays need one common first dim (examples), got "
                      + ", ".join(f"{n} {list(a.shape)}" for n, a in zip(names, arrays)))
    count = arrays[0].shape[0]
    for name, array in zip(names, arrays):
        try:
            array_to_tensor(array[:0])  # a dtype TensorProto has no type for fails here, named
        except PyCaffe2Error as exc:
            raise DBError(f"{npz_path}: array '{name}': {exc}") from None
    with create_db(db_type, out_path, Mode.new) as db:
        transaction = db.new_transaction()
        for i in range(count):
            protos = caffe2_pb2.TensorProtos(protos=[array_to_tensor(a[i]) for a in arrays])
            transaction.put(f"{i:08d}", protos.SerializeToString())
        transaction.commit()
    return count


def describe_db(path: str, db_type: str = "minidb") -> str:
    """A few lines on a DB: records, keys, and what the records hold (every
    blob of a Save file; the tensors of the first record of a data file)."""
    db = create_db(db_type, path, Mode.read)
    try:
        keys, first = [], None
        for key, cursor in _keys(db):
            keys.append(key)
            if first is None:
                first = cursor.value()
        lines = [f"{path}: {db_type}, {len(keys)} records, {_bytes_on_disk(path)} bytes"]
        if not keys:
            return lines[0]
        shown = keys if len(keys) <= 6 else keys[:3] + ["..."] + keys[-2:]
        lines.append("keys: " + " ".join(map(printable, shown)))
        if _is_blob_proto(first):  # a file written by Save
            lines.append("blobs (Save format):")
            lines += [f"  {printable(name)}: {_describe(value)}"
                      for name, value in load_blobs(path, db_type).items()]
        else:
            protos = parse_tensor_protos(first, f"{path}: record 0 ({printable(keys[0])})")
            lines.append(f"record 0 ({printable(keys[0])}): TensorProtos of {len(protos.protos)} tensors")
            lines += [f"  {i}: {_describe(record_tensor(t, path, keys[0]))}"
                      for i, t in enumerate(protos.protos)]
        return "\n".join(lines)
    finally:
        db.close()


def _bytes_on_disk(path: str) -> int:
    """A file's size, or what the files of a DB folder (lmdb, leveldb) hold together."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())


def printable(key: str) -> str:
    """A key read from a file, its bytes that are not UTF-8 as \\x escapes."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def record_tensor(tensor, path: str, key: str) -> np.ndarray:
    """A tensor of a data file's record as an array; its faults name the file and record."""
    try:
        return tensor_to_array(tensor)
    except PyCaffe2Error as exc:
        raise DBError(f"{path}: record '{printable(key)}': {exc}") from None


def _is_blob_proto(value: bytes) -> bool:
    """A BlobProto always has a type; TensorProtos has no field 2, so never does."""
    try:
        return bool(caffe2_pb2.BlobProto.FromString(value).type)
    except Exception:  # noqa: BLE001 (not a BlobProto, whatever protobuf raises)
        return False


def _describe(value) -> str:
    if isinstance(value, bytes):
        return f"bytes ({len(value)})"
    if isinstance(value, Int8Tensor):
        return f"{list(value.shape)} Int8 {value.dtype} (scale {value.scale:.6g}, zero_point {value.zero_point})"
    if isinstance(value, ObjectBlob):
        return f"{value.type_name} {value!r}"
    dtype = "string" if value.dtype == object else str(value.dtype)
    return f"{list(value.shape)} {dtype}"
