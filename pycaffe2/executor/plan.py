"""Running a Caffe2 PlanDef: its nets, then its execution steps.

A step runs either its substeps (in order, or on threads when
`concurrent_substeps`) or its nets, `num_iter` times (1 when unset, or until
`should_stop_blob` says stop when only that is given). The stop blob, a
scalar bool, is read after every net and substep. A step with a stop blob
and `only_once` runs one iteration (Caffe2's rule: the stop blob may only cut
it short, as control.If's steps do); a substep marked `only_once` without a
stop blob (which Caffe2 refuses) runs in the first iteration of its parent only.

A `PlanMonitor` can watch the loops: it says where a step's loop starts
(resuming from a checkpoint), hears of every finished iteration, when it
may report progress, save a checkpoint or stop the plan by raising StopPlan,
and hears when a step's loop has ended (its count run out, or its stop blob).
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2


class StopPlan(Exception):
    """Raised by a monitor to end the plan after the current iteration."""


class PlanMonitor:
    """Hooks into a plan's loops; the default does nothing."""

    def first_iteration(self, step) -> int:
        return 0

    def iteration_done(self, step, iteration: int) -> None:
        pass

    def step_done(self, step, last_iteration: int | None) -> None:
        """The step's loop ended normally after `last_iteration` (None: it ran none)."""


def run_plan(workspace, plan, monitor: PlanMonitor | None = None) -> bool:
    """Create the plan's nets in `workspace` (replacing same-named ones) and run its steps."""
    if isinstance(plan, caffe2_pb2.ExecutionStep):
        plan = caffe2_pb2.PlanDef(name=plan.name, execution_step=[plan])
    for net in plan.network:
        workspace.CreateNet(net, overwrite=True)
    for step in plan.execution_step:
        _check_step(workspace, step)
    for step in plan.execution_step:
        run_step(workspace, step, monitor or PlanMonitor())
    return True


def _check_step(workspace, step) -> None:
    """Refuse a malformed step before anything runs."""
    if step.substep and step.network:
        raise PyCaffe2Error(f"execution step '{step.name}' has both substeps and nets")
    for name in step.network:
        if name not in workspace.nets:
            raise PyCaffe2Error(f"execution step '{step.name}' runs net '{name}', which the plan "
                                f"does not define and the workspace does not have")
    for substep in step.substep:
        _check_step(workspace, substep)


def _iterations(step) -> int:
    if step.HasField("num_iter"):
        return step.num_iter
    return (1 if step.only_once else sys.maxsize) if step.should_stop_blob else 1


def _should_stop(workspace, step) -> bool:
    if not step.should_stop_blob or step.should_stop_blob not in workspace.blobs:
        return False
    return bool(np.asarray(workspace.blobs[step.should_stop_blob]).reshape(-1)[0])


def run_step(workspace, step, monitor: PlanMonitor | None = None) -> None:
    """Run one execution step (and its substeps) in `workspace`."""
    monitor = monitor or PlanMonitor()
    last = None
    for iteration in range(monitor.first_iteration(step), _iterations(step)):
        last = iteration
        if _run_iteration(workspace, step, iteration, monitor):
            break
        monitor.iteration_done(step, iteration)
    monitor.step_done(step, last)


def _run_iteration(workspace, step, iteration: int, monitor) -> bool:
    """One pass over the step's substeps or nets; True when the stop blob says stop."""
    if not step.substep:
        for name in step.network:
            workspace.RunNet(name)
            if _should_stop(workspace, step):
                return True
        return False
    substeps = [s for s in step.substep if not (s.only_once and not s.should_stop_blob and iteration > 0)]
    if step.concurrent_substeps and len(substeps) > 1:
        with ThreadPoolExecutor(max_workers=len(substeps)) as pool:
            for future in [pool.submit(run_step, workspace, s, monitor) for s in substeps]:
                future.result()
        return _should_stop(workspace, step)
    for substep in substeps:
        run_step(workspace, substep, monitor)
        if _should_stop(workspace, step):
            return True
    return False
