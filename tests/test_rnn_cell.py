"""rnn_cell and gru_cell: the networks LSTM(), GRU(), MILSTM(), BasicRNN() and stacked
LSTMs against NumPy, their backward passes against numeric differentiation of the
whole net, training (loss falls; Caffe2's char_rnn example flow learns a text),
one-step apply, initializers, the wrapper cells (DropoutCell, MultiRNNCell with
residual layers), layered LSTMs, memory optimization, param helpers and errors."""
import numpy as np
import pytest

from pycaffe2 import brew, core, gru_cell, rnn_cell, workspace
from pycaffe2.gradient_checker import check_net_gradient
from pycaffe2.model_helper import ModelHelper
from pycaffe2.optimizer import build_sgd

T, N, D, H = 4, 3, 2, 3
LENGTHS = np.array([4, 2, 3], np.int32)


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def fc(x, name):
    return x @ workspace.FetchBlob(name + "_w").T + workspace.FetchBlob(name + "_b")


def masked(t, new, old, lengths, drop_states=False):
    if lengths is None:
        return new
    return np.where((t < lengths)[:, None], new, 0 * old if drop_states else old)


def lstm_numpy(x, h, c, scope, lengths=None, forget_bias=0.0, drop_states=False, recurrent=None):
    hidden = []
    for t, x_t in enumerate(fc(x, f"{scope}/i2h")):
        gates = x_t + fc(h, recurrent or f"{scope}/gates_t")
        i, f, o, g = np.split(gates, 4, axis=1)
        new_c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(g)
        new_h = sigmoid(o) * np.tanh(new_c)
        h, c = masked(t, new_h, h, lengths, drop_states), masked(t, new_c, c, lengths, drop_states)
        hidden.append(h)
    return np.stack(hidden), c


def gru_numpy(x, h, scope, lengths=None):
    hidden = []
    for t, x_t in enumerate(fc(x, f"{scope}/i2h")):
        x_r, x_u, x_o = np.split(x_t, 3, axis=1)
        r = sigmoid(fc(h, f"{scope}/reset_gate_t") + x_r)
        u = sigmoid(fc(h, f"{scope}/update_gate_t") + x_u)
        o = np.tanh(fc(r * h, f"{scope}/output_gate_t") + x_o)
        h = masked(t, u * h + (1 - u) * o, h, lengths)
        hidden.append(h)
    return np.stack(hidden)


def feed_inputs(seed=0, layers=1):
    rng = np.random.default_rng(seed)
    values = {"x": rng.standard_normal((T, N, D)).astype(np.float32), "lengths": LENGTHS}
    for i in range(layers):
        values[f"h{i}"] = rng.standard_normal((N, H)).astype(np.float32)
        values[f"c{i}"] = rng.standard_normal((N, H)).astype(np.float32)
    for name, value in values.items():
        workspace.FeedBlob(name, value)
    return values


def perturb_params(model, seed):
    """Move the params off their init values (zero biases hide mistakes)."""
    rng = np.random.default_rng(seed)
    for param in model.params:
        value = workspace.FetchBlob(param)
        workspace.FeedBlob(param, (value + 0.3 * rng.standard_normal(value.shape)).astype(np.float32))


@pytest.mark.parametrize("lengths, args", [(None, {}), ("lengths", {"forget_bias": 1.0}),
                                           ("lengths", {"drop_states": True})])
def test_lstm_matches_numpy(lengths, args):
    model = ModelHelper("lstm")
    hidden_all, hidden_last, cell_all, cell_last = rnn_cell.LSTM(
        model, "x", lengths, ["h0", "c0"], D, H, scope="lstm", **args)
    values = feed_inputs()
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 1)
    workspace.RunNetOnce(model.net)
    hidden, cell = lstm_numpy(values["x"], values["h0"], values["c0"], "lstm",
                              LENGTHS if lengths else None, **args)
    np.testing.assert_allclose(workspace.FetchBlob(hidden_all), hidden, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob(hidden_last)[0], hidden[-1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob(cell_last)[0], cell, rtol=1e-4, atol=1e-5)
    assert workspace.FetchBlob(cell_all).shape == (T, N, H)


@pytest.mark.parametrize("lengths", [None, "lengths"])
def test_gru_matches_numpy(lengths):
    model = ModelHelper("gru")
    hidden_all, _ = gru_cell.GRU(model, "x", lengths, ["h0"], D, H, scope="gru")
    values = feed_inputs(2)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 3)
    workspace.RunNetOnce(model.net)
    expected = gru_numpy(values["x"], values["h0"], "gru", LENGTHS if lengths else None)
    np.testing.assert_allclose(workspace.FetchBlob(hidden_all), expected, rtol=1e-4, atol=1e-5)


def test_two_layer_lstm_matches_numpy_and_initializer_makes_zero_states():
    model = ModelHelper("stacked")
    outputs = rnn_cell.LSTM(model, "x", None, None, D, [H, H], scope="deep", return_last_layer_only=False)
    assert len(outputs) == 8
    assert {"deep/layer_0/initial_hidden_state", "deep/layer_1/initial_cell_state"} <= set(map(str, model.params))
    values = feed_inputs(4)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    zeros = np.zeros((N, H), np.float32)
    first, _ = lstm_numpy(values["x"], zeros, zeros, "deep", recurrent="deep/layer_0/gates_t")
    np.testing.assert_allclose(workspace.FetchBlob(outputs[0]), first, rtol=1e-4, atol=1e-5)
    assert workspace.FetchBlob(outputs[4]).shape == (T, N, H)


def _loss_net(model, outputs, values, rng):
    """The model's net plus per-output random weights: loss blobs whose seeds differ."""
    net = core.Net("weighted")
    for output in outputs:
        values[f"w_{output}"] = rng.standard_normal(
            (T if str(output).endswith("_all") else 1, N, H)).astype(np.float32)
        net.Mul([output, f"w_{output}"], f"{output}_weighted")
    full = core.Net("checked").Proto()
    full.op.extend(model.net.Proto().op)
    full.op.extend(net.Proto().op)
    return full, [f"{o}_weighted" for o in outputs]


NETWORKS = {
    "lstm": (lambda m: rnn_cell.LSTM(m, "x", None, ["h0", "c0"], D, H, scope="l", outputs_with_grads=(0, 1, 3)),
             (0, 1, 3)),
    "lstm-lengths": (lambda m: rnn_cell.LSTM(m, "x", "lengths", ["h0", "c0"], D, H, scope="l"), (0,)),
    "lstm-memory-optimization": (lambda m: rnn_cell.LSTM(m, "x", None, ["h0", "c0"], D, H, scope="l",
                                                         memory_optimization=True), (0,)),
    "gru": (lambda m: gru_cell.GRU(m, "x", "lengths", ["h0"], D, H, scope="g", outputs_with_grads=(0, 1)),
            (0, 1)),
    "gru-linear-before-reset": (lambda m: gru_cell.GRU(m, "x", None, ["h0"], D, H, scope="g",
                                                       linear_before_reset=True), (0,)),
    "milstm": (lambda m: rnn_cell.MILSTM(m, "x", "lengths", ["h0", "c0"], D, H, scope="mi"), (0,)),
    "basic-rnn": (lambda m: rnn_cell.BasicRNN(m, "x", "lengths", ["h0"], D, H, scope="b", activation="tanh"),
                  (0,)),
    "two-layers": (lambda m: rnn_cell.LSTM(m, "x", None, ["h0", "c0", "h1", "c1"], D, [H, H], scope="s"), (0,)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_backward_pass_matches_numeric(name):
    build, with_grads = NETWORKS[name]
    model = ModelHelper(name)
    outputs = build(model)
    values = feed_inputs(5, layers=2)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 6)
    values.update({str(p): workspace.FetchBlob(p) for p in model.params})
    full, losses = _loss_net(model, [outputs[i] for i in with_grads], values, np.random.default_rng(7))
    read = {name for op in full.op for name in op.input}
    checked = [b for b in ["x", "h0", "c0", "h1", "c1", *map(str, model.params)] if b in read]
    reports = check_net_gradient(full, losses, values, checked)
    assert all(r.ok for r in reports), [str(r) for r in reports if not r.ok]


def test_lstm_model_trains():
    model = ModelHelper("train")
    hidden_all, *_ = rnn_cell.LSTM(model, "x", None, ["h0", "c0"], D, H, scope="t")
    distance = model.net.SquaredL2Distance([hidden_all, "target"], "distance")
    model.AddGradientOperators([model.net.AveragedLoss(distance, "loss")])
    model.param_init_net.ConstantFill([], "lr", shape=[1], value=-0.5)
    model.param_init_net.ConstantFill([], "one", shape=[1], value=1.0)
    for param in model.params:
        model.net.WeightedSum([param, "one", model.param_to_grad[param], "lr"], param)
    values = feed_inputs(8)
    # the target is a running sum of the input's first feature: it takes memory
    workspace.FeedBlob("target", np.tanh(np.cumsum(values["x"][..., :1], axis=0)).repeat(H, axis=2) * 0.5)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    losses = []
    for _ in range(80):
        workspace.RunNet(model.net)
        losses.append(float(workspace.FetchBlob("loss")))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_apply_runs_one_step_on_the_model():
    model = ModelHelper("one_step")
    cell = rnn_cell.LSTMCell(D, H, forget_bias=0.0, memory_optimization=False, name="cell")
    model.param_init_net.ConstantFill([], "timestep", shape=[1], value=0, dtype=core.DataType.INT32)
    workspace.FeedBlob("x1", np.random.default_rng(9).standard_normal((1, N, D)).astype(np.float32))
    values = feed_inputs(9)
    workspace.FeedBlob("h", values["h0"][None])
    workspace.FeedBlob("c", values["c0"][None])
    output, (hidden, _) = cell.apply(model, "x1", None, ["h", "c"], "timestep")
    assert output == hidden
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    expected, _ = lstm_numpy(workspace.FetchBlob("x1"), values["h0"], values["c0"], "cell")
    np.testing.assert_allclose(workspace.FetchBlob(hidden), expected, rtol=1e-4, atol=1e-5)


def test_dropout_cell_at_test_time_and_residual_layers():
    cells = [rnn_cell.LSTMCell(D if i == 0 else H, H, 0.0, False, name=f"c{i}") for i in range(3)]
    stacked = rnn_cell.MultiRNNCell(cells, residual_output_layers=[2], name="multi")
    assert stacked.output_connected_layers == [1, 2] and stacked.get_output_state_index() == 4
    wrapped = rnn_cell.DropoutCell(stacked, dropout_ratio=0.5, is_test=1, name="drop")
    model = ModelHelper("dropout")
    feed_inputs(10, layers=3)
    output, states = wrapped.apply_over_sequence(model, "x", initial_states=["h0", "c0", "h1", "c1", "h2", "c2"])
    assert [op.type for op in model.net.Proto().op][-2:] == ["Sum", "Dropout"]  # is_test: Dropout passes X
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    layer_1, layer_2 = (workspace.FetchBlob(states[k]) for k in (4, 8))
    np.testing.assert_allclose(workspace.FetchBlob(output), layer_1 + layer_2, rtol=1e-5)


def test_return_params_and_init_from_lstm_params():
    model = ModelHelper("params")
    *_, params = rnn_cell.LSTM(model, "x", None, ["h0", "c0"], D, H, scope="p", return_params=True)
    assert params == {"input": {"weights": "p/i2h_w", "biases": "p/i2h_b"},
                      "recurrent": {"weights": "p/gates_t_w", "biases": "p/gates_t_b"}}
    workspace.RunNetOnce(model.param_init_net)
    names = rnn_cell.GetLSTMParamNames()
    rng = np.random.default_rng(11)
    values = {kind: {**{w: rng.standard_normal((H, D if kind == "input" else H)) for w in names["weights"]},
                     **{b: rng.standard_normal(H) for b in names["biases"]}} for kind in ("input", "recurrent")}
    rnn_cell.InitFromLSTMParams(params, values)
    np.testing.assert_allclose(workspace.FetchBlob("p/i2h_w")[H:2 * H], values["input"]["forget_gate_w"], rtol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("p/gates_t_b")[3 * H:], values["recurrent"]["cell_b"], rtol=1e-6)


def test_errors_say_what_is_wrong():
    cell = rnn_cell.LSTMCell(D, H, 0.0, False, name="e")
    with pytest.raises(ValueError, match=r"1 initial states given for the 2 states \['e/hidden_t', 'e/cell_t'\]"):
        cell.apply_over_sequence(ModelHelper("e"), "x", initial_states=["h0"])
    with pytest.raises(ValueError, match="BasicRNNCell activation must be 'relu' or 'tanh', got 'sigmoid'"):
        rnn_cell.BasicRNNCell(D, H, 0.0, False, activation="sigmoid")
    with pytest.raises(ValueError, match="DropoutCell needs is_test"):
        rnn_cell.DropoutCell(cell, dropout_ratio=0.1)
    with pytest.raises(NotImplementedError, match="static_rnn_unroll_size"):
        rnn_cell.LSTM(ModelHelper("u"), "x", None, ["h0", "c0"], D, H, static_rnn_unroll_size=2)
    bare = rnn_cell.RNNCell(name="bare")
    with pytest.raises(ValueError, match="needs initial_states or a cell initializer"):
        bare.apply_over_sequence(ModelHelper("b"), "x")


def test_memory_optimization_recomputes_the_gates_in_the_backward_step():
    model = ModelHelper("recompute")
    rnn_cell.LSTM(model, "x", None, ["h0", "c0"], D, H, scope="r", memory_optimization=True)
    (op,) = [op for op in model.net.Proto().op if op.type == "RecurrentNetwork"]
    args = {arg.name: arg for arg in op.arg}
    assert list(args["recompute_blobs_on_backward"].strings) == [b"r/gates_t"]
    assert [o.type for o in args["backward_step_net"].n.op][:2] == ["FC", "Sum"]


def test_layered_lstm_chains_networks_through_their_final_states():
    model = ModelHelper("layered")
    output, last_output, _, last_state = rnn_cell.layered_LSTM(model, "x", None, ["h0", "c0"], D, [H, H], "lay")
    assert [op.type for op in model.net.Proto().op].count("RecurrentNetwork") == 2
    second = [op for op in model.net.Proto().op if op.type == "RecurrentNetwork"][1]
    assert {"lay/hidden_state_last", "lay/cell_state_last"} <= set(second.input)
    values = feed_inputs(12)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 13)
    workspace.RunNetOnce(model.net)
    first, first_cell = lstm_numpy(values["x"], values["h0"], values["c0"], "lay")
    expected, _ = lstm_numpy(first, first[-1], first_cell, "lay_layer_1")
    np.testing.assert_allclose(workspace.FetchBlob(output), expected, rtol=1e-4, atol=1e-5)
    assert str(last_output) == "lay_layer_1/hidden_state_last" and str(last_state) == "lay_layer_1/cell_state_last"


def test_char_rnn_learns_a_text():
    """Caffe2's char_rnn example flow: one-hot characters through LSTM(), FC, Softmax,
    LabelCrossEntropy, build_sgd; the state carried between batches by Copy ops."""
    text = "hello world, " * 20
    chars = sorted(set(text))
    vocab, seq_length, batch, hidden = len(chars), 6, 2, 16
    model = ModelHelper("char_rnn")
    input_blob, seq_lengths, hidden_init, cell_init, target = model.net.AddExternalInputs(
        "input_blob", "seq_lengths", "hidden_init", "cell_init", "target")
    hidden_all, hidden_output, _, cell_state = rnn_cell.LSTM(
        model, input_blob, seq_lengths, (hidden_init, cell_init), vocab, hidden, scope="LSTM")
    output = brew.fc(model, hidden_all, None, dim_in=hidden, dim_out=vocab, axis=2)
    softmax = model.net.Softmax(output, "softmax", axis=2)
    softmax_reshaped, _ = model.net.Reshape(softmax, ["softmax_reshaped", "_"], shape=[-1, vocab])
    loss = model.net.AveragedLoss(model.net.LabelCrossEntropy([softmax_reshaped, target], "xent"), "loss")
    model.AddGradientOperators([loss])
    build_sgd(model, base_learning_rate=0.1 * seq_length, policy="step", stepsize=1, gamma=0.9999)
    prepare_state = core.Net("prepare_state")
    prepare_state.Copy(hidden_output, hidden_init)
    prepare_state.Copy(cell_state, cell_init)

    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob(hidden_output, np.zeros((1, batch, hidden), np.float32))  # the first state carried in
    workspace.FeedBlob(cell_state, np.zeros((1, batch, hidden), np.float32))
    workspace.FeedBlob(seq_lengths, np.full(batch, seq_length, np.int32))
    workspace.CreateNet(model.net)
    workspace.CreateNet(prepare_state)
    ids = np.array([chars.index(c) for c in text])
    starts, losses = [0, len(text) // 2], []
    for _ in range(150):
        inputs = np.zeros((seq_length, batch, vocab), np.float32)
        targets = np.zeros((seq_length, batch), np.int32)
        for b, start in enumerate(starts):
            positions = (start + np.arange(seq_length + 1)) % len(text)
            inputs[np.arange(seq_length), b, ids[positions[:-1]]] = 1
            targets[:, b] = ids[positions[1:]]
        workspace.FeedBlob(input_blob, inputs)
        workspace.FeedBlob(target, targets.reshape(-1))  # T x N rows, as softmax_reshaped
        workspace.RunNet(prepare_state)
        workspace.RunNet(model.net)
        losses.append(float(workspace.FetchBlob(loss)))
        starts = [(s + seq_length) % len(text) for s in starts]
    uniform = np.log(vocab)
    assert np.mean(losses[:10]) > 0.8 * uniform and np.mean(losses[-10:]) < 0.3 * uniform, losses[::15]
