"""Caffe2's lmdb and leveldb DB types, over the `lmdb` and `plyvel` packages
(the optional extra `pycaffe2[db]`): the same Cursor / Transaction / close
interface as pycaffe2.minidb, so pycaffe2.db gives their records the same
meaning (BlobProtos of Save, TensorProtos of data files).

Both are folders holding raw key/value records in key order, as Caffe2's
db/lmdb.cc and db/leveldb.cc keep them: LMDB's unnamed database in
`<source>/data.mdb`, LevelDB's tables under `<source>`. Opening follows Caffe2
(LMDB map size 1 TiB; LevelDB blocks of 64 KiB, a 256 MiB write buffer, 100
open files). One difference: Mode.new writes a fresh folder beside `source`
that replaces it when the DB is closed without an error (Caffe2 refused an
existing folder), so a failed Save leaves the old DB as it was, as minidb does.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import shutil
import stat
import struct
import threading

from pycaffe2.errors import DBError
from pycaffe2.minidb import Mode

INSTALL_HINT = "pip install 'pycaffe2[db]'"
PACKAGES = {"lmdb": "lmdb", "leveldb": "plyvel"}  # db_type -> the Python package it needs
LMDB_MAP_SIZE = 1 << 40  # Caffe2's LMDB_MAP_SIZE: address space only; the file grows as written


def missing_package(db_type: str) -> str | None:
    """The package a db_type needs that is not installed (None when nothing is missing)."""
    package = PACKAGES.get(db_type)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return package


def _backend(db_type: str):
    package = PACKAGES[db_type]
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise DBError(f"db_type '{db_type}' needs the Python package '{package}', which is not "
                      f"installed ({exc}): {INSTALL_HINT}") from None


def _key_bytes(key) -> bytes:
    return key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)


class Cursor:
    """Records in key order (Caffe2's Cursor): seek_to_first, seek, next, valid, key, value."""

    def __init__(self, db, it):
        self._db, self._it = db, it
        self.seek_to_first()

    def supports_seek(self) -> bool:
        return True

    def seek_to_first(self) -> None:
        self._db.guard(self._it.seek_to_first)

    def seek(self, key) -> None:
        """To the first record whose key is not below `key`."""
        self._db.guard(self._it.seek, _key_bytes(key))

    def next(self) -> None:
        self._check()
        self._db.guard(self._it.next)

    def valid(self) -> bool:
        return self._it.valid()

    def key(self) -> str:
        self._check()
        return bytes(self._it.key()).decode("utf-8", "surrogateescape")

    def value(self) -> bytes:
        self._check()
        return bytes(self._it.value())

    def _check(self) -> None:
        if not self._it.valid():
            raise DBError(f"{self._db.source}: the cursor is past the last record")

    def __iter__(self):
        """(key, value) of the records from the current one to the last."""
        while self.valid():
            yield self.key(), self.value()
            self.next()


class Transaction:
    """Puts are held until commit (Caffe2's batch); closing the DB commits what is left."""

    def __init__(self, db):
        self._db, self._pending = db, []
        db.transactions.append(self)

    def put(self, key, value: bytes) -> None:
        self._pending.append((_key_bytes(key), bytes(value)))

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._db.guard(self._db.write, pending)


def _check_entries(folder: str, db_type: str) -> None:
    """Refuse a DB folder holding a symlink or a special file: the backends open their
    files by name, even to read (LMDB resizes lock.mdb, LevelDB writes LOCK and LOG), so
    a link would send a read or a write outside the folder, and a FIFO would block."""
    try:
        modes = [(entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in os.scandir(folder)]
    except OSError as exc:
        raise DBError(f"cannot open {db_type} {folder}: {exc.strerror or exc}") from None
    for name, mode in modes:
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
            raise DBError(f"cannot open {db_type} {folder}: its entry '{name}' is {kind}; "
                          f"refused (a {db_type} DB folder holds only its own files)")


# Read handles open in this process, shared: LMDB and LevelDB both refuse a second open of
# one folder in a process, and Caffe2's nets open one DB from several readers.
# (db_type, device, inode) -> [handle, users]
_SHARED: dict[tuple, list] = {}
_SHARED_LOCK = threading.Lock()


class _FolderDB:
    """What lmdb and leveldb share: modes, shared read handles, the folder swap of
    Mode.new, backend errors as DBErrors. Subclasses give open_handle, close_handle,
    iterator and write."""

    db_type = ""
    marker = ""

    def check_files(self) -> None:
        """What a subclass checks of its files before the backend opens them."""

    def __init__(self, source: str, mode: Mode):
        self.source, self.mode = str(source), Mode(mode)
        self.transactions: list[Transaction] = []
        self._temp = self._handle = self._shared = None
        self._lock = threading.Lock()
        self._module = _backend(self.db_type)
        if os.path.exists(self.source) and not os.path.isdir(self.source):
            raise DBError(f"cannot open {self.db_type} {self.source}: not a folder (a {self.db_type} "
                          "DB is a folder; is it a minidb file?)")
        if os.path.isdir(self.source):
            _check_entries(self.source, self.db_type)
        if self.mode is Mode.read:
            self._open_shared()
            return
        path = self.source
        if self.mode is Mode.new:
            folder, base = os.path.split(os.path.abspath(self.source))
            path = self._temp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        self._handle = self.guard(self.open_handle, path)

    def _open_shared(self) -> None:
        if not os.path.isdir(self.source):
            raise DBError(f"cannot open {self.db_type} {self.source}: no such folder")
        if not os.path.isfile(os.path.join(self.source, self.marker)):
            raise DBError(f"cannot open {self.db_type} {self.source}: the folder has no '{self.marker}', "
                          f"so it is not a {self.db_type} DB")
        self.check_files()
        status = os.stat(self.source)
        key = (self.db_type, status.st_dev, status.st_ino)  # a folder replaced since is another DB
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = [self.guard(self.open_handle, self.source), 0]
            _SHARED[key][1] += 1
            self._handle, self._shared = _SHARED[key][0], key

    def guard(self, call, *args):
        """`call(*args)`, the backend's errors as DBErrors naming the DB."""
        try:
            with self._lock:
                return call(*args)
        except self._module.Error as exc:
            raise DBError(f"{self.db_type} {self.source}: {exc}") from None
        except OSError as exc:  # a missing parent folder, no permission, ...
            raise DBError(f"{self.db_type} {self.source}: {exc.strerror or exc}") from None

    def new_cursor(self) -> Cursor:
        if self.mode is not Mode.read:
            raise DBError(f"{self.source}: opened for writing, not reading")
        self._check_open()
        return Cursor(self, self.guard(self.iterator, self._handle))

    def new_transaction(self) -> Transaction:
        if self.mode is Mode.read:
            raise DBError(f"{self.source}: opened for reading, not writing")
        self._check_open()
        return Transaction(self)

    def write(self, records) -> None:
        self._check_open()
        self.write_records(self._handle, records)

    def _check_open(self) -> None:
        if self._handle is None:
            raise DBError(f"{self.db_type} {self.source}: the DB is closed")

    def close(self) -> None:
        """Commits what transactions hold and closes; a Mode.new DB replaces `source` now."""
        if self._handle is None:
            return
        try:
            for transaction in self.transactions:
                transaction.commit()
        except DBError:
            self.abort()
            raise
        self.transactions = []
        self._release()
        if self._temp is not None:
            self._publish()

    def _release(self) -> None:
        handle, self._handle = self._handle, None
        if self._shared is not None:
            with _SHARED_LOCK:
                entry = _SHARED[self._shared]
                entry[1] -= 1
                if entry[1]:
                    return
                del _SHARED[self._shared]
        self.guard(self.close_handle, handle)

    def _publish(self) -> None:
        old = None
        try:
            if os.path.isdir(self.source):
                old = f"{self._temp}.old"
                os.rename(self.source, old)
            os.rename(self._temp, self.source)
        except OSError as exc:
            self.abort()
            raise DBError(f"cannot write {self.db_type} {self.source}: {exc.strerror or exc}") from exc
        self._temp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Discards a Mode.new DB (`source` stays as it was); other modes just close."""
        self.transactions = []
        if self._handle is not None:
            try:
                self._release()
            except DBError:
                pass
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            self.abort()  # never closed: an unfinished write must not appear


class _LMDBIterator:
    """An LMDB cursor with LevelDB's iterator interface (what Cursor walks)."""

    def __init__(self, env):
        self._txn = env.begin(buffers=False)
        self._cursor = self._txn.cursor()
        self._valid = False

    def seek_to_first(self):
        self._valid = self._cursor.first()

    def seek(self, key: bytes):
        self._valid = self._cursor.set_range(key)

    def next(self):
        self._valid = self._cursor.next()

    def valid(self) -> bool:
        return self._valid

    def key(self) -> bytes:
        return self._cursor.key()

    def value(self) -> bytes:
        return self._cursor.value()


# LMDB's meta page (64-bit layout): page header 16 bytes, then magic, version, address,
# map size, two 48-byte DB records (the first's pad holds the page size), last page, txn id.
_META_PAGE_SIZE, _META_LAST_PAGE, _META_END = 40, 136, 152
_MAGIC = struct.pack("<I", 0xBEEFC0DE)


class LMDB(_FolderDB):
    """Caffe2's lmdb: one LMDB environment folder, its unnamed database."""

    db_type = "lmdb"
    marker = "data.mdb"  # the file every LMDB folder holds (detect_db_type looks for it too)

    @property
    def size(self) -> int | None:
        """Bytes of data.mdb: values are stored as they are, so no tensor can claim more."""
        data = os.path.join(self.source, "data.mdb")
        return os.path.getsize(data) if self.mode is Mode.read and os.path.isfile(data) else None

    def check_files(self) -> None:
        """Refuse a data.mdb shorter than its meta pages say: LMDB maps the file and
        reads pages up to the last one the meta names, and a page past the end of the
        file is a SIGBUS that kills the process, not an error."""
        path = os.path.join(self.source, "data.mdb")
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as stream:
                first = stream.read(_META_END)
                if len(first) < _META_END or first[16:20] != _MAGIC:
                    return  # not LMDB's file at all: LMDB reads its header without mapping, and names it
                page = struct.unpack_from("<I", first, _META_PAGE_SIZE)[0]
                if page < 512 or page & (page - 1) or size % page or size < 2 * page:
                    raise DBError(f"cannot open lmdb {self.source}: data.mdb is damaged or cut short: "
                                  f"{size:,} bytes is not a whole number (2 or more) of {page}-byte pages")
                stream.seek(page)
                metas = [first, stream.read(_META_END)]
        except OSError as exc:
            raise DBError(f"cannot open lmdb {self.source}: {exc.strerror or exc}") from None
        last_page, _ = max(struct.unpack_from("<QQ", meta, _META_LAST_PAGE)[::-1] for meta in metas
                            if len(meta) == _META_END)[::-1]
        if (last_page + 1) * page > size:
            raise DBError(f"cannot open lmdb {self.source}: data.mdb is damaged or cut short: its meta "
                          f"page names page {last_page:,} of {page} bytes, the file holds {size:,} bytes")

    def open_handle(self, path: str):
        reading = self.mode is Mode.read
        return self._module.open(path, map_size=LMDB_MAP_SIZE, readonly=reading, create=not reading,
                                 subdir=True, max_dbs=0)

    def close_handle(self, env) -> None:
        env.close()

    def iterator(self, env):
        return _LMDBIterator(env)

    def write_records(self, env, records) -> None:
        with env.begin(write=True) as txn:
            for key, value in records:
                txn.put(key, value)


class LevelDB(_FolderDB):
    """Caffe2's leveldb: a LevelDB folder."""

    db_type = "leveldb"
    marker = "CURRENT"

    def open_handle(self, path: str):
        return self._module.DB(path, create_if_missing=self.mode is not Mode.read,
                               error_if_exists=self.mode is Mode.new, block_size=65536,
                               write_buffer_size=268435456, max_open_files=100)

    def close_handle(self, db) -> None:
        db.close()

    def iterator(self, db):
        return db.raw_iterator()

    def write_records(self, db, records) -> None:
        with db.write_batch() as batch:
            for key, value in records:
                batch.put(key, value)


DB_CLASSES = {"lmdb": LMDB, "leveldb": LevelDB}


def detect_db_type(path: str) -> str | None:
    """The DB type a path looks like: a folder with data.mdb is lmdb, with CURRENT leveldb,
    anything but a folder minidb (whose reader then names what is wrong with it); None
    for another folder."""
    if not os.path.isdir(path):
        return "minidb"
    if os.path.isfile(os.path.join(path, "data.mdb")):
        return "lmdb"
    if os.path.isfile(os.path.join(path, "CURRENT")):
        return "leveldb"
    return None
