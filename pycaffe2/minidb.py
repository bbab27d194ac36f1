"""Caffe2's minidb file format, the byte store under pycaffe2.db: Mode, and the
MiniDB file with its Cursor (reading) and Transaction (writing).

A minidb file (Caffe2's core/db.cc) is a bare sequence of records, each

    [key length: int32][value length: int32][key bytes][value bytes]

with the ints little-endian (Caffe2 wrote native ints; every platform it ran
on was little-endian) and both lengths above 0. There is no header, index or
checksum. Writes here go to a temporary file in the destination's folder that
replaces the destination (os.replace) only when the DB is closed without an
error, so a crash or a failure never leaves a half-written file.

The seam: this module knows records only as keys and bytes. What the bytes
mean (BlobProtos as Save writes them, TensorProtos of data files), the DB type
registry and the DBReader that input ops share live in pycaffe2.db, which
imports this module and re-exports its names; import them from there.
"""
from __future__ import annotations

import enum
import os
import secrets
import struct
import threading

from pycaffe2.errors import DBError
from pycaffe2.files import check_regular_file, read_regular_file

_HEADER = struct.Struct("<ii")


class Mode(enum.IntEnum):
    read = 0
    write = 1  # append to an existing file (or start one)
    new = 2  # replace the file


class Cursor:
    """Walks a minidb file record by record; values are read only when asked."""

    def __init__(self, db: MiniDB):
        self._db = db
        self._key = self._value_at = self._value_len = None
        self.seek_to_first()

    def seek_to_first(self) -> None:
        self._next_offset = 0
        self.next()

    def next(self) -> None:
        offset, db = self._next_offset, self._db
        if offset >= db.size:
            self._key = None  # past the last record
            return
        header = db.read_at(offset, _HEADER.size)
        if len(header) < _HEADER.size:
            raise db.error(offset, f"the file ends inside a record header ({len(header)} of 8 bytes)")
        key_len, value_len = _HEADER.unpack(header)
        if key_len <= 0 or value_len <= 0:
            raise db.error(offset, f"record lengths key={key_len} value={value_len} are not positive "
                           "(not a minidb file?)")
        end = offset + _HEADER.size + key_len + value_len
        if end > db.size:
            raise db.error(offset, f"the record needs {end - offset} bytes but the file has only "
                           f"{db.size - offset} left (truncated?)")
        self._key = db.read_at(offset + _HEADER.size, key_len).decode("utf-8", "surrogateescape")
        self._value_at, self._value_len = offset + _HEADER.size + key_len, value_len
        self._offset, self._next_offset = offset, end

    def valid(self) -> bool:
        return self._key is not None

    def key(self) -> str:
        self._check()
        return self._key

    def value(self) -> bytes:
        self._check()
        return self._db.read_at(self._value_at, self._value_len)

    @property
    def offset(self) -> int:
        """Byte offset of the current record (for error messages)."""
        return self._offset

    def _check(self) -> None:
        if self._key is None:
            raise DBError(f"{self._db.source}: the cursor is past the last record")

    def __iter__(self):
        """(key, value) of the records from the current one to the last."""
        while self.valid():
            yield self.key(), self.value()
            self.next()


class Transaction:
    def __init__(self, db: MiniDB):
        self._db = db

    def put(self, key, value: bytes) -> None:
        key = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        value = bytes(value)
        if not key or not value:
            raise DBError(f"{self._db.source}: minidb cannot hold an empty key or value "
                          f"(key {key!r}, {len(value)}-byte value)")
        self._db.append(_HEADER.pack(len(key), len(value)) + key + value)

    def commit(self) -> None:
        self._db.flush()


class MiniDB:
    """Caffe2's minidb. Use as a context manager when writing: leaving the
    block normally publishes the file, an exception discards it."""

    def __init__(self, source: str, mode: Mode):
        self._file = self._temp = None
        self._lock = threading.Lock()
        self.source, self.mode = str(source), Mode(mode)
        if self.mode is Mode.read:
            try:
                check_regular_file(self.source, DBError)  # a FIFO would hang, /dev/zero never end
                self._file = open(self.source, "rb")  # noqa: SIM115 (kept open for the cursor)
            except DBError as exc:
                raise DBError(f"cannot open minidb {exc}") from None
            except OSError as exc:
                raise DBError(f"cannot open minidb {self.source}: {exc.strerror or exc}") from exc
            self.size = os.fstat(self._file.fileno()).st_size
        else:
            self._open_temp()

    def _open_temp(self) -> None:
        folder, base = os.path.split(os.path.abspath(self.source))
        self._temp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise DBError(f"cannot write minidb {self.source}: {exc.strerror or exc}") from exc
        self._file = os.fdopen(fd, "wb")
        if self.mode is Mode.write and os.path.exists(self.source):
            try:
                self._file.write(read_regular_file(self.source, DBError))
            except DBError:
                self.abort()
                raise

    # reading
    def read_at(self, offset: int, n: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            return self._file.read(n)

    def error(self, offset: int, message: str) -> DBError:
        return DBError(f"{self.source}: byte {offset}: {message}")

    def new_cursor(self) -> Cursor:
        if self.mode is not Mode.read:
            raise DBError(f"{self.source}: opened for writing, not reading")
        return Cursor(self)

    # writing
    def new_transaction(self) -> Transaction:
        if self.mode is Mode.read:
            raise DBError(f"{self.source}: opened for reading, not writing")
        return Transaction(self)

    def append(self, record: bytes) -> None:
        with self._lock:
            self._file.write(record)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        """Closes the file; a written DB replaces `source` now, atomically."""
        if self._file is None:
            return
        file, self._file = self._file, None
        if self._temp is None:
            file.close()
            return
        try:
            file.flush()
            os.fsync(file.fileno())
            file.close()
            os.replace(self._temp, self.source)
        except OSError as exc:
            self.abort()
            raise DBError(f"cannot write minidb {self.source}: {exc.strerror or exc}") from exc
        self._temp = None

    def abort(self) -> None:
        """Discards what was written; `source` stays as it was."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except FileNotFoundError:
                pass
            self._temp = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        self.abort()  # never closed: an unfinished write must not appear
