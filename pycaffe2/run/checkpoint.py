"""A training plan's checkpoint file: writing, reading, and what a killed run left behind.

A checkpoint is a minidb (Caffe2's Save format) holding the loop's carried
state plus the number of the last iteration it covers. pycaffe2.db writes it
to a temporary file beside it (`.checkpoint.minidb.<pid>.<hex>.tmp`) and
renames that over the old one, so a run killed mid-write leaves the previous
checkpoint whole and a stray temporary file, which the next run that uses
the folder removes (those of processes still alive are left alone).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from pycaffe2 import db
from pycaffe2.errors import PyCaffe2Error, RunError

ITERATION_KEY = "pycaffe2/checkpoint_iteration"  # stored beside the state in a checkpoint
FILE_NAME = "checkpoint.minidb"


def checkpoint_path(folder) -> Path:
    return Path(folder) / FILE_NAME


def save(path: Path, blobs: dict, iteration: int) -> None:
    """Write `blobs` and the iteration they follow, atomically."""
    blobs = dict(blobs)
    blobs[ITERATION_KEY] = np.array([iteration], np.int64)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{path.parent}: cannot make the checkpoint folder: {exc.strerror or exc}") from None
    db.save_blobs(str(path), blobs)


def load(path: Path) -> tuple[dict, int]:
    """(blobs, the iteration they follow) of a checkpoint."""
    try:
        blobs = db.load_blobs(str(path))
    except PyCaffe2Error as exc:
        raise RunError(f"cannot resume: {exc}") from None
    if ITERATION_KEY not in blobs:
        raise RunError(f"{path}: not a pycaffe2 checkpoint (no {ITERATION_KEY})")
    return blobs, int(np.ravel(blobs.pop(ITERATION_KEY))[0])


def _temp_pattern(path: Path) -> re.Pattern:
    return re.compile(r"\." + re.escape(path.name) + r"\.(\d+)\.[0-9a-f]+\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or unknowable): leave its file alone
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that runs killed while writing `path` left; returns them."""
    pattern = _temp_pattern(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:  # no folder yet: nothing left behind
        return []
    removed = []
    for entry in sorted(entries):
        match = pattern.fullmatch(entry.name)
        if match is None or _alive(int(match.group(1))) or not entry.is_file() or entry.is_symlink():
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
