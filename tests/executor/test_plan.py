"""Plans: nets run by execution steps, num_iter, substeps, should_stop_blob."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace


def counter_plan(num_iter=None, stop_at=None, concurrent=False):
    init = core.Net("init")
    init.ConstantFill([], "it", shape=[1], value=0, dtype=10)  # INT64
    init.ConstantFill([], "x", shape=[2], value=1.0)
    step_net = core.Net("step")
    step_net.Iter("it", "it")
    step_net.Scale("x", "x", scale=2.0)
    plan = core.Plan("count")
    plan.AddStep(core.ExecutionStep("init", init))
    loop = core.ExecutionStep("loop", step_net, num_iter)
    if stop_at is not None:
        step_net.GE(["it", "limit"], "stop", broadcast=1)
        loop.SetShouldStopBlob("stop")
    plan.AddStep(loop)
    return plan


def test_num_iter_runs_the_net_that_many_times():
    workspace = Workspace()
    workspace.RunPlan(counter_plan(num_iter=5).Proto())
    assert workspace.FetchBlob("it").tolist() == [5]
    np.testing.assert_allclose(workspace.FetchBlob("x"), [32, 32])


def test_should_stop_blob_ends_an_open_ended_step():
    workspace = Workspace()
    workspace.FeedBlob("limit", np.array([3], np.int64))
    workspace.RunPlan(counter_plan(stop_at=3).Proto())
    assert workspace.FetchBlob("it").tolist() == [3]


def test_substeps_only_once_and_concurrency():
    a, b = core.Net("a"), core.Net("b")
    a.Scale("x", "x", scale=2.0)
    b.Scale("y", "y", scale=3.0)
    outer = core.ExecutionStep("outer", num_iter=3)
    once = core.ExecutionStep("once", a)
    once.Proto().only_once = True
    outer.AddSubstep(once)
    outer.AddSubstep(core.ExecutionStep("every", b))
    outer.SetConcurrentSubsteps(True)
    plan = core.Plan("p")
    plan.AddStep(outer)
    workspace = Workspace()
    workspace.FeedBlob("x", np.ones(1, np.float32))
    workspace.FeedBlob("y", np.ones(1, np.float32))
    workspace.RunPlan(plan.Proto())
    assert workspace.FetchBlob("x").tolist() == [2.0] and workspace.FetchBlob("y").tolist() == [27.0]


def test_a_step_naming_an_unknown_net_is_refused_before_anything_runs():
    plan = counter_plan(num_iter=2).Proto()
    plan.execution_step[1].network[0] = "stpe"
    workspace = Workspace()
    with pytest.raises(PyCaffe2Error, match="runs net 'stpe'"):
        workspace.RunPlan(plan)
    assert not workspace.HasBlob("it")


@pytest.mark.parametrize("num_iter, stop_at, last", [(4, None, 3), (None, 3, 2), (0, None, None)])
def test_a_monitor_hears_where_each_loop_ended(num_iter, stop_at, last):
    from pycaffe2.executor.plan import PlanMonitor

    class Ends(PlanMonitor):
        def __init__(self):
            self.ended, self.iterations = [], []

        def iteration_done(self, step, iteration):
            self.iterations.append((step.name, iteration))

        def step_done(self, step, last_iteration):
            self.ended.append((step.name, last_iteration))
    workspace, monitor = Workspace(), Ends()
    workspace.FeedBlob("limit", np.array([3], np.int64))
    workspace.RunPlan(counter_plan(num_iter=num_iter, stop_at=stop_at).Proto(), monitor=monitor)
    assert monitor.ended == [("init", 0), ("loop", last)]
    # the iteration a stop blob ends is not "done": it stopped part way
    assert [i for name, i in monitor.iterations if name == "loop"] == list(range(last if stop_at else num_iter))
