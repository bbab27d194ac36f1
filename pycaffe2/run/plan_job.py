"""Running a training plan: progress, Ctrl-C, checkpoints and resuming.

`PlanRun` runs a model file's plan (Caffe2 PlanDef) in a private workspace.
Its main loop is the first step that repeats (num_iter > 1, or a
should_stop_blob). While it runs, progress (`run/progress.py`: a tqdm bar on a
terminal, plain lines in a log) shows the iteration, the rate, the ETA and the
scalar external outputs of the loop's nets (its loss and accuracy on the
training batch, when the nets name them). Ctrl-C ends the run cleanly after
the current iteration (`interrupted`, `stopped` say where); a second Ctrl-C
stops at once. With a checkpoint folder, the loop's state (every blob its nets
read before writing it: weights, momenta, the iteration counter, running
statistics) is written every `save_every` iterations, on Ctrl-C and when the
loop ends, in the minidb format of Caffe2's Save op, atomically (a crash
mid-write leaves the previous checkpoint whole; `run/checkpoint.py`);
`resume` loads it and goes on from the iteration after the saved one, and
refuses when there is no checkpoint.

`data_roots` confines the files the plan's ops read and write (`run/confine.py`);
without it, as from Python by default, nothing is confined, as in Caffe2.
"""
from __future__ import annotations

import signal
import sys

import numpy as np

from pycaffe2 import netfile
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.executor.plan import PlanMonitor, StopPlan
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run import checkpoint as checkpoints
from pycaffe2.run.checkpoint import ITERATION_KEY  # noqa: F401 (its old home)
from pycaffe2.run.confine import check_data_paths
from pycaffe2.run.model import RunError, RunFailure, describe_missing_ops, missing_op_types, placed
from pycaffe2.run.progress import Progress


def main_loop(steps) -> caffe2_pb2.ExecutionStep | None:
    """The first step, depth first, that repeats."""
    for step in steps:
        if step.num_iter > 1 or step.should_stop_blob:
            return step
        found = main_loop(step.substep)
        if found is not None:
            return found
    return None


def loop_nets(step, nets: dict) -> list:
    """The nets a step runs, its substeps' included, in order."""
    return [nets[name] for name in step.network if name in nets] + [
        net for substep in step.substep for net in loop_nets(substep, nets)]


def carried_state(nets) -> list[str]:
    """Blobs the nets read before writing them: what one iteration hands the next."""
    written, state = set(), []
    for net in nets:
        for op in net.op:
            state.extend(name for name in op.input if name not in written and name not in state)
            written.update(op.output)
    return state


class PlanRun(PlanMonitor):
    """A model file's plan, ready to run with progress and checkpoints."""

    def __init__(self, path_or_model, iters: int | None = None, quiet: bool = False,
                 checkpoint: str | None = None, save_every: int | None = None, resume: bool = False,
                 seed: int | None = None, stream=None, device: str | None = None, data_roots=None,
                 allow_outside_paths: bool = False, progress_every_s: float = 10.0):
        self.model = path_or_model if isinstance(path_or_model, netfile.Model) else \
            netfile.load_model(path_or_model, allow_outside_paths=allow_outside_paths)
        if self.model.plan is None:
            raise RunError("the model has no plan")
        if (save_every or resume) and not checkpoint:
            raise RunError("--save-every and --resume need a checkpoint path (--checkpoint DIR)")
        self.plan = caffe2_pb2.PlanDef()
        self.plan.CopyFrom(self.model.plan)
        self.nets = {net.name: net for net in self.plan.network}
        for _, net in self.model.nets():
            if net.name and net.name not in self.nets:
                self.nets[net.name] = net
                self.plan.network.add().CopyFrom(net)
        moved: list[int] = []  # --device cpu turns cross-device copies into Copy: place first
        for net in self.plan.network:
            net.CopyFrom(placed(net, device, moved))
        self.moved_to_cpu = sum(moved)  # device options `device="cpu"` changed
        missing = missing_op_types(self.plan.network)
        if missing:
            raise RunError(describe_missing_ops(missing))
        if data_roots is not None:
            file = self.model.files.get("predict_net")
            check_data_paths([(file, net) for net in self.plan.network], data_roots)
        self.nets = {net.name: net for net in self.plan.network}
        self.loop = main_loop(self.plan.execution_step)
        if iters is not None:
            if self.loop is None:
                raise RunError("--iters: the plan has no step that repeats")
            self.loop.num_iter = iters
        nets = loop_nets(self.loop, self.nets) if self.loop is not None else []
        self.loop_net_names = [net.name for net in nets]
        self.state = carried_state(nets)
        self.metrics = [name for net in nets for name in net.external_output]
        self.quiet, self.stream = quiet, stream or sys.stderr
        self.checkpoint = checkpoints.checkpoint_path(checkpoint) if checkpoint else None
        if resume and not self.checkpoint.is_file():
            raise RunError(f"--resume: no checkpoint at {self.checkpoint}, so nothing to resume "
                           "(leave out --resume to start afresh)")
        self.save_every, self.resume, self.progress_every_s = save_every, resume, progress_every_s
        self.removed_temps = checkpoints.remove_stale_temps(self.checkpoint) if self.checkpoint else []
        if self.removed_temps and not quiet:
            print(f"removed {len(self.removed_temps)} unfinished checkpoint file(s) a killed run "
                  f"left: {', '.join(map(str, self.removed_temps))}", file=self.stream)
        self.workspace = Workspace("pycaffe2_plan", seed=seed)
        self.interrupted = False
        self.stopped: str | None = None
        self.last_iteration: int | None = None  # of the loop, counted from 0
        self.last_batch: dict[str, float] = {}  # the loop's scalar outputs after its last iteration
        self.saved_iteration: int | None = None  # what the checkpoint file covers, once written
        self.progress: Progress | None = None
        self._first = 0
        self._in_loop = False

    # --- PlanMonitor --------------------------------------------------------------------------
    def first_iteration(self, step) -> int:
        if step is not self.loop:
            return 0
        if self.resume:
            self._first = self._load_checkpoint()
        self._in_loop = True
        if not self.quiet:
            total = self.loop.num_iter if self.loop.HasField("num_iter") else None
            self.progress = Progress(self.loop.name or "loop", total, self._first, self.stream,
                                     self.progress_every_s)
        return self._first

    def iteration_done(self, step, iteration: int) -> None:
        if step is self.loop:
            self._loop_iteration_done(iteration)
            due = bool(self.save_every) and (iteration + 1) % self.save_every == 0
            if self.checkpoint is not None and (due or self.interrupted):
                self._save_checkpoint(iteration)
        elif self._in_loop:
            return  # a substep of the loop: Ctrl-C waits for the loop's iteration to end
        if self.interrupted:
            self._close_progress()
            total = f" of {step.num_iter}" if step is self.loop and step.HasField("num_iter") else ""
            raise StopPlan(f"interrupted: stopped after iteration {iteration + 1}{total} of step "
                           f"'{step.name}'")

    def step_done(self, step, last_iteration: int | None) -> None:
        if step is not self.loop:
            return
        self._in_loop = False
        if last_iteration is not None and last_iteration != self.last_iteration:
            self._loop_iteration_done(last_iteration)  # the iteration its stop blob ended
        if self.checkpoint is not None and self.last_iteration is not None \
                and self.saved_iteration != self.last_iteration:
            self._save_checkpoint(self.last_iteration)
        self._close_progress()

    def _loop_iteration_done(self, iteration: int) -> None:
        self.last_iteration = iteration
        self.last_batch = self.loop_metrics()
        if self.progress is not None:
            self.progress.update(iteration + 1, self.last_batch)

    # --- running --------------------------------------------------------------------------------
    def run(self) -> dict[str, np.ndarray]:
        """Run the plan; returns the predict net's external outputs (those that exist)."""
        try:  # Ctrl-C handling needs the main thread; elsewhere Ctrl-C stays Python's
            previous = signal.signal(signal.SIGINT, self._on_interrupt)
        except ValueError:
            previous = None
        try:
            self._execute()
        except StopPlan as stop:
            self.stopped = str(stop)
        except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread: at once
            self.interrupted = True
            current = self._first if self.last_iteration is None else self.last_iteration + 1
            where = f"during iteration {current + 1}" if self._in_loop else "outside the training loop"
            self.stopped = (f"interrupted {where}: stopped at once, mid-iteration, so no checkpoint "
                            "was written for it")
        except RunFailure:
            raise  # already says where (WorkerLost keeps its class)
        except PyCaffe2Error as exc:
            raise RunFailure(str(exc)) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._close_progress()
        names = [n for n in self.model.predict_net.external_output if n in self.workspace.blobs]
        return {name: self.workspace.FetchBlob(name) for name in names}

    def _execute(self) -> None:
        """Run the plan's steps (a subclass may run its loop elsewhere: distributed/plan_run.py)."""
        self.workspace.RunPlan(self.plan, monitor=self)

    def loop_metrics(self) -> dict[str, float]:
        """The loop's scalar outputs after an iteration, for progress and the summary."""
        return self._scalars(self.metrics)

    def _on_interrupt(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.interrupted = True
        # an iteration may never end (a While whose condition stays true): say how to stop now
        print("\npycaffe2 run: Ctrl-C: stopping after this iteration (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def _scalars(self, names) -> dict[str, float]:
        found = {}
        for name in names:
            value = self.workspace.blobs.get(name)
            if isinstance(value, (np.ndarray, np.generic)) and np.size(value) == 1 \
                    and np.asarray(value).dtype.kind in "biuf":
                found[name] = float(np.ravel(value)[0])
        return found

    def _save_checkpoint(self, iteration: int) -> None:
        blobs = {name: self.workspace.blobs[name] for name in self.state
                 if isinstance(self.workspace.blobs.get(name), np.ndarray)}
        checkpoints.save(self.checkpoint, blobs, iteration)
        self.saved_iteration = iteration

    def _load_checkpoint(self) -> int:
        blobs, iteration = checkpoints.load(self.checkpoint)
        for name, value in blobs.items():
            self.workspace.FeedBlob(name, value)
        self.saved_iteration = self.last_iteration = iteration
        if not self.quiet:
            print(f"resumed from {self.checkpoint} after iteration {iteration + 1}", file=self.stream)
        return iteration + 1

    # --- the summary ----------------------------------------------------------------------------
    def results_heading(self) -> str:
        """What the predict net's outputs are: held-out results, the last training batch, or
        results pycaffe2 cannot tell apart."""
        return results_heading(self.plan, self.model.predict_net.name, self.loop_net_names)


def _readers(nets) -> dict[str, str]:
    """{reader blob: db path} of the CreateDB ops of `nets`."""
    found = {}
    for net in nets:
        for op in net.op:
            if op.type == "CreateDB" and op.output:
                for arg in op.arg:
                    if arg.name == "db":
                        found[op.output[0]] = arg.s.decode("utf-8", "replace")
    return found


def results_heading(plan, predict_name: str, loop_names) -> str:
    """How the summary introduces the predict net's outputs after a plan."""
    nets = {net.name: net for net in plan.network}
    if predict_name in loop_names:
        return f"last training batch (net '{predict_name}' is the training loop's)"
    if predict_name not in nets or not _runs(plan.execution_step, predict_name):
        return f"outputs of net '{predict_name}' (the plan does not run it; as the plan left them)"
    readers = _readers(nets.values())

    def read(names) -> set:
        return {readers[i] for n in names if n in nets for op in nets[n].op for i in op.input if i in readers}
    predict_dbs, loop_dbs = read([predict_name]), read(loop_names)
    if predict_dbs and not predict_dbs & loop_dbs:
        return (f"held-out results (net '{predict_name}' reads {', '.join(sorted(predict_dbs))}, "
                "which training does not)")
    if predict_dbs:
        return (f"results of net '{predict_name}' on training data (it reads "
                f"{', '.join(sorted(predict_dbs & loop_dbs))}, as training does)")
    return f"results of net '{predict_name}' (pycaffe2 cannot tell whether its data were held out)"


def _runs(steps, name: str) -> bool:
    return any(name in step.network or _runs(step.substep, name) for step in steps)
