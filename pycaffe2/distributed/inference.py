"""Batch inference on Dask workers: `predict(model, feeds, ...)`.

The feeds are cut into batches of rows (`batches`); each batch is one Dask task that
carries its own rows (a Dask array's slice is computed on a worker instead), so when
a worker dies the scheduler still holds every batch and re-runs those it lost on the
others. The model travels once, as a worker plugin (`worker.ModelPlugin`); each
worker process loads it on its first batch and keeps it (`scoring`). At most
IN_FLIGHT_PER_WORKER batches per worker are in flight, so a big input is sliced as
the workers take it rather than all at once. Results are joined in batch order; the
call returns every row or raises.

Faults: a failing net raises its RunFailure, naming the batch, its rows and the op;
a worker lost mid-run is reported (warnings.warn, or `on_event`) with the batches
re-run; when Dask gives up on a batch (KilledWorker: workers kept dying running it),
when no worker is left for NO_WORKERS_GRACE_S, or when the scheduler is lost, the
call raises WorkerLost naming the batches not scored. Every wait on Dask wakes at
least every POLL_S seconds to check the cluster.
"""
from __future__ import annotations

import time
import uuid
import warnings

from pycaffe2.distributed.batches import (
    _is_dask_array,
    batch_slice,
    batchable_feeds,
    check_batch_size,
    join_batches,
    plan_batches,
)
from pycaffe2.distributed.cluster import (
    CONNECT_TIMEOUT_S,
    check_workers,
    require_dask,
    worker_addresses,
    workers_client,
)
from pycaffe2.distributed.scoring import model_spec
from pycaffe2.errors import PyCaffe2Error, RunError, RunFailure, WorkerLost

POLL_S = 1.0
NO_WORKERS_GRACE_S = 30.0
IN_FLIGHT_PER_WORKER = 2


def predict(model, feeds, fetch=None, client=None, batch_size: int | None = None, workers: int | None = None,
            scheduler: str | None = None, init=None, device: str | None = None, optimize: bool = False,
            on_batch=None, on_event=None, *, random_init: bool = False, out_channels=None,
            seed: int | None = None, dag_workers: int | None = None, data_roots=None,
            allow_outside_paths: bool = False) -> dict:
    """Score `feeds` on Dask workers in batches of rows; {blob: array} for `fetch`
    (default: the predict net's external outputs), joined along axis 0 in row order.

    `model`: what ModelRunner takes (a model file, folder or net file, a netfile.Model,
    a NetDef); `feeds`: {blob: NumPy array, .npy memory map, Dask array or Zarr store},
    all split along axis 0 into batches of `batch_size` rows (default: the rows split
    evenly over the workers). The workers: `client` (left open), a running cluster at
    `scheduler`, or a LocalCluster of `workers` processes (default 1) started and stopped
    here. `on_batch(index, start, stop, worker)` is called as each batch comes back;
    `on_event(line)` gets the fault report (default: warnings.warn). `init`, `device`,
    `optimize`, `random_init`, `out_channels`, `seed`, `dag_workers`, `data_roots`: as
    ModelRunner's. seed=None derives a seed from the model's bytes, so that every worker
    makes the same weights when an init net has random fills.

    Fetched blobs whose first axis is not the batch (a loss) are refused: RunError.
    The results equal a single-process run of the same batches bit for bit; against one
    run of all rows, to rounding (BLAS sums in another order for another batch shape).
    """
    require_dask()
    check_workers(workers)
    check_batch_size(batch_size)
    if workers is not None and (scheduler is not None or client is not None):
        raise RunError("workers (--workers) starts a local cluster; a scheduler (--scheduler) or client "
                       "uses a running one: give one of them")
    arrays, rows = batchable_feeds(feeds)
    spec = model_spec(model, fetch, init, random_init=random_init, out_channels=out_channels, seed=seed,
                      device=device, optimize=optimize, dag_workers=dag_workers, data_roots=data_roots,
                      allow_outside_paths=allow_outside_paths)
    with workers_client(workers, scheduler, client) as dask_client:
        count = _wait_for_workers(dask_client, scheduler)
        plan = plan_batches(rows, batch_size, count)
        return _BatchRun(dask_client, spec, arrays, plan, on_batch, on_event).run()


def _wait_for_workers(client, scheduler) -> int:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise RunError(f"no Dask worker joined the scheduler{f' at {scheduler}' if scheduler else ''} "
                       f"within {CONNECT_TIMEOUT_S} s") from None
    return len(worker_addresses(client))


class _BatchRun:
    """One predict call's batches on the cluster: submitted a window at a time,
    collected in any order, stored by index."""

    def __init__(self, client, spec, arrays: dict, plan, on_batch, on_event):
        from pycaffe2.distributed.worker import ModelPlugin
        self.client, self.spec, self.arrays, self.plan = client, spec, arrays, plan
        self.on_batch, self.on_event = on_batch, on_event
        self.plugin = ModelPlugin(spec)
        self.run_id = uuid.uuid4().hex[:8]
        self.results: list = [None] * plan.batches
        self.pending: dict = {}  # future -> batch index
        self.rerun: set[int] = set()  # batches a dying worker was running or holding
        self.seen_workers: set[str] = set()
        self.lost_workers: set[str] = set()
        self.workerless_since: float | None = None

    def run(self) -> dict:
        self.client.register_plugin(self.plugin)
        try:
            self._observe([])
            self._score_all()
        finally:
            self.client.cancel(list(self.pending))
            self.pending.clear()
            try:
                self.client.unregister_worker_plugin(self.plugin.name)
            except (OSError, ValueError, KeyError):  # a lost scheduler: nothing to unregister
                pass
        self._report()
        return join_batches(self.results)

    def _score_all(self) -> None:
        import distributed
        upcoming = 0
        while upcoming < self.plan.batches or self.pending:
            window = max(2, IN_FLIGHT_PER_WORKER * len(self.seen_workers - self.lost_workers))
            while upcoming < self.plan.batches and len(self.pending) < window:
                self._submit(upcoming)
                upcoming += 1
            try:
                done, _ = distributed.wait(list(self.pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                self._observe([])
                continue
            except distributed.client.FuturesCancelledError as exc:
                lost = sorted(self.pending.values())
                raise WorkerLost(f"Dask cancelled batches of this run ({exc}); not scored: "
                                 f"{self._describe(lost)}") from None
            self._collect(done)

    def _submit(self, index: int) -> None:
        from pycaffe2.distributed.worker import score_on_worker
        start, stop = self.plan.bounds(index)
        parts = []
        for array in self.arrays.values():
            part = batch_slice(array, start, stop)
            parts.append(self.client.compute(part) if _is_dask_array(part) else part)
        future = self.client.submit(score_on_worker, self.plugin.name, self.plan, index, tuple(self.arrays),
                                    *parts, key=f"pycaffe2-batch-{self.run_id}-{index}", pure=False)
        self.pending[future] = index

    def _collect(self, done) -> None:
        suspicious = self._observe([future.key for future in done])
        for future in done:
            index = self.pending.pop(future)
            if suspicious.get(future.key):
                self.rerun.add(index)
            if future.status != "finished":
                self._fail(future, index)
            results, where = future.result()
            self.results[index] = results
            if self.on_batch is not None:
                start, stop = self.plan.bounds(index)
                self.on_batch(index, start, stop, where)

    def _fail(self, future, index: int):
        from distributed.scheduler import KilledWorker
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            others = sorted(set(self.pending.values()) | {index})
            raise WorkerLost(f"{self.plan.describe(index)}: Dask gave up on it after {exc.allowed_failures + 1} "
                             f"worker(s) died running it (the last {exc.last_worker.address}); not scored: "
                             f"{self._describe(others)}") from None
        if isinstance(exc, PyCaffe2Error):
            raise exc.with_traceback(None) from None
        raise RunFailure(f"{self.plan.describe(index)}: {type(exc).__name__}: {exc}") from None

    def _observe(self, keys) -> dict:
        """{key: times a dying worker held it} for `keys`; notes workers that came and went,
        and raises WorkerLost when the scheduler is gone or no worker is left."""
        from pycaffe2.distributed.worker import scheduler_view
        try:
            suspicious, workers = self.client.run_on_scheduler(scheduler_view, keys=keys)
        except (OSError, TimeoutError) as exc:
            raise WorkerLost(f"lost the Dask scheduler ({type(exc).__name__}: {exc}); not scored: "
                             f"{self._describe(sorted(self.pending.values()))}") from None
        self.lost_workers |= self.seen_workers - set(workers)
        self.seen_workers |= set(workers)
        if workers:
            self.workerless_since = None
        elif self.workerless_since is None:
            self.workerless_since = time.monotonic()
        elif time.monotonic() - self.workerless_since > NO_WORKERS_GRACE_S:
            unscored = [index for index, result in enumerate(self.results) if result is None]
            raise WorkerLost(f"no Dask worker left for {NO_WORKERS_GRACE_S:g} s (lost: "
                             f"{', '.join(sorted(self.lost_workers)) or 'none seen'}); not scored: "
                             f"{self._describe(unscored)}")
        return suspicious

    def _describe(self, indices, limit: int = 6) -> str:
        shown = [self.plan.describe(index) for index in indices[:limit]]
        more = len(indices) - limit
        return (", ".join(shown) or "none") + (f" and {more} more" if more > 0 else "")

    def _report(self) -> None:
        if not (self.lost_workers or self.rerun):
            return
        lost = ", ".join(sorted(self.lost_workers)) or "a worker"
        rerun = (f"{len(self.rerun)} batch(es) the lost worker(s) held were re-run on the others: "
                 f"{self._describe(sorted(self.rerun))}") if self.rerun else "none of this run's batches was on it"
        line = f"Dask worker(s) lost mid-run: {lost}; {rerun}; every row was scored"
        if self.on_event is not None:
            self.on_event(line)
        else:
            warnings.warn(line, RuntimeWarning, stacklevel=4)
