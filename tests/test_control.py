"""pycaffe2.control: Caffe2's loops and branches of execution steps, run as plans."""
import numpy as np
import pytest

from pycaffe2 import control, core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace


def counter(name: str, blob: str, step: float = 1.0) -> core.Net:
    """A net adding `step` to the float blob `blob` (ConstantFill'd to 0 by init())."""
    net = core.Net(name)
    net.Add([blob, net.Const(np.float32(step))], [blob])
    return net


def init(**values) -> core.Net:
    net = core.Net("init")
    for blob, value in values.items():
        if isinstance(value, bool):
            net.ConstantFill([], [blob], shape=[], value=value, dtype=core.DataType.BOOL)
        else:
            net.ConstantFill([], [blob], shape=[], value=float(value))
    return net


def condition(name: str, blob: str, limit: float) -> core.Net:
    """A condition net: blob < limit (its last external output)."""
    net = core.Net(name)
    net.AddExternalOutput(net.LT([blob, net.Const(np.float32(limit))]))
    return net


def run(*steps, **values) -> Workspace:
    plan = core.Plan("control_test")
    plan.AddStep(control.Do("init", init(**values)))
    for step in steps:
        plan.AddStep(step)
    workspace = Workspace("control")
    workspace.RunPlan(plan.Proto())
    return workspace


def value(workspace, blob) -> float:
    return float(workspace.FetchBlob(blob))


def test_do_and_do_parallel_run_each_net_once():
    ws = run(control.Do("seq", counter("a1", "a"), counter("a2", "a")),
             control.DoParallel("par", counter("b1", "b"), counter("c1", "c")), a=0, b=0, c=0)
    assert (value(ws, "a"), value(ws, "b"), value(ws, "c")) == (2.0, 1.0, 1.0)


def test_for_runs_its_body_n_times():
    ws = run(control.For("f", counter("f_body", "x"), 4), control.For("g", [counter("g_body", "y")], 0), x=0, y=0)
    assert value(ws, "x") == 4.0 and value(ws, "y") == 0.0


@pytest.mark.parametrize("start, runs", [(0, 5), (7, 0)])
def test_while_checks_first_and_do_while_after(start, runs):
    ws = run(control.While("w", condition("w_cond", "x", 5), counter("w_body", "x")),
             control.DoWhile("dw", condition("dw_cond", "y", 5), counter("dw_body", "y")), x=start, y=start)
    assert value(ws, "x") == start + runs
    assert value(ws, "y") == start + max(runs, 1)


def test_until_and_do_until_with_a_condition_blob():
    done_net = core.Net("done_net")
    done_net.GE(["x", done_net.Const(np.float32(3))], ["done"])
    ws = run(control.Until("u", "done", [counter("u_body", "x"), done_net]), x=0, done=False)
    assert value(ws, "x") == 3.0
    ws = run(control.DoUntil("du", "stop", counter("du_body", "x")), x=0, stop=True)
    assert value(ws, "x") == 1.0  # the blob is already true: one net, then the loop ends


@pytest.mark.parametrize("x, expected", [(1, (10.0, 0.0)), (9, (0.0, 20.0))])
def test_if_runs_one_branch(x, expected):
    cond = condition("if_cond", "x", 5)
    ws = run(control.If("if", cond, counter("then", "a", 10), counter("else", "b", 20)), x=x, a=0, b=0)
    assert (value(ws, "a"), value(ws, "b")) == expected
    ws = run(control.IfNot("ifnot", condition("ifnot_cond", "x", 5), counter("t2", "a", 10)), x=x, a=0)
    assert value(ws, "a") == (0.0 if x < 5 else 10.0)


def test_if_inside_a_loop_runs_on_every_pass():
    """only_once bounds one run of the If's step, not the loop's passes."""
    cond = condition("odd_cond", "i", 3)  # i < 3 on passes 0, 1, 2
    body = [control.If("inner", cond, counter("inner_then", "hits")), control.Do("tick", counter("tick", "i"))]
    ws = run(control.For("loop", body, 5), i=0, hits=0)
    assert value(ws, "i") == 5.0 and value(ws, "hits") == 3.0


def test_switch_runs_every_true_case():
    cases = [(condition("s1", "x", 5), counter("s1_body", "a")), (condition("s2", "x", 1), counter("s2_body", "b")),
             (condition("s3", "x", 9), counter("s3_body", "c"))]
    ws = run(control.Switch("sw", cases), x=3, a=0, b=0, c=0)
    assert (value(ws, "a"), value(ws, "b"), value(ws, "c")) == (1.0, 0.0, 1.0)
    ws = run(control.SwitchNot("swn", (condition("n1", "x", 5), counter("n1_body", "a"))), x=3, a=0)
    assert value(ws, "a") == 0.0


def test_condition_helpers():
    a, b = condition("ca", "x", 5), condition("cb", "x", 2)
    merged = control.MergeConditionNets("both", [a, b], "And")
    combined = control.CombineConditions("either", [a, b], "Or")
    assert len(merged.Proto().op) == len(a.Proto().op) + len(b.Proto().op) + 1
    ws = run(control.Do("conds", a, b, merged, combined), x=3)
    assert not ws.FetchBlob(str(control.GetConditionBlobFromNet(merged)))
    assert ws.FetchBlob(str(control.GetConditionBlobFromNet(combined)))
    with pytest.raises(PyCaffe2Error, match="must have at least one external output"):
        control.GetConditionBlobFromNet(core.Net("no_outputs"))
    with pytest.raises(ValueError, match="input cannot be empty"):
        control.Do("nothing")
    bools = control.BoolNet(("p", True), ("q", False))
    assert list(bools.Proto().external_output) == ["p", "q"]
