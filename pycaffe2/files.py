"""Reading files a user names, or a model file names, without surprises: only
regular files (a FIFO would hang, /dev/zero would never end), and never more
bytes than a cap, checked before reading and again while reading (a file that
grows underneath). Every loader reads through here.

    data = read_regular_file(path, NetFileError, limit=MAX_FILE_BYTES)

The caps come from the environment so a deployment can raise them:
PYCAFFE2_MAX_FILE_BYTES (net, model and DB files; default 4 GiB) and
PYCAFFE2_MAX_FEED_BYTES (a feed's arrays once decompressed; default 4 GiB).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from pycaffe2.errors import LocatedError, PyCaffe2Error


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


def max_feed_bytes() -> int:
    return _cap("PYCAFFE2_MAX_FEED_BYTES", 4 << 30)


def _fail(error: type[PyCaffe2Error], path, message: str) -> PyCaffe2Error:
    if issubclass(error, LocatedError):
        return error(message, file=str(path))
    return error(f"{path}: {message}")


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
    check_regular_file(path, error, limit)
    try:
        with open(Path(path), "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise _fail(error, path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _fail(error, path, f"grew past the {limit:,}-byte cap while being read")
    return data
