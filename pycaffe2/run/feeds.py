"""Feeds from the command line: `--feed NAME=PATH.npy` or `NAME=PATH.npz[:member]`
parsed into (blob name, array), with errors that name the feed and the file.
Arrays are read through pycaffe2.files: regular files only, headers checked
before anything is allocated, decompressed sizes under $PYCAFFE2_MAX_FEED_BYTES."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pycaffe2.files import NpzArchive, read_npy
from pycaffe2.run.int8_feeds import int8_from_npz
from pycaffe2.run.model import RunError, _hint


def parse_feed(spec: str) -> tuple[str, np.ndarray]:
    """'NAME=PATH.npy' or 'NAME=PATH.npz:member' (or 'NAME=PATH.npz' holding NAME
    or one array) -> (NAME, array); an Int8Tensor where the .npz holds the member's
    quantization beside it, as `--out` writes an Int8 blob (run.int8_feeds)."""
    name, sep, where = spec.partition("=")
    if not sep or not name or not where:
        raise RunError(f"bad --feed '{spec}': expected NAME=PATH.npy or NAME=PATH.npz:member")
    path, member = where, None
    head, colon, tail = where.rpartition(":")
    if colon and head.lower().endswith(".npz"):
        path, member = head, tail
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise RunError(f"bad --feed '{spec}': {path} is not a .npy or .npz file")
    try:
        if suffix == ".npy":
            return name, read_npy(path, RunError)
        with NpzArchive(path, RunError) as archive:
            return name, _npz_member(archive, name, member, path)
    except RunError as exc:
        raise RunError(f"--feed {name}: {exc}") from None


def _npz_member(archive, name, member, path) -> np.ndarray:
    members = list(archive.files)
    if member is None:
        if name in members:
            member = name
        elif len(members) == 1:
            member = members[0]
        elif len(members) == 3 and len(int8 := _int8_members(members)) == 1:
            member = int8[0]  # one Int8 blob as --out writes it: NAME, NAME_scale, NAME_zero_point
        else:
            raise RunError(f"{path} holds {len(members)} arrays; pick one "
                           f"with {name}={path}:MEMBER (members: {', '.join(members)})")
    if member not in members:
        raise RunError(f"{path} has no array '{member}'"
                       + _hint(member, members) + f" (members: {', '.join(members) or 'none'})")
    int8 = int8_from_npz(archive, member, path)
    return archive[member] if int8 is None else int8


def _int8_members(members: list) -> list:
    return [m for m in members if f"{m}_scale" in members and f"{m}_zero_point" in members]
