"""Feeds cut into batches of rows: checked, planned, sliced lazily, joined back in order.

Every feed is split along its first axis, so all of them must have the same number
of rows. A feed may be a NumPy array (an .npy memory map included: a batch reads
only its own rows), a Dask array (its slice is computed where it is scored) or a
Zarr array or store path (read through `dask.array.from_zarr`). Nothing here copies
a whole feed: `rows_of` only reads shapes, `batch_slice` one batch's rows.
Results come back per batch and are joined along axis 0 in batch order; a fetched
blob whose first axis is not the batch's rows (a loss, a count) cannot be joined
and is refused by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pycaffe2.errors import RunError
from pycaffe2.files import check_regular_file

ZARR_HINT = "pip install zarr (Zarr stores are read through dask.array.from_zarr)"


@dataclass(frozen=True)
class BatchPlan:
    """`rows` rows cut into batches of `batch_size` (the last one may be shorter)."""

    rows: int
    batch_size: int

    @property
    def batches(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def bounds(self, index: int) -> tuple[int, int]:
        start = index * self.batch_size
        return start, min(start + self.batch_size, self.rows)

    def describe(self, index: int) -> str:
        start, stop = self.bounds(index)
        rows = f"row {start}" if stop - start == 1 else f"rows {start}-{stop - 1}"
        return f"batch {index} ({rows} of {self.rows})"


def plan_batches(rows: int, batch_size: int | None, workers: int) -> BatchPlan:
    """The batches for `rows` rows: `batch_size` rows each, or the rows split evenly
    over `workers` when no batch size is given."""
    check_batch_size(batch_size)
    if batch_size is None:
        batch_size = math.ceil(rows / max(workers, 1))
    return BatchPlan(rows, batch_size)


def check_batch_size(batch_size) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise RunError(f"batch size (--batch-size) must be a whole number of at least 1, not {batch_size!r}")


# ---------------------------------------------------------------- feeds

def _is_dask_array(value) -> bool:
    return type(value).__module__.startswith("dask.array") and hasattr(value, "chunks")


def _is_zarr(value) -> bool:
    if type(value).__module__.startswith("zarr"):
        return True
    return isinstance(value, (str, Path)) and str(value).rstrip("/").lower().endswith(".zarr")


def _from_zarr(name: str, store):
    try:
        import dask.array
        import zarr  # noqa: F401 (dask.array.from_zarr needs it)
    except ImportError as exc:
        raise RunError(f"feed '{name}': reading a Zarr store needs zarr and dask, not installed here "
                       f"({exc}); {ZARR_HINT}") from None
    try:
        return dask.array.from_zarr(store)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"feed '{name}': cannot open the Zarr array {store}: {exc}") from None


def as_batchable(name: str, value):
    """`value` as an array whose rows can be sliced lazily: a NumPy array or memory map
    as it is, a Dask array as it is, a Zarr array or store as a Dask array."""
    if _is_zarr(value):
        value = _from_zarr(name, value)
    elif isinstance(value, (np.generic, int, float, list, tuple)):
        value = np.asarray(value)
    if not (isinstance(value, np.ndarray) or _is_dask_array(value)):
        raise RunError(f"feed '{name}': a {type(value).__name__} is not an array to split into batches "
                       "(give a NumPy array, an .npy memory map, a Dask array or a Zarr store)")
    if value.dtype == object:
        raise RunError(f"feed '{name}': an array of Python objects cannot be fed")
    if value.ndim == 0:
        raise RunError(f"feed '{name}': a scalar has no rows to split into batches")
    if any(isinstance(size, float) and math.isnan(size) for size in value.shape):
        raise RunError(f"feed '{name}': the Dask array's shape {value.shape} is not known; "
                       "call compute_chunk_sizes() on it first")
    return value


def batchable_feeds(feeds) -> tuple[dict, int]:
    """({name: batchable array}, rows): every feed checked, all with the same rows."""
    if not isinstance(feeds, dict) or not feeds:
        raise RunError("batch inference needs feeds: a dict {blob name: array} with at least one array")
    arrays = {str(name): as_batchable(str(name), value) for name, value in feeds.items()}
    rows = {name: int(array.shape[0]) for name, array in arrays.items()}
    if len(set(rows.values())) > 1:
        listed = ", ".join(f"'{name}' {count}" for name, count in rows.items())
        raise RunError(f"feeds have different numbers of rows (first axis): {listed}; every feed is "
                       "split into the same batches of rows")
    count = next(iter(rows.values()))
    if count == 0:
        raise RunError(f"feed '{next(iter(rows))}' has no rows: nothing to score")
    return arrays, count


def batch_slice(array, start: int, stop: int):
    """Rows start..stop-1: a NumPy array of just those rows (a memory map reads only
    them), or a Dask array to compute where the batch is scored."""
    if isinstance(array, np.ndarray):
        return np.array(array[start:stop])  # a memory map's rows read now, as a plain array
    return array[start:stop]


def open_npy_rows(name: str, path: str) -> np.ndarray:
    """An .npy file memory-mapped read-only, so a batch reads only its rows."""
    check_regular_file(path, RunError, limit=1 << 62)  # mapped, not read: no size cap
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise RunError(f"--feed {name}: {path}: not a readable .npy file: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise RunError(f"--feed {name}: {path}: not a .npy file")
    return array


# ---------------------------------------------------------------- results

def check_rows(results: dict, plan: BatchPlan, index: int) -> None:
    """Refuse a fetched blob whose first axis is not the batch's rows: batches could
    not be joined back into one result per row."""
    start, stop = plan.bounds(index)
    for name, value in results.items():
        shape = getattr(value, "shape", None)
        if not isinstance(value, np.ndarray) or not shape or shape[0] != stop - start:
            what = f"shape {list(shape)}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
            raise RunError(f"fetched blob '{name}' is {what} for {plan.describe(index)}: its first axis is "
                           f"not the batch's {stop - start} rows, so batches cannot be joined; fetch "
                           "per-row blobs only (a loss or other per-batch value is refused)")


def join_batches(per_batch: list[dict]) -> dict[str, np.ndarray]:
    """The batches' results concatenated along axis 0, in batch order."""
    names = list(per_batch[0])
    return {name: np.concatenate([batch[name] for batch in per_batch], axis=0) for name in names}
