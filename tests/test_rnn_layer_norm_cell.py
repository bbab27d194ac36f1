"""rnn_cell's LayerNorm LSTM cells: LayerNormLSTM and LayerNormMILSTM against a NumPy
LSTM with layer-normalized gates, and their backward pass against numeric gradients;
MILSTM's gates (ElementwiseLinear, as in Caffe2) against NumPy."""
import numpy as np
import pytest

from pycaffe2 import core, rnn_cell, workspace
from pycaffe2.gradient_checker import check_net_gradient
from pycaffe2.model_helper import ModelHelper
from tests.test_rnn_cell import LENGTHS, D, H, N, T, fc, feed_inputs, masked, perturb_params, sigmoid

EPSILON = 1e-4  # brew.layer_norm's default


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def layer_norm(gates, scope):
    mean, var = gates.mean(axis=-1, keepdims=True), gates.var(axis=-1, keepdims=True)
    normalized = (gates - mean) / np.sqrt(var + EPSILON)
    return normalized * workspace.FetchBlob(f"{scope}/gates_t_norm_scale") + workspace.FetchBlob(
        f"{scope}/gates_t_norm_bias")


def gates_numpy(kind, x_t, h, scope):
    if kind == "lstm":
        return x_t + fc(h, f"{scope}/gates_t")
    alpha, beta1, beta2, b = (workspace.FetchBlob(f"{scope}/{n}") for n in ("alpha", "beta1", "beta2", "b"))
    return (alpha * x_t + beta1) * fc(h, f"{scope}/prev_t") + beta2 * x_t + b


def lstm_numpy(kind, values, scope, lengths, normalize):
    h, c = values["h0"], values["c0"]
    hidden = []
    for t, x_t in enumerate(fc(values["x"], f"{scope}/i2h")):
        gates = gates_numpy(kind, x_t, h, scope)
        if normalize:
            gates = layer_norm(gates, scope)
        i, f, o, g = np.split(gates, 4, axis=1)
        new_c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h, c = masked(t, sigmoid(o) * np.tanh(new_c), h, lengths), masked(t, new_c, c, lengths)
        hidden.append(h)
    return np.stack(hidden)


NETWORKS = {"layer-norm-lstm": (rnn_cell.LayerNormLSTM, "lstm", True),
            "layer-norm-milstm": (rnn_cell.LayerNormMILSTM, "milstm", True),
            "milstm": (rnn_cell.MILSTM, "milstm", False)}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("lengths", [None, "lengths"])
def test_matches_numpy(name, lengths):
    build, kind, normalize = NETWORKS[name]
    model = ModelHelper(name)
    hidden_all, *_ = build(model, "x", lengths, ["h0", "c0"], D, H, scope="n")
    values = feed_inputs(3)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 4)
    workspace.RunNetOnce(model.net)
    expected = lstm_numpy(kind, values, "n", LENGTHS if lengths else None, normalize)
    np.testing.assert_allclose(workspace.FetchBlob(hidden_all), expected, rtol=1e-4, atol=1e-5)
    if normalize:
        assert {"n/gates_t_norm_scale", "n/gates_t_norm_bias"} <= set(map(str, model.params))


@pytest.mark.parametrize("name", ["layer-norm-lstm", "layer-norm-milstm"])
def test_backward_pass_matches_numeric(name):
    build = NETWORKS[name][0]
    model = ModelHelper(name)
    hidden_all, *_ = build(model, "x", "lengths", ["h0", "c0"], D, H, scope="n")
    values = feed_inputs(5)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 6)
    values.update({str(p): workspace.FetchBlob(p) for p in model.params})
    values["w"] = np.random.default_rng(7).standard_normal((T, N, H))
    full = core.Net("checked")
    full.Proto().op.extend(model.net.Proto().op)
    full.Mul([hidden_all, "w"], "weighted")
    reports = check_net_gradient(full.Proto(), ["weighted"], values, ["x", "h0", "c0", *map(str, model.params)])
    assert all(r.ok for r in reports), [str(r) for r in reports if not r.ok]
