"""pycaffe2.net_builder: blocks built with `with`, as execution steps (ops.loop,
ops.If, ops.stop_if) and as If / While ops in Do scopes (ops.IfNet, ops.WhileNet)."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.net_builder import NetBuilder, ops


def run(builder) -> Workspace:
    plan = core.Plan("nb")
    plan.AddStep(core.to_execution_step(builder))
    workspace = Workspace("nb")
    workspace.RunPlan(plan.Proto())
    return workspace


def fetch(workspace, blob):
    return workspace.FetchBlob(str(blob)).item()


def test_loop_with_stop_if_and_if_steps():
    with NetBuilder() as nb:
        c, d = ops.Const(5), ops.Const(0)
        with ops.loop():
            ops.stop_if(ops.LE([c, ops.Const(0)]))
            ops.Add([c, ops.Const(-1)], [c])
            with ops.If(ops.GE([c, ops.Const(3)])):
                ops.Add([d, ops.Const(10)], [d])
    ws = run(nb)
    assert fetch(ws, c) == 0 and fetch(ws, d) == 20  # c went 4 and 3 while >= 3


def test_loop_with_a_count_and_elif_else():
    with NetBuilder() as nb:
        total, small, big = ops.Const(0), ops.Const(0), ops.Const(0)
        with ops.loop(6) as loop:
            ops.Add([total, loop.iter()], [total])
            with ops.If(ops.LT([loop.iter(), ops.Const(2)])) as branch:
                ops.Add([small, ops.Const(1)], [small])
            with branch.Else():
                ops.Add([big, ops.Const(1)], [big])
    ws = run(nb)
    assert (fetch(ws, total), fetch(ws, small), fetch(ws, big)) == (15, 2, 4)


def test_stop_guard_says_whether_it_stopped():
    with NetBuilder() as nb:
        with ops.stop_guard() as stopped:
            ops.stop_if(ops.Const(True))
            never = ops.Const(1)
        with ops.stop_guard() as ran:
            ops.stop_if(ops.Const(False))
    ws = run(nb)
    assert fetch(ws, stopped.has_stopped()) is True and fetch(ws, ran.has_stopped()) is False
    assert not ws.HasBlob(str(never))


@pytest.mark.parametrize("x, expected", [(0.5, 1.0), (1.5, 2.0), (-1.0, 0.0)])
def test_if_net_else_and_local_blobs(x, expected):
    with NetBuilder() as nb:
        ops.Const(0.0, blob_out="zero")
        ops.Const(1.0, blob_out="one")
        ops.Const(2.0, blob_out="two")
        ops.Const(x, blob_out="x")
        ops.Const(-5.0, blob_out="y")
        with ops.IfNet(ops.GT(["x", "zero"])):
            ops.Copy("x", "local")
            with ops.IfNet(ops.LE(["local", "one"])):
                ops.Copy("one", "y")
            with ops.Else():
                ops.Copy("two", "y")
        with ops.Else():
            ops.Copy("zero", "y")
    ws = run(nb)
    assert fetch(ws, "y") == expected and not ws.HasBlob("local")


def test_while_net_with_condition():
    with NetBuilder() as nb:
        ops.Const(0, blob_out="i")
        ops.Const(1, blob_out="prod")
        with ops.WhileNet():
            with ops.Condition():
                ops.Add(["i", ops.Const(1)], ["i"])
                ops.LE(["i", ops.Const(5)])
            ops.Mul(["prod", "i"], ["prod"])
    ws = run(nb)
    assert fetch(ws, "i") == 6 and fetch(ws, "prod") == 120


def test_control_ops_builder_makes_one_net_that_differentiates():
    with NetBuilder(_use_control_ops=True, initial_scope=["x"]) as nb:
        ops.Const(0.0, blob_out="zero")
        ops.Const(0.0, blob_out="y")
        with ops.IfNet(ops.GT(["x", "zero"])):
            ops.Sqr("x", "y")
        with ops.Else():
            ops.Scale("x", "y", scale=-3.0)
    nets = nb.get()
    assert len(nets) == 1
    net = nets[0]
    net.AddGradientOperators(["y"])
    for x, y, dx in ((2.0, 4.0, 4.0), (-2.0, 6.0, -3.0)):
        ws = Workspace("nb")
        ws.FeedBlob("x", np.array(x, np.float32))
        ws.RunNetOnce(net.Proto())
        assert (fetch(ws, "y"), fetch(ws, "x_grad")) == (y, dx)


def refused(words: str, build) -> None:
    with pytest.raises(PyCaffe2Error, match=words), NetBuilder():
        build()


def test_misuse_is_refused_clearly():
    def while_without_condition():
        with ops.WhileNet():
            ops.Const(1)

    def if_reading_nothing():
        with ops.IfNet(ops.Const(True)):
            ops.Copy("nowhere", "y")

    def endless_loop():
        with ops.loop():
            ops.Const(1)

    refused("ops.Else must follow an ops.IfNet block", ops.Else)
    refused("ops.Condition is used outside of ops.WhileNet", ops.Condition)
    refused("ops.WhileNet needs an ops.Condition block", while_without_condition)
    refused("reads blob.* nowhere, which are not defined before it", if_reading_nothing)
    refused("needs a stop condition", endless_loop)
    with pytest.raises(PyCaffe2Error, match="no NetBuilder is active"):
        ops.net()
    assert not hasattr(ops, "Relu")  # no active builder: attribute lookups fail quietly


def test_a_differentiated_loop_holding_an_if_validates_and_runs():
    """s = x^4 + y^2 + z^3 through a WhileNet of two passes holding an IfNet; the whole
    net, gradient ops and nested nets included, passes the checker."""
    from pycaffe2.schema.checker import check_net
    with NetBuilder(_use_control_ops=True) as nb:
        for blob, value in (("i", 0), ("one", 1), ("two", 2), ("x", 2.0), ("y", 3.0), ("z", 2.0)):
            ops.Copy(ops.Const(value), blob)
        with ops.WhileNet():
            with ops.Condition():
                ops.Add(["i", "one"], "i")
                ops.LE(["i", "two"])
            ops.Pow("x", "x", exponent=2.0)
            with ops.IfNet(ops.LT(["i", "two"])):
                ops.Pow("y", "y", exponent=2.0)
            with ops.Else():
                ops.Pow("z", "z", exponent=3.0)
        ops.Add(["x", "y"], "x_plus_y")
        ops.Add(["x_plus_y", "z"], "s")
    net = nb.get()[0]
    grads = net.AddGradientOperators(["s"])
    assert check_net(net.Proto()) == []
    ws = Workspace("nb")
    ws.RunNetOnce(net.Proto())
    got = {b: (fetch(ws, b), fetch(ws, grads[b])) for b in "xyz"}
    assert got == {"x": (16.0, 32.0), "y": (9.0, 6.0), "z": (8.0, 12.0)}
