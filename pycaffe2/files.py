"""Reading files a user names, or a model file names, without surprises: only
regular files (a FIFO would hang, /dev/zero would never end), and never more
bytes than a cap, checked before reading and again while reading (a file that
grows underneath). Every loader reads through here.

    data = read_regular_file(path, NetFileError, limit=MAX_FILE_BYTES)

The caps come from the environment so a deployment can raise them:
PYCAFFE2_MAX_FILE_BYTES (net, model and DB files; default 4 GiB),
PYCAFFE2_MAX_FEED_BYTES (a feed's arrays once decompressed; default 4 GiB) and
PYCAFFE2_MAX_BLOB_BYTES (one blob an op's args ask for, e.g. ConstantFill's
shape, as shape inference sees it before the net runs; default 4 GiB).
"""
from __future__ import annotations

import lzma
import math
import os
import stat
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pycaffe2.errors import LocatedError, PyCaffe2Error, ShapeError


def _cap(variable: str, default: int) -> int:
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        cap = int(value)
    except ValueError:
        raise PyCaffe2Error(f"${variable} must be a number of bytes, got {value!r}") from None
    if cap <= 0:
        raise PyCaffe2Error(f"${variable} must be positive, got {cap}")
    return cap


def max_file_bytes() -> int:
    return _cap("PYCAFFE2_MAX_FILE_BYTES", 4 << 30)


def max_blob_bytes() -> int:
    return _cap("PYCAFFE2_MAX_BLOB_BYTES", 4 << 30)


def check_alloc(shape, dtype, what: str = "the output") -> tuple:
    """Refuse a blob of this shape over the blob cap before anything allocates it: a
    size read from a file (args, or input values) must not become a MemoryError or the
    OOM killer half-way through a run. Returns the shape as Python ints."""
    shape = tuple(int(d) for d in shape)
    try:
        itemsize, name = np.dtype(dtype).itemsize, np.dtype(dtype).name
    except TypeError:  # a type NumPy does not know: count 8 bytes an element
        itemsize, name = 8, str(dtype)
    size, cap = math.prod(shape) * itemsize, max_blob_bytes()  # Python ints: no overflow
    if size > cap:
        raise ShapeError(f"{what} would be {list(shape)} {name}, {size:,} bytes, over the "
                         f"{cap:,}-byte cap (raise it with $PYCAFFE2_MAX_BLOB_BYTES)")
    return shape


def max_feed_bytes() -> int:
    return _cap("PYCAFFE2_MAX_FEED_BYTES", 4 << 30)


def _fail(error: type[PyCaffe2Error], path, message: str) -> PyCaffe2Error:
    if issubclass(error, LocatedError):
        return error(message, file=str(path))
    return error(f"{path}: {message}")


def is_folder(path) -> bool:
    """Whether `path` is a folder; a name too long to stat, or with a NUL byte, is not
    one (reading it as a file then says why)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def check_regular_file(path, error: type[PyCaffe2Error], limit: int | None = None) -> int:
    """The size of `path`, a regular file (symlinks followed) of at most `limit`
    bytes; anything else raises `error` naming the file."""
    limit = max_file_bytes() if limit is None else limit
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _fail(error, path, f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # an embedded NUL byte in the name
        raise _fail(error, path, f"cannot read: {exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(error, path, "is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(error, path, "is not a regular file (a device, FIFO or socket); only regular "
                    "files are read")
    if info.st_size > limit:
        raise _fail(error, path, f"is {info.st_size:,} bytes, over the {limit:,}-byte cap "
                    "(raise it with $PYCAFFE2_MAX_FILE_BYTES)")
    return info.st_size


def read_regular_file(path, error: type[PyCaffe2Error], limit: int | None = None) -> bytes:
    """The bytes of `path` under the rules of check_regular_file."""
    limit = max_file_bytes() if limit is None else limit
    size = check_regular_file(path, error, limit)
    try:
        with open(Path(path), "rb") as stream:
            data = stream.read(size + 1)  # read(n) allocates n bytes: never ask for the cap
            while len(data) <= limit:  # a file that grows underneath: on, up to the cap
                more = stream.read(min(1 << 20, limit + 1 - len(data)))
                if not more:
                    break
                data += more
    except OSError as exc:
        raise _fail(error, path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _fail(error, path, f"grew past the {limit:,}-byte cap while being read")
    return data


# ---------------------------------------------------------------- NumPy arrays

# What a damaged .npy/.npz can make the standard library or NumPy raise.
_ARRAY_FAULTS = (OSError, ValueError, EOFError, KeyError, TypeError, OverflowError,
                 NotImplementedError, SyntaxError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
                 struct.error, tokenize.TokenError,  # an old header NumPy re-tokenizes
                 RuntimeError)  # an encrypted zip member


def read_npy(path, error: type[PyCaffe2Error]) -> np.ndarray:
    """The array in an .npy file, its header checked before any allocation:
    no Python objects, no more bytes than the file holds, none past
    max_feed_bytes()."""
    size = check_regular_file(path, error)
    try:
        with open(Path(path), "rb") as stream:
            return _read_array(stream, size, error, str(path))
    except PyCaffe2Error:
        raise
    except _ARRAY_FAULTS as exc:
        raise _fail(error, path, f"not a readable .npy file: {_brief(exc)}") from None


class NpzArchive:
    """An .npz file open for reading arrays one by one, each checked as read_npy
    checks, and all of them together kept under max_feed_bytes().

        with NpzArchive(path, RunError) as npz:
            npz.files, npz["X"]
    """

    def __init__(self, path, error: type[PyCaffe2Error]):
        self.path, self.error, self.loaded = str(path), error, 0
        check_regular_file(path, error)
        try:
            self._stream = open(Path(path), "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise _fail(error, path, f"cannot read: {exc.strerror or exc}") from None
        try:
            self._zip = zipfile.ZipFile(self._stream)
            names = [info.filename for info in self._zip.infolist()]
        except _ARRAY_FAULTS as exc:
            self._stream.close()
            raise _fail(error, path, f"not a readable .npz file: {_brief(exc)}") from None
        self.files = [name[:-4] for name in names if name.endswith(".npy")]

    def __getitem__(self, name: str) -> np.ndarray:
        where = f"{self.path}:{name}"
        try:
            info = self._zip.getinfo(f"{name}.npy")
            with self._zip.open(info) as member:
                array = _read_array(member, info.file_size, self.error, where,
                                    max_feed_bytes() - self.loaded)
        except PyCaffe2Error:
            raise
        except _ARRAY_FAULTS as exc:
            raise _fail(self.error, where, f"not a readable array: {_brief(exc)}") from None
        self.loaded += array.nbytes
        return array

    def close(self) -> None:
        self._zip.close()
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def _read_array(stream, available: int, error, where: str, limit: int | None = None) -> np.ndarray:
    """One .npy stream of `available` bytes: header first, then the data it
    promises only when the stream can hold it and the cap allows it."""
    limit = max_feed_bytes() if limit is None else limit
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise _fail(error, where, f".npy format version {version[0]}.{version[1]} is not supported "
                    "(1.0 and 2.0 are)")
    shape, _, dtype = _HEADER_READERS[version](stream)
    if dtype.hasobject:
        raise _fail(error, where, "holds Python objects; only plain arrays are read (never pickles)")
    if any(d < 0 for d in shape):
        raise _fail(error, where, f"the header has a negative size in shape {list(shape)}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > limit:
        raise _fail(error, where, f"shape {list(shape)} of {dtype} is {nbytes:,} bytes, over the "
                    f"{max_feed_bytes():,}-byte feed cap (raise it with $PYCAFFE2_MAX_FEED_BYTES)")
    left = available - stream.tell()
    if nbytes > left:
        raise _fail(error, where, f"shape {list(shape)} of {dtype} needs {nbytes:,} bytes of data "
                    f"and the file holds {max(left, 0):,} (truncated?)")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def _brief(exc: BaseException) -> str:
    """An exception as a short single line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
