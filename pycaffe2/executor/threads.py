"""One thread count for a run: the BLAS/OpenMP pools NumPy's kernels use (through
threadpoolctl) and the most ops a `dag` net runs at once.

    from pycaffe2.executor import num_threads
    with num_threads(4):
        workspace.RunNet("net")

Outside `num_threads`, the libraries keep their own defaults (usually one BLAS
thread per core) and a dag net runs `num_workers` ops at once. `pycaffe2 run
--threads N` runs inside `num_threads(N)`.
"""
from __future__ import annotations

from contextlib import contextmanager

from pycaffe2.errors import PyCaffe2Error

LIMIT: int | None = None  # the count in force (None: the libraries' defaults); read by the dag runner


def check_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise PyCaffe2Error(f"the thread count must be a positive integer, got {count!r}")
    return count


@contextmanager
def num_threads(count: int | None):
    """Hold BLAS/OpenMP pools to `count` threads and dag nets to `count` ops at once
    while the block runs; None changes nothing. Nested blocks restore the outer count."""
    global LIMIT
    if count is None:
        yield
        return
    check_count(count)
    from threadpoolctl import threadpool_limits
    previous = LIMIT
    with threadpool_limits(limits=count):
        LIMIT = count
        try:
            yield
        finally:
            LIMIT = previous
