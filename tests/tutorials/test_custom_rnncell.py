"""Caffe2's Custom_RNNCell tutorial: a vanilla RNN written as an RNNCell runs over a
sequence as one RecurrentNetwork op, and three of them stack in a MultiRNNCell.
The tutorial runs with only its imports changed; then its own model builders are
checked against NumPy (the one-layer and the stacked RNN) and the one-layer model
trains (its loss falls)."""
import numpy as np
import pytest

from pycaffe2 import workspace
from pycaffe2.model_helper import ModelHelper
from tests.tutorials.harness import run_tutorial


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    return run_tutorial("Custom_RNNCell", tmp_path_factory.mktemp("home"))


@pytest.fixture
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def fc(x, name):
    return x @ workspace.FetchBlob(name + "_w").T + workspace.FetchBlob(name + "_b")


def vanilla_rnn(x, initial, input_name="fc_input", state_name="fc_state"):
    """All states of s_t = tanh(U x_t + W s_(t-1) + b), one row per step."""
    states, state = [], initial
    for x_t in x:
        state = np.tanh(fc(x_t, input_name) + fc(state, state_name))
        states.append(state)
    return np.stack(states)


def test_tutorial_names_the_stacked_outputs(tutorial):
    assert tutorial["output"] == "layer_2/tanh_all"
    assert list(tutorial["all_states"]) == [f"layer_{i}/tanh_{k}" for i in range(3) for k in ("all", "last")]
    step_net = tutorial["get_step_net_proto"](tutorial["model"], 0)
    assert [op.type for op in step_net.op] == ["FC", "FC", "Sum", "Tanh"] * 3
    assert [op.type for op in tutorial["model"].net.Proto().op] == ["RecurrentNetwork"]


def test_one_layer_model_matches_numpy(tutorial, fresh_workspace):
    model = tutorial["construct_model"]()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, tutorial["INPUT_SIZE"])).astype(np.float32)
    init = rng.standard_normal((2, tutorial["RNN_OUTPUT_SIZE"])).astype(np.float32)
    workspace.FeedBlob("input", x)
    workspace.FeedBlob("init", init)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    states = vanilla_rnn(fc(x, "rnn_input"), init)
    np.testing.assert_allclose(workspace.FetchBlob("output"), fc(states, "output"), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("tanh_last"), states[-1:], rtol=1e-4, atol=1e-5)


def test_stacked_model_matches_numpy(tutorial, fresh_workspace):
    model, dims = tutorial["model"], tutorial["dims"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, dims[0])).astype(np.float32)
    inits = [rng.standard_normal((3, d)).astype(np.float32) for d in dims[1:]]
    workspace.FeedBlob("input", x)
    for i, init in enumerate(inits):
        workspace.FeedBlob(f"init_{i}", init)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    expected, layer_input = [], x
    for i, init in enumerate(inits):
        states, state = [], init
        for x_t in layer_input:  # the layers run step by step together, each on the last one's new state
            state = np.tanh(fc(x_t, f"layer_{i}/fc_input") + fc(state, f"layer_{i}/fc_state"))
            states.append(state)
        layer_input = np.stack(states)
        expected.append(layer_input)
    np.testing.assert_allclose(workspace.FetchBlob(tutorial["output"]), expected[-1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("layer_0/tanh_last"), expected[0][-1:], rtol=1e-4, atol=1e-5)


def test_one_layer_model_trains(tutorial, fresh_workspace):
    """The tutorial's model learns to echo a projection of its input: loss falls."""
    model = tutorial["construct_model"]()
    assert isinstance(model, ModelHelper)
    distance = model.net.SquaredL2Distance(["output", "target"], "distance")
    loss = model.net.AveragedLoss(distance, "loss")
    model.AddGradientOperators([loss])
    lr = model.param_init_net.ConstantFill([], "lr", shape=[1], value=-0.05)
    for param in model.params:
        model.net.WeightedSum([param, "one", model.param_to_grad[param], lr], param)
    model.param_init_net.ConstantFill([], "one", shape=[1], value=1.0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 4, tutorial["INPUT_SIZE"])).astype(np.float32)
    workspace.FeedBlob("input", x)
    workspace.FeedBlob("target", np.roll(x, 1, axis=0) * 0.5)  # the previous input: it needs the recurrence
    workspace.FeedBlob("init", np.zeros((4, tutorial["RNN_OUTPUT_SIZE"]), np.float32))
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    losses = []
    for _ in range(60):
        workspace.RunNet(model.net)
        losses.append(float(workspace.FetchBlob("loss")))
    assert losses[-1] < 0.1 * losses[0], losses[::10]
