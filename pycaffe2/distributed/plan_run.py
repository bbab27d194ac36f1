"""A training plan whose loop runs data-parallel on Dask workers (`pycaffe2 run model.yaml --workers N`).

`DistributedPlanRun` is a `run.plan_job.PlanRun` whose loop step runs on a DataParallelTrainer
(`distributed/training.py`, split by `distributed/plan_split.py`); everything else is PlanRun's.
The driver keeps its own workspace: the steps before the loop run there as usual and make the
state; resuming loads the checkpoint there; that state goes to every replica. Progress lines
show the loss and accuracy averaged over the replicas. Checkpoints are written once, by the
driver, from replica 0's state (replicas are identical), in the single-process format, so a
single-process `--resume` goes on from a distributed run and the other way round. After the
loop the state comes back to the driver, which runs the steps after it (the held-out test).
The loop must be a top-level step of the plan. A worker lost mid-run stops the run with
WorkerLost: no checkpoint is written for the unfinished iterations, the last one stays whole.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.distributed.cluster import worker_addresses
from pycaffe2.distributed.plan_split import split_loop
from pycaffe2.distributed.training import DEFAULT_TIMEOUT_S, DataParallelTrainer
from pycaffe2.errors import RunError, WorkerLost
from pycaffe2.executor.plan import StopPlan, run_plan, run_step
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.plan_job import PlanRun


class DistributedPlanRun(PlanRun):
    """PlanRun with the loop on `client`'s workers (all of them, or `workers`)."""

    def __init__(self, path_or_model, *, client, workers: list[str] | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, **kwargs):
        super().__init__(path_or_model, **kwargs)
        self.client, self.timeout_s, self.seed = client, timeout_s, kwargs.get("seed")
        self.workers = list(workers) if workers is not None else worker_addresses(client)
        if self.loop is None:
            raise RunError("--workers: the plan has no step that repeats, so no training loop to split")
        steps = list(self.plan.execution_step)
        if not any(step is self.loop for step in steps):
            raise RunError(f"--workers: the training loop '{self.loop.name}' is nested in another step; "
                           "data-parallel training runs a loop that is a top-level step of the plan")
        self.split = split_loop(self.loop, self.nets, len(self.workers))
        self.trainer: DataParallelTrainer | None = None
        self.timings: dict = {}
        self._metrics: dict[str, float] = {}

    def _execute(self) -> None:
        steps = list(self.plan.execution_step)
        at = next(i for i, step in enumerate(steps) if step is self.loop)
        run_plan(self.workspace, caffe2_pb2.PlanDef(name=self.plan.name, network=self.plan.network,
                                                    execution_step=steps[:at]), self)
        self._run_loop()
        for step in steps[at + 1:]:
            run_step(self.workspace, step, self)

    def _run_loop(self) -> None:
        split = self.split
        first = self.first_iteration(self.loop)
        with DataParallelTrainer(self.client, split.reader_init, split.input_net, split.step_net,
                                 split.update_net, shard=split.shard, sync=split.sync, workers=self.workers,
                                 seed=self.seed, timeout_s=self.timeout_s, origins=split.origins) as trainer:
            self.trainer = trainer
            trainer.run_init()
            trainer.load_state(self._driver_arrays(self.state))
            trainer.iteration = first
            last = None
            try:
                for iteration in range(first, self.loop.num_iter):
                    self._metrics = self._step(trainer, iteration)
                    last = iteration
                    self.iteration_done(self.loop, iteration)
                self.step_done(self.loop, last)
                self._pull_state()
            except StopPlan:
                self._pull_state()  # an interrupted run reports from the state it reached
                raise
            finally:
                self.timings = dict(trainer.timings)
                self.trainer = None

    def _step(self, trainer, iteration: int) -> dict[str, float]:
        try:
            return trainer.step()
        except WorkerLost as exc:
            raise WorkerLost(f"{exc}; {self._lost(iteration)}") from None

    def _lost(self, iteration: int) -> str:
        """What the lost worker took with it: the iterations since the last checkpoint."""
        if self.checkpoint is None:
            return (f"{iteration} iteration(s) of training are lost: nothing was kept (run with "
                    "--checkpoint DIR --save-every K to keep the state)")
        if self.saved_iteration is None:
            return f"{iteration} iteration(s) are lost: no checkpoint was written yet to {self.checkpoint}"
        return (f"{iteration - self.saved_iteration - 1} iteration(s) since the checkpoint after iteration "
                f"{self.saved_iteration + 1} are lost; that checkpoint is whole")

    # --- PlanRun's hooks -------------------------------------------------------------------------------
    def loop_metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    def _save_checkpoint(self, iteration: int) -> None:
        self._pull_state()
        super()._save_checkpoint(iteration)

    # --- state between the driver and the replicas ----------------------------------------------------
    def _driver_arrays(self, names) -> dict:
        blobs = self.workspace.blobs
        return {name: blobs[name] for name in names if isinstance(blobs.get(name), np.ndarray)}

    def _pull_state(self) -> None:
        """Replica 0's carried state, and what the steps after the loop read, into the driver's workspace."""
        if self.trainer is None:
            return
        wanted = set(self.state) | set(self.metrics) | set(self.model.predict_net.external_output)
        for name, value in self.trainer.state(sorted(wanted)).items():
            self.workspace.FeedBlob(name, value)
