"""Stop-gradient on chosen parameters: each loss trains only its own group.

The net under test: a shared trunk (gln/*), a code head (code/*), an
explanation head (explanation/*), a region reg/* that reuses the code weights
on the explanation output under stop-gradient, and two losses: loss_a
compares the heads, loss_b compares the code head with the region's output.
loss_a may update only gln/*, loss_b only code/*, and nothing updates weights
through reg/*; the input X is data and keeps its gradient from both losses.
The reference is the net a TensorFlow user would write by hand: the region
reads private copies of the code weights, and each gradient is the
finite-difference derivative of exactly the losses allowed to reach it.
(test_parameter_groups.py holds the three-loss version of this net.)
"""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.executor import Workspace
from pycaffe2.gradient import BlockGradients, GetBackwardPass, only_update
from pycaffe2.gradient_checker import central_differences
from tests.gradient.marks import assert_backward_ops_marked

GROUPS = ("gln/*", "code/*", "explanation/*")
RULES = [only_update("gln/*", losses=["loss_a"]),
         only_update("code/*", losses=["loss_b"]),
         BlockGradients(list(GROUPS), ops="reg/*")]


def build(region_weights=("code/W", "code/b"), rules=True):
    net = core.Net("multi_loss")
    net.FC(["X", "gln/W", "gln/b"], "h0")
    net.Tanh("h0", "h")
    net.FC(["h", "code/W", "code/b"], "c0")
    net.Tanh("c0", "c")
    net.FC(["h", "explanation/W", "explanation/b"], "e")
    net.FC(["e", *region_weights], "reg/r0")
    net.Sigmoid("reg/r0", "reg/r")
    net.SquaredL2Distance(["c", "e"], "da")
    net.AveragedLoss("da", "loss_a")
    net.SquaredL2Distance(["reg/r", "c"], "db")
    net.AveragedLoss("db", "loss_b")
    return net


def values():
    rng = np.random.default_rng(0)
    shapes = {"X": (4, 5), "gln/W": (3, 5), "gln/b": (3,), "code/W": (3, 3), "code/b": (3,),
              "explanation/W": (3, 3), "explanation/b": (3,)}
    return {name: rng.standard_normal(shape) * 0.7 for name, shape in shapes.items()}


def numeric_derivative(net, inputs, losses, blob, step=1e-5):
    """d(sum of `losses`)/d `blob` of `net` fed `inputs`, by central differences."""
    workspace = Workspace("reference")
    inputs = {name: value.copy() for name, value in inputs.items()}

    def evaluate():
        for name, value in inputs.items():
            workspace.FeedBlob(name, value)
        workspace.RunNetOnce(net.Proto())
        return sum(float(workspace.FetchBlob(loss)) for loss in losses)

    return central_differences(evaluate, inputs[blob], step)


def run_blocked(rules):
    net = build()
    forward_ops = [op.SerializeToString() for op in net.Proto().op]
    seeds = {"loss_a": "loss_a_seed", "loss_b": "loss_b_seed"}
    grad_ops, grad_map = GetBackwardPass(net.Proto().op, seeds, block=rules, params=list(GROUPS))
    workspace = Workspace("blocked")
    for name, value in values().items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net.Proto())
    for seed in seeds.values():
        workspace.FeedBlob(seed, np.array(1.0))
    workspace.RunOperatorsOnce(grad_ops)
    return net, forward_ops, grad_ops, grad_map, workspace


@pytest.fixture(scope="module")
def blocked_run():
    return run_blocked(RULES)


def test_each_group_gets_exactly_its_losses_derivative(blocked_run):
    _, _, _, grad_map, workspace = blocked_run
    reference = build(region_weights=("code/W_copy", "code/b_copy"))
    inputs = values()
    inputs.update({"code/W_copy": inputs["code/W"], "code/b_copy": inputs["code/b"]})
    allowed = [("gln/W", ["loss_a"]), ("gln/b", ["loss_a"]), ("code/W", ["loss_b"]), ("code/b", ["loss_b"]),
               ("X", ["loss_a", "loss_b"])]
    for blob, losses in allowed:
        expected = numeric_derivative(reference, inputs, losses, blob)
        np.testing.assert_allclose(workspace.FetchBlob(grad_map[blob]), expected, rtol=1e-5, atol=1e-7,
                                   err_msg=blob)
        assert grad_map[blob] == f"{blob}_grad"


def test_blocked_group_gets_no_gradient_and_the_data_input_gets_both_losses(blocked_run):
    _, _, _, grad_map, workspace = blocked_run
    assert not {"explanation/W", "explanation/b"} & set(grad_map)
    inputs = values()
    only_a = numeric_derivative(build(), inputs, ["loss_a"], "X")
    assert np.abs(workspace.FetchBlob(grad_map["X"]) - only_a).max() > 1e-3  # loss_b reaches X too


def test_no_forward_op_is_added_or_copied(blocked_run):
    net, forward_ops, grad_ops, _, _ = blocked_run
    assert [op.SerializeToString() for op in net.Proto().op] == forward_ops
    assert_backward_ops_marked(grad_ops)


def test_branches_leading_only_to_blocked_blobs_get_no_gradient_ops():
    # With X named by a rule too, only loss_a may reach the trunk, so one FCGradient reads X. The
    # region's FC leads only to blocked weights and to e, whose every way on is blocked for loss_b:
    # no gradient ops at all.
    *_, grad_ops, grad_map, _ = run_blocked(RULES + [BlockGradients("X")])
    assert "X" not in grad_map
    assert sum(1 for op in grad_ops if op.type == "FCGradient" and op.input[0] == "X") == 1
    assert not any(op.type in ("FCGradient", "SigmoidGradient") and op.input[0] in ("e", "reg/r")
                   for op in grad_ops)


def test_the_region_rule_is_what_keeps_loss_b_out_of_the_reused_weights(blocked_run):
    *_, grad_map, workspace = blocked_run
    *_, loose_map, loose = run_blocked(RULES[:2])
    assert not np.allclose(workspace.FetchBlob(grad_map["code/W"]), loose.FetchBlob(loose_map["code/W"]))


def test_unblocked_pass_differs_where_the_rules_act():
    """Without rules every group gets both losses' gradients: the rules are what changed them."""
    net = build()
    _, grad_map = GetBackwardPass(net.Proto().op, ["loss_a", "loss_b"])
    assert {"gln/W", "code/W", "explanation/W", "X"} <= set(grad_map)


def test_global_rule_by_predicate_and_region_by_op_index():
    net = core.Net("simple")
    net.FC(["X", "W", "b"], "h")
    net.Tanh("h", "t")
    net.FC(["t", "W2", "b2"], "y")
    ops = net.Proto().op
    _, everything = GetBackwardPass(ops, ["y"])
    _, frozen_first = GetBackwardPass(ops, ["y"], block=[BlockGradients(lambda name: name in ("W", "b"))])
    assert {"W", "b", "X"} <= set(everything)
    assert "W" not in frozen_first and "b" not in frozen_first and "X" in frozen_first
    grad_ops, frozen_tail = GetBackwardPass(ops, ["y"], block=[BlockGradients("*", ops={2})])
    assert set(frozen_tail) == {"y"}  # everything behind op 2 is reached only through its inputs
    assert [op.type for op in grad_ops] == ["ConstantFill"]
