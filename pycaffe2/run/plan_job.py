"""Running a training plan: progress, Ctrl-C, checkpoints and resuming.

`PlanRun` runs a model file's plan (Caffe2 PlanDef) in a private workspace.
Its main loop is the first step that repeats (num_iter > 1, or a
should_stop_blob). While it runs, a progress line shows the iteration, the
rate and the scalar external outputs of the loop's nets (its loss and
accuracy, when the nets name them). Ctrl-C ends the run cleanly after the
current iteration and says where it stopped. With a checkpoint path, the
loop's state (every blob its nets read before writing it: weights, momenta,
the iteration counter, running statistics) is written every `save_every`
iterations, in the minidb format of Caffe2's Save op, atomically (a crash
mid-write leaves the previous checkpoint whole); `resume` loads it and goes on
from the iteration after the saved one.
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import numpy as np

from pycaffe2 import db, netfile
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.executor.plan import PlanMonitor, StopPlan
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.model import RunError, RunFailure, describe_missing_ops, missing_op_types, placed

ITERATION_KEY = "pycaffe2/checkpoint_iteration"  # stored beside the state in a checkpoint


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
                 seed: int | None = None, stream=None, device: str = "cpu"):
        self.model = path_or_model if isinstance(path_or_model, netfile.Model) else netfile.load_model(path_or_model)
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
        missing = missing_op_types(self.nets.values())
        if missing:
            raise RunError(describe_missing_ops(missing))
        for net in self.plan.network:
            net.CopyFrom(placed(net, device))
        self.nets = {net.name: net for net in self.plan.network}
        self.loop = main_loop(self.plan.execution_step)
        if iters is not None:
            if self.loop is None:
                raise RunError("--iters: the plan has no step that repeats")
            self.loop.num_iter = iters
        nets = loop_nets(self.loop, self.nets) if self.loop is not None else []
        self.state = carried_state(nets)
        self.metrics = [name for net in nets for name in net.external_output]
        self.quiet, self.stream = quiet, stream or sys.stderr
        self.checkpoint = Path(checkpoint) / "checkpoint.minidb" if checkpoint else None
        self.save_every, self.resume = save_every, resume
        self.workspace = Workspace("pycaffe2_plan", seed=seed)
        self.interrupted = False
        self.stopped: str | None = None
        self._start = self._last_report = 0.0
        self._first = 0

    # --- PlanMonitor --------------------------------------------------------------------------
    def first_iteration(self, step) -> int:
        if step is not self.loop:
            return 0
        self._start = time.perf_counter()
        if self.resume and self.checkpoint.exists():
            self._first = self._load_checkpoint()
        return self._first

    def iteration_done(self, step, iteration: int) -> None:
        if step is self.loop:
            due = bool(self.save_every) and (iteration + 1) % self.save_every == 0
            if self.checkpoint is not None and (due or self.interrupted):
                self._save_checkpoint(iteration)
            self._report(iteration + 1)
        if self.interrupted:
            raise StopPlan(f"interrupted: stopped after iteration {iteration + 1} of step '{step.name}'")

    # --- running --------------------------------------------------------------------------------
    def run(self) -> dict[str, np.ndarray]:
        """Run the plan; returns the predict net's external outputs (those that exist)."""
        try:  # Ctrl-C handling needs the main thread; elsewhere Ctrl-C stays Python's
            previous = signal.signal(signal.SIGINT, self._on_interrupt)
        except ValueError:
            previous = None
        try:
            self.workspace.RunPlan(self.plan, monitor=self)
        except StopPlan as stop:
            self.stopped = str(stop)
        except PyCaffe2Error as exc:
            raise RunFailure(str(exc)) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if not self.quiet and self.loop is not None:
                print(file=self.stream)
        names = [n for n in self.model.predict_net.external_output if n in self.workspace.blobs]
        return {name: self.workspace.FetchBlob(name) for name in names}

    def _on_interrupt(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.interrupted = True

    def _report(self, done: int) -> None:
        now = time.perf_counter()
        total = self.loop.num_iter if self.loop.HasField("num_iter") else None
        if self.quiet or (now - self._last_report < 0.2 and done != total):
            return
        self._last_report = now
        rate = (done - self._first) / max(now - self._start, 1e-9)
        parts = [f"{self.loop.name} {done}" + (f"/{total}" if total else ""), f"{rate:.1f} it/s"]
        for name in self.metrics:
            value = self.workspace.blobs.get(name)
            if isinstance(value, (np.ndarray, np.generic)) and np.size(value) == 1:
                parts.append(f"{name} {float(np.ravel(value)[0]):.4g}")
        end = "\n" if not self.stream.isatty() else ""
        print(("\r" if self.stream.isatty() else "") + "  ".join(parts), end=end, file=self.stream, flush=True)

    def _save_checkpoint(self, iteration: int) -> None:
        blobs = {name: self.workspace.blobs[name] for name in self.state
                 if isinstance(self.workspace.blobs.get(name), np.ndarray)}
        blobs[ITERATION_KEY] = np.array([iteration], np.int64)
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        db.save_blobs(str(self.checkpoint), blobs)

    def _load_checkpoint(self) -> int:
        blobs = db.load_blobs(str(self.checkpoint))
        if ITERATION_KEY not in blobs:
            raise RunError(f"{self.checkpoint}: not a pycaffe2 checkpoint (no {ITERATION_KEY})")
        iteration = int(blobs.pop(ITERATION_KEY)[0])
        for name, value in blobs.items():
            self.workspace.FeedBlob(name, value)
        if not self.quiet:
            print(f"resumed from {self.checkpoint} after iteration {iteration + 1}", file=self.stream)
        return iteration + 1
