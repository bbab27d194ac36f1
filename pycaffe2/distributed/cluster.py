"""Where the workers come from: an embedded Dask LocalCluster, or a running cluster.

`workers_client(workers=N)` starts a LocalCluster of N worker processes (one
thread each, no dashboard) for the length of a `with`; `scheduler="tcp://..."`
connects to a running cluster instead; `client=` uses the caller's Client
and leaves it open. Without Dask installed, every entry point raises a
RunError that says how to install it. Nothing here opens a socket of its own:
every byte between processes travels through Dask.
"""
from __future__ import annotations

import contextlib
import logging
import signal

from pycaffe2.errors import RunError

INSTALL_HINT = "pip install 'pycaffe2[distributed]' (Dask's distributed scheduler)"
CONNECT_TIMEOUT_S = 20


def require_dask():
    """The `distributed` module, or a RunError naming the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise RunError(f"running on several workers needs Dask, which is not installed here ({exc}); "
                       f"{INSTALL_HINT}") from None
    return distributed


def check_workers(workers) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise RunError(f"workers (--workers) must be a whole number of at least 1, not {workers!r}")


@contextlib.contextmanager
def workers_client(workers: int | None = None, scheduler: str | None = None, client=None):
    """A dask.distributed Client for the run: the caller's, one on `scheduler`, or one
    on a LocalCluster of `workers` processes started here and stopped on exit."""
    check_workers(workers)
    if client is not None:
        yield client
        return
    distributed = require_dask()
    if scheduler is not None:
        try:
            own = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise RunError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with own:
            yield own
        return
    import dask
    # Ctrl-C reaches the whole process group: it is the driver's to act on
    with _interrupts_ignored(), dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
        cluster = distributed.LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as own:
        yield own


def _worker_environ() -> dict:
    """The environment Dask's nanny gives the embedded workers, less MALLOC_TRIM_THRESHOLD_:
    it turns off glibc's adaptive mmap threshold, so every large NumPy buffer becomes a fresh
    mmap (page faults on each op; ResNet-50 measured 1.67 s a batch of 4 without it, 2.4-2.7 s
    with it). The one-thread BLAS settings stay: each worker has one thread."""
    import dask
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


@contextlib.contextmanager
def _interrupts_ignored():
    """SIGINT ignored while the worker processes start: they inherit it (Python keeps an ignored
    SIGINT), so a Ctrl-C in the terminal stops the run through the driver (a training plan ends
    after its iteration, with its checkpoint) instead of killing the workers mid-call."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def worker_addresses(client) -> list[str]:
    """The addresses of the client's workers, in a stable order."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])
