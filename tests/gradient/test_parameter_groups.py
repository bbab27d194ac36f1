"""Parameter groups under stop-gradient, data keeping its gradient: the request's own structure.

Three parameter groups (gln/* the trunk, code/*, explanation/* the heads) on one
shared forward pass; an inference region reg/* that runs the whole model again
on the observation `obs` with every weight under stop-gradient (so it cannot
poison the weights' gradients, while gradients still flow back to `obs`); three
losses, each allowed to train one group:

    loss_a = |c - e|^2       trains gln/*
    loss_b = |c - reg/e|^2   trains code/*
    loss_c = |e - reg/c|^2   trains explanation/*

`obs` is data: no rule names it, so it gets the gradient of all three losses,
through the main path and through the region. Two references: central
differences on a net whose region reads private copies of the weights, and a
hand-written copy-and-stop net per loss (StopGradient on every weight that loss
may not update) under a plain backward pass with no rules.
"""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper
from pycaffe2.executor import Workspace
from pycaffe2.gradient import BlockGradients, GetBackwardPass, GradientError, only_update
from pycaffe2.gradient_checker import central_differences
from tests.gradient.marks import assert_backward_ops_marked

GROUPS = {"gln/*": "loss_a", "code/*": "loss_b", "explanation/*": "loss_c"}
LOSSES = list(GROUPS.values())
RULES = [*(only_update(group, losses=[loss]) for group, loss in GROUPS.items()),
         BlockGradients(list(GROUPS), ops="reg/*")]
WEIGHTS = {"gln/W": (3, 5), "gln/b": (3,), "code/W": (3, 3), "code/b": (3,),
           "explanation/W": (3, 3), "explanation/b": (3,)}


def _model(net, weight, prefix=""):
    """The model's forward ops on `obs`, outputs named `prefix` + h/c/e; weight(name) -> blob read."""
    net.FC(["obs", weight("gln/W"), weight("gln/b")], prefix + "h0")
    net.Tanh(prefix + "h0", prefix + "h")
    net.FC([prefix + "h", weight("code/W"), weight("code/b")], prefix + "c0")
    net.Tanh(prefix + "c0", prefix + "c")
    net.FC([prefix + "h", weight("explanation/W"), weight("explanation/b")], prefix + "e")


def _losses(net, only=LOSSES):
    for loss, (a, b) in zip(LOSSES, [("c", "e"), ("c", "reg/e"), ("e", "reg/c")]):
        if loss in only:
            net.SquaredL2Distance([a, b], f"{loss}_d")
            net.AveragedLoss(f"{loss}_d", loss)


def build(region_weight=lambda name: name):
    net = core.Net("parameter_groups")
    _model(net, lambda name: name)
    _model(net, region_weight, prefix="reg/")
    _losses(net)
    return net


def values():
    rng = np.random.default_rng(1)
    arrays = {name: rng.standard_normal(shape) * 0.7 for name, shape in WEIGHTS.items()}
    arrays["obs"] = rng.standard_normal((4, 5))
    return arrays


def feed_and_run(net, inputs, grad_ops=(), seeds=()):
    workspace = Workspace("parameter_groups")
    for name, value in inputs.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net.Proto())
    for seed in seeds:
        workspace.FeedBlob(seed, np.array(1.0))
    workspace.RunOperatorsOnce(list(grad_ops))
    return workspace


@pytest.fixture(scope="module")
def blocked():
    net = build()
    forward = [op.SerializeToString() for op in net.Proto().op]
    grad_map = net.AddGradientOperators(LOSSES, block=RULES, params=list(GROUPS))
    workspace = feed_and_run(net, values())
    return net, forward, {str(k): str(v) for k, v in grad_map.items()}, workspace


def numeric(losses, blob):
    """d(sum of `losses`)/d `blob`, the region reading private copies of the weights."""
    net = build(region_weight=lambda name: name + "_copy")
    inputs = values()
    inputs.update({name + "_copy": inputs[name].copy() for name in WEIGHTS})
    workspace = Workspace("numeric")

    def evaluate():
        for name, value in inputs.items():
            workspace.FeedBlob(name, value)
        workspace.RunNetOnce(net.Proto())
        return sum(float(workspace.FetchBlob(loss)) for loss in losses)

    return central_differences(evaluate, inputs[blob], 1e-5)


def copy_and_stop(loss):
    """{blob: gradient of `loss`} from the net a user would wire by hand: every weight
    `loss` may not update, and every weight the region reads, goes through StopGradient."""
    net = core.Net(f"copy_and_stop_{loss}")
    allowed = next(group for group, owner in GROUPS.items() if owner == loss)

    def stopped(tag):
        def weight(name):
            if tag == "" and name.startswith(allowed[:-1]):
                return name
            return net.StopGradient(name, f"{name}_stopped{tag}")
        return weight

    _model(net, stopped(""))
    _model(net, stopped("_reg"), prefix="reg/")
    _losses(net, only=[loss])
    grad_map = net.AddGradientOperators([loss])
    workspace = feed_and_run(net, values())
    names = [*WEIGHTS, "obs"]
    return {name: workspace.FetchBlob(str(grad_map[name])) for name in names if name in grad_map}


def test_each_group_gets_exactly_its_losses_derivative(blocked):
    _, _, grad_map, workspace = blocked
    for group, loss in GROUPS.items():
        for blob in (group.replace("*", "W"), group.replace("*", "b")):
            assert grad_map[blob] == f"{blob}_grad"
            np.testing.assert_allclose(workspace.FetchBlob(grad_map[blob]), numeric([loss], blob),
                                       rtol=1e-5, atol=1e-7, err_msg=blob)


def test_data_input_gets_every_losses_derivative(blocked):
    _, _, grad_map, workspace = blocked
    per_loss = {loss: numeric([loss], "obs") for loss in LOSSES}
    for loss, derivative in per_loss.items():  # each loss really reaches obs
        assert np.abs(derivative).max() > 1e-2, loss
    np.testing.assert_allclose(workspace.FetchBlob(grad_map["obs"]), sum(per_loss.values()),
                               rtol=1e-5, atol=1e-7)


def test_equals_a_hand_written_copy_and_stop_net(blocked):
    _, _, grad_map, workspace = blocked
    expected: dict = {}
    for loss in LOSSES:
        for blob, gradient in copy_and_stop(loss).items():
            expected[blob] = expected.get(blob, 0) + gradient
    assert set(expected) == set(WEIGHTS) | {"obs"}
    for blob, gradient in expected.items():
        np.testing.assert_allclose(workspace.FetchBlob(grad_map[blob]), gradient, rtol=1e-10, atol=1e-12,
                                   err_msg=blob)


def test_forward_ops_are_unchanged_and_not_copied(blocked):
    net, forward, _, _ = blocked
    ops = net.Proto().op
    assert [op.SerializeToString() for op in ops[:len(forward)]] == forward
    assert_backward_ops_marked(ops[len(forward):])
    assert not any(op.type == "StopGradient" for op in ops)


def test_a_rule_naming_the_data_input_stops_it():
    net = build()
    grad_map = net.AddGradientOperators(LOSSES, block=RULES + [BlockGradients("obs")], params=list(GROUPS))
    assert "obs" not in grad_map and {"gln/W", "code/W", "explanation/W"} <= set(grad_map)


def test_rules_on_parameters_need_the_parameters_named():
    net = build()
    before = net.Proto().SerializeToString()
    with pytest.raises(GradientError, match="pass params="):
        net.AddGradientOperators(LOSSES, block=RULES)
    assert net.Proto().SerializeToString() == before  # nothing appended
    with pytest.raises(GradientError, match="pass params="):
        GetBackwardPass(net.Proto().op, LOSSES, block=RULES)


def test_params_as_names_globs_or_predicate_give_one_pass():
    ops = build().Proto().op
    passes = [GetBackwardPass(ops, LOSSES, block=RULES, params=params)
              for params in (list(WEIGHTS), list(GROUPS), lambda name: name in WEIGHTS)]
    assert all([op.SerializeToString() for op in grad_ops] ==
               [op.SerializeToString() for op in passes[0][0]] and grad_map == passes[0][1]
               for grad_ops, grad_map in passes)


def test_model_helper_names_its_own_params():
    model = model_helper.ModelHelper(name="groups")
    with core.NameScope("gln"):
        trunk = model.net.Tanh(brew.fc(model, "obs", "h0", dim_in=5, dim_out=3), "h")
    heads = []
    for scope in ("code", "explanation"):
        with core.NameScope(scope):
            heads.append(brew.fc(model, trunk, "y", dim_in=3, dim_out=3))
    model.net.FC(["obs", "gln/h0_w", "gln/h0_b"], "reg/h0")  # a region reusing the trunk's weights
    model.net.AveragedLoss(model.net.SquaredL2Distance(heads, "d"), "loss")
    model.net.AveragedLoss(model.net.SquaredL2Distance(["reg/h0", "gln/h0"], "d2"), "loss2")
    rules = [only_update("code/*", losses=["loss"]), only_update("gln/*", losses=["loss2"]),
             BlockGradients("gln/*", ops="reg/*")]
    forward = list(model.net.Proto().op)
    grad_map = model.AddGradientOperators(["loss", "loss2"], block=rules)  # no params=: the model's
    expected_ops, expected_map = GetBackwardPass(forward, ["loss", "loss2"], block=rules,
                                                 params=[str(p) for p in model.params])
    assert [op.SerializeToString() for op in model.net.Proto().op[len(forward):]] == \
           [op.SerializeToString() for op in expected_ops]
    assert {str(k): str(v) for k, v in grad_map.items()} == expected_map
    assert set(map(str, model.param_to_grad)) == {"code/y_w", "code/y_b", "gln/h0_w", "gln/h0_b"}
    assert "obs" in expected_map


def test_param_glob_matches_intermediate_blobs_unless_leaves_only():
    net = build()
    ops = net.Proto().op
    _, cut = GetBackwardPass(ops, ["loss_c"], block=[BlockGradients("reg/*")])
    _, kept = GetBackwardPass(ops, ["loss_c"], block=[BlockGradients("reg/*", leaves_only=True)])
    assert "reg/c" not in cut and "reg/c" in kept
