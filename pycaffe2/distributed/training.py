"""Data-parallel training on Dask: N replicas of one training step, gradients averaged every step.

Each replica is a pycaffe2 Workspace held by a Dask actor on one worker. An iteration: every
replica runs the input net (it reads the whole batch, as one process would, so every reader
stays at the same place), keeps its shard of the rows of the `shard` blobs (replica k of N keeps
rows [k*B//N, (k+1)*B//N)), and runs the step net (forward and backward on its shard). The driver
gathers the `sync` blobs (gradients, and running statistics the step updates), averages them
weighted by each replica's rows (when the loss is a mean over rows this is the gradient of the
whole batch), and sends the average back; every replica writes it and runs the update net (the
optimizer). The update sees identical inputs everywhere, so parameters stay identical. Integer
sync blobs (iteration counters) are identical by construction and are never averaged.

The all-reduce is a star through Dask actor calls (no sockets of our own); `timings` splits the
wall time into compute (the slowest replica's time in its nets) and communication (the rest:
transfers, the averaging, Dask's overhead). A worker that dies raises WorkerLost naming it and the
iteration; an op failing on a replica raises RunFailure with the worker and the executor's text
(net, op index and type); no wait is longer than `timeout_s`.
"""
from __future__ import annotations

import time

import numpy as np

from pycaffe2.distributed.cluster import require_dask, worker_addresses
from pycaffe2.errors import OpFailure, PyCaffe2Error, RunError, RunFailure, WorkerLost

DEFAULT_TIMEOUT_S = 600.0
_LOST_WORKER = "Worker holding Actor was lost"  # Dask's text for a call to a dead actor


class Replica:
    """One replica's Workspace, living in a Dask actor on its worker."""

    def __init__(self, index: int, count: int, nets: dict, shard, sync, seed, origins=None):
        from pycaffe2.executor import Workspace
        from pycaffe2.proto import caffe2_pb2
        self.index, self.count = index, count
        self.nets = {key: None if data is None else caffe2_pb2.NetDef.FromString(data)
                     for key, data in nets.items()}  # NetDefs travel as bytes: Dask cannot pickle them
        self.shard, self.sync, self.origins = list(shard), list(sync), origins
        self.workspace = Workspace(f"replica_{index}", seed=seed)
        self.created = False

    def run_init(self) -> list[str]:
        """Run the init net (if any); the names of the array blobs it left."""
        if self.nets["init"] is None:
            return []
        with _plain_errors(self.origins):
            self.workspace.RunNetOnce(self.nets["init"])
        return [name for name, value in self.workspace.blobs.items() if isinstance(value, np.ndarray)]

    def arrays(self, names) -> dict:
        """The array blobs among `names` (others, such as DB readers, stay here)."""
        blobs = self.workspace.blobs
        return {name: blobs[name] for name in names if isinstance(blobs.get(name), np.ndarray)}

    def load(self, blobs: dict) -> None:
        for name, value in blobs.items():
            self.workspace.FeedBlob(name, value)

    def step(self) -> tuple[int, dict, dict, float]:
        """Input net, this replica's shard, step net: (rows, float sync blobs, scalar outputs, seconds)."""
        start = time.perf_counter()
        with _plain_errors(self.origins):
            self._create_nets()
            self.workspace.RunNet(self.nets["input"].name)
            rows = self._keep_shard()
            self.workspace.RunNet(self.nets["step"].name)
        synced = {name: value for name, value in self.arrays(self.sync).items() if value.dtype.kind in "fc"}
        return rows, synced, self._scalars(), time.perf_counter() - start

    def update(self, averaged: dict) -> float:
        """Write the averaged blobs, run the update net; the seconds it took."""
        start = time.perf_counter()
        self.load(averaged)
        with _plain_errors(self.origins):
            self.workspace.RunNet(self.nets["update"].name)
        return time.perf_counter() - start

    def fetch(self, name: str):
        with _plain_errors(self.origins):
            return self.workspace.FetchBlob(name)

    def _create_nets(self) -> None:
        if self.created:  # after the init net and any load: the readers exist by now
            return
        self.workspace.CreateNet(self.nets["input"], overwrite=True)
        batch = [name for op in self.nets["input"].op for name in op.output]
        for key in ("step", "update"):
            self.workspace.CreateNet(self.nets[key], overwrite=True, input_blobs=batch)
        self.created = True

    def _keep_shard(self) -> int:
        blobs, rows = self.workspace.blobs, None
        for name in self.shard:
            value = blobs.get(name)
            if not isinstance(value, np.ndarray) or value.ndim == 0:
                raise RunFailure(f"shard blob '{name}' is not an array with rows after the input net")
            if rows is not None and len(value) != rows:
                raise RunFailure(f"shard blobs have different row counts ({rows} and {len(value)} in '{name}')")
            rows = len(value)
        lo, hi = self.index * rows // self.count, (self.index + 1) * rows // self.count
        if hi == lo:
            raise RunFailure(f"a batch of {rows} row(s) cannot be split over {self.count} replicas: "
                             f"replica {self.index} would get none")
        for name in self.shard:
            blobs[name] = blobs[name][lo:hi]  # a view: kernels never write into arrays
        return hi - lo

    def _scalars(self) -> dict:
        found = {}
        for name in self.nets["step"].external_output:
            value = self.workspace.blobs.get(name)
            if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
                found[name] = float(value.reshape(-1)[0])
        return found


class _plain_errors:
    """An executor error leaves the actor as a RunFailure (one picklable message), not as an
    exception class whose constructor Dask cannot call again on the driver; a failing op is
    named where it came from (`origins`: per net, (net, op index) of each op) when known."""

    def __init__(self, origins=None):
        self.origins = origins or {}

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, PyCaffe2Error) or isinstance(exc, RunFailure):
            return False
        origin = self.origins.get(getattr(exc, "net_name", None))
        if isinstance(exc, OpFailure) and origin and exc.op_index < len(origin):
            net_name, index = origin[exc.op_index]
            raise RunFailure(str(OpFailure(net_name, index, exc.op_type, exc.inputs, exc.cause))) from None
        raise RunFailure(str(exc)) from None


class DataParallelTrainer:
    """N replicas of one training step on Dask workers (the module docstring says how)."""

    def __init__(self, client, init_net, input_net, step_net, update_net, *, shard, sync,
                 workers: list[str] | None = None, seed: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, origins: dict | None = None):
        require_dask()
        self.client, self.timeout_s = client, timeout_s
        self.workers = list(workers) if workers is not None else worker_addresses(client)
        if not self.workers:
            raise RunError("data-parallel training: the Dask cluster has no workers")
        if not shard:
            raise RunError("data-parallel training: no shard blobs (the input net's batch) were named")
        self.shard, self.sync = list(shard), list(sync)
        self.iteration = 0  # steps done
        self.timings = {"compute_s": 0.0, "communication_s": 0.0, "steps": 0}
        nets = {"init": init_net, "input": input_net, "step": step_net, "update": update_net}
        for key, net in nets.items():
            if key != "init" and not net.name:
                raise RunError(f"data-parallel training: the {key} net needs a name")
        nets = {key: None if net is None else net.SerializeToString() for key, net in nets.items()}
        self.actors, self._futures = [], []
        for index, address in enumerate(self.workers):
            replica_seed = None if seed is None else seed + index
            self._futures.append(client.submit(Replica, index, len(self.workers), nets, self.shard,
                                               self.sync, replica_seed, origins, actor=True,
                                               workers=[address], pure=False))
        self.actors = self._wait(self._futures, "starting the replicas")

    @property
    def replicas(self) -> int:
        return len(self.workers)

    # --- the contract ------------------------------------------------------------------------------
    def run_init(self) -> None:
        """Every replica runs the init net (its readers are its own); replica 0's arrays go to the others."""
        names = self._call("run_init", "running the init net")[0]
        if self.replicas > 1:
            self._load(self._call_one(0, "arrays", "fetching replica 0's state", names), skip_first=True)

    def step(self) -> dict[str, float]:
        """One iteration on every replica; the step net's scalar outputs, averaged over the rows."""
        start = time.perf_counter()
        where = f"iteration {self.iteration + 1}"
        results = self._call("step", where)
        rows = np.array([result[0] for result in results], dtype=np.float64)
        weights = rows / rows.sum()
        averaged = {name: _weighted_mean([result[1][name] for result in results], weights)
                    for name in results[0][1]}
        metrics = {name: float(sum(w * result[2][name] for w, result in zip(weights, results)))
                   for name in results[0][2]}
        update_start = time.perf_counter()
        update_seconds = self._call("update", where, averaged)
        end = time.perf_counter()
        compute = max(result[3] for result in results) + max(update_seconds)
        self.timings["compute_s"] += compute
        self.timings["communication_s"] += (update_start - start) + (end - update_start) - compute
        self.timings["steps"] += 1
        self.iteration += 1
        return metrics

    def run(self, iters: int, on_iteration=None) -> dict[str, float]:
        """`iters` steps; on_iteration(i, metrics) after each (i counted from 0 in this call)."""
        metrics: dict[str, float] = {}
        for i in range(iters):
            metrics = self.step()
            if on_iteration is not None:
                on_iteration(i, metrics)
        return metrics

    def fetch(self, name: str, replica: int = 0):
        return self._call_one(replica, "fetch", f"fetching '{name}'", name)

    def state(self, names) -> dict:
        """The arrays among `names` on replica 0 (blobs that are not arrays are left out)."""
        return self._call_one(0, "arrays", "fetching the state", list(names))

    def load_state(self, blobs: dict) -> None:
        """Feed the same arrays to every replica."""
        self._load(blobs)

    def close(self) -> None:
        """Release the actors (their workspaces go with them)."""
        futures, self._futures, self.actors = self._futures, [], []
        try:
            self.client.cancel(futures)
        except (OSError, RuntimeError):  # the cluster is gone already: nothing left to release
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- calls through Dask ----------------------------------------------------------------------
    def _load(self, blobs: dict, skip_first: bool = False) -> None:
        start = time.perf_counter()
        indices = range(1 if skip_first else 0, self.replicas)
        futures = [self.actors[i].load(blobs) for i in indices]
        self._wait(futures, "loading the state", list(indices))
        self.timings["communication_s"] += time.perf_counter() - start

    def _call(self, method: str, where: str, *args) -> list:
        """`method` on every replica at once; their answers in replica order."""
        if not self.actors:
            raise RunError("data-parallel training: the trainer is closed")
        futures = [getattr(actor, method)(*args) for actor in self.actors]
        return self._wait(futures, where, list(range(self.replicas)))

    def _call_one(self, index: int, method: str, where: str, *args):
        if not 0 <= index < self.replicas:
            raise RunError(f"replica {index} does not exist (there are {self.replicas})")
        return self._wait([getattr(self.actors[index], method)(*args)], where, [index])[0]

    def _wait(self, futures, where: str, indices=None) -> list:
        """Each future's result within one deadline; a dead worker or a failing op becomes one error."""
        deadline = time.monotonic() + self.timeout_s
        indices = indices if indices is not None else list(range(len(futures)))
        results = []
        for index, future in zip(indices, futures):
            worker = self.workers[index]
            try:
                results.append(future.result(timeout=max(deadline - time.monotonic(), 0.001)))
            except RunFailure as exc:
                raise RunFailure(f"worker {worker} (replica {index}), {where}: {exc}") from None
            except TimeoutError:
                raise RunFailure(f"worker {worker} (replica {index}) did not answer within "
                                 f"{self.timeout_s:g} s ({where})") from None
            except (OSError, RuntimeError) as exc:
                if isinstance(exc, OSError) or _LOST_WORKER in str(exc):
                    raise WorkerLost(f"worker {worker} (replica {index}) was lost during {where}: "
                                     f"{exc}") from None
                raise
        return results


def _weighted_mean(arrays: list, weights) -> np.ndarray:
    first = arrays[0]
    for other in arrays[1:]:
        if other.shape != first.shape:
            raise RunFailure(f"replicas disagree on a synced blob's shape ({first.shape} and {other.shape})")
    total = sum(w * a.astype(np.float64) for w, a in zip(weights, arrays))
    return total.astype(first.dtype)
