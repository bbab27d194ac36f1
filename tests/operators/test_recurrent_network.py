"""RecurrentNetwork family: a RecurrentNetwork op with an LSTM step net (built by
recurrent.recurrent_net) against a NumPy LSTM over the sequence, its gradient
(RecurrentNetworkGradient) against numeric differentiation of the whole net,
initial states of every accepted shape, forward-only ops, the step net in text
form (and of Caffe2's legacy "rnn" type), retrieve_step_blobs, and the errors:
inconsistent args at CreateNet, bad shapes at run time."""
import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe2 import core, recurrent, workspace
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient_checker import check_net_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer

T, N, H = 4, 3, 2


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_reference(gates_in, h0, c0, w, b, lengths=None):
    """hidden and cell states for every step (T + 1 rows each, row 0 the initial state)."""
    hidden, cell = [np.broadcast_to(h0, (N, H))], [np.broadcast_to(c0, (N, H))]
    for t in range(len(gates_in)):
        gates = gates_in[t] + hidden[-1] @ w.T + b
        i, f, o, g = (gates[:, k * H:(k + 1) * H] for k in range(4))
        c = sigmoid(f) * cell[-1] + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        if lengths is not None:
            ended = (t >= lengths)[:, None]
            h, c = np.where(ended, hidden[-1], h), np.where(ended, cell[-1], c)
        hidden.append(h)
        cell.append(c)
    return np.stack(hidden), np.stack(cell)


def lstm_net(with_lengths=False, forward_only=False, outputs_with_grads=(0,)):
    """A net of one RecurrentNetwork op whose step is FC(hidden) + gates_t -> LSTMUnit."""
    step = core.Net("lstm_step")
    gates_t, hidden_prev, cell_prev, timestep = step.AddScopedExternalInputs(
        "gates_t", "hidden_prev", "cell_prev", "timestep")
    projected = step.FC([hidden_prev, "w", "b"], "projected", axis=2)
    summed = step.Sum([projected, gates_t], "summed")
    lengths = ["lengths"] if with_lengths else []
    hidden, cell = step.LSTMUnit([hidden_prev, cell_prev, summed, *lengths, timestep], ["hidden", "cell"],
                                 sequence_lengths=int(with_lengths))
    step.AddExternalOutput(hidden, cell)
    net = core.Net("lstm")
    outputs = recurrent.recurrent_net(
        net, step, inputs=[(gates_t, "gates")], initial_cell_inputs=[(hidden_prev, "h0"), (cell_prev, "c0")],
        links={hidden_prev: hidden, cell_prev: cell}, timestep=timestep, scope="rnn",
        outputs_with_grads=outputs_with_grads, forward_only=forward_only)
    return net, outputs


def case(seed, h0_shape=(N, H)):
    rng = np.random.default_rng(seed)
    return {"gates": rng.standard_normal((T, N, 4 * H)), "h0": rng.standard_normal(h0_shape),
            "c0": rng.standard_normal(h0_shape), "w": 0.5 * rng.standard_normal((4 * H, H)),
            "b": 0.1 * rng.standard_normal(4 * H), "lengths": np.array([4, 1, 3], np.int32)}


def run(net, values):
    ws = Workspace()
    for name, value in values.items():
        ws.FeedBlob(name, value.astype(np.float32) if value.dtype == np.float64 else value)
    ws.RunNetOnce(net.Proto())
    return ws


@pytest.mark.parametrize("h0_shape", [(N, H), (H,), (1, N, H)])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_recurrent_network_lstm_matches_reference(h0_shape, with_lengths):
    net, outputs = lstm_net(with_lengths)
    values = case(0, h0_shape)
    ws = run(net, values)
    hidden, cell = lstm_reference(values["gates"], values["h0"].reshape(-1, H), values["c0"].reshape(-1, H),
                                  values["w"], values["b"], values["lengths"] if with_lengths else None)
    hidden_all, hidden_last, cell_all, cell_last = (ws.FetchBlob(o) for o in outputs)
    np.testing.assert_allclose(hidden_all, hidden[1:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hidden_last, hidden[-1:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cell_all, cell[1:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cell_last, cell[-1:], rtol=1e-4, atol=1e-5)
    assert [str(o) for o in outputs] == ["hidden_all", "hidden_last", "cell_all", "cell_last"]
    assert "StepWorkspaces(4 steps" in repr(ws.FetchBlob("rnn/step_workspaces"))


@pytest.mark.parametrize("h0_shape", [(N, H), (H,)])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_recurrent_network_gradient_matches_numeric(h0_shape, with_lengths):
    net, outputs = lstm_net(with_lengths, outputs_with_grads=(0, 1, 3))
    values = case(1, h0_shape)
    rng = np.random.default_rng(2)
    losses = []
    for k in (0, 1, 3):  # weighted, so every output's gradient differs from ones
        values[f"weight{k}"] = rng.standard_normal((T if k == 0 else 1, N, H))
        losses.append(net.Mul([outputs[k], f"weight{k}"], f"loss{k}"))
    reports = check_net_gradient(net.Proto(), [str(loss) for loss in losses], values,
                                 ["gates", "h0", "c0", "w", "b"])
    assert all(r.ok for r in reports), [str(r) for r in reports if not r.ok]


def test_empty_sequence_passes_the_initial_states_through():
    net, outputs = lstm_net(outputs_with_grads=(1,))
    values = {**case(8), "gates": np.zeros((0, N, 4 * H)), "weight": np.random.default_rng(9).standard_normal((1, N, H))}
    loss = net.Mul([outputs[1], "weight"], "loss")
    ws = run(net, values)
    assert ws.FetchBlob(outputs[0]).shape == (0, N, H)
    np.testing.assert_allclose(ws.FetchBlob(outputs[1])[0], values["h0"], rtol=1e-6)
    reports = check_net_gradient(net.Proto(), [str(loss)], values, ["h0", "c0", "w"])
    assert all(r.ok for r in reports), [str(r) for r in reports if not r.ok]


def test_recurrent_network_gradient_op_inputs_and_outputs():
    net, outputs = lstm_net()
    grads = net.AddGradientOperators({outputs[0]: "hidden_all_grad"})
    op = net.Proto().op[-1]
    assert op.type == "RecurrentNetworkGradient"
    assert list(op.input) == ["hidden_all_grad", "gates", "h0", "c0", "w", "b", "hidden_all", "hidden_last",
                              "cell_all", "cell_last", "rnn/step_workspaces"]
    assert list(op.output) == ["gates_grad", "w_grad", "b_grad", "h0_grad", "c0_grad"]
    assert {k: grads[k] for k in ("w", "b", "h0")} == {"w": "w_grad", "b": "b_grad", "h0": "h0_grad"}


def test_forward_only_has_no_backward_step_and_no_gradient_run():
    net, outputs = lstm_net(forward_only=True)
    (op,) = net.Proto().op
    assert "backward_step_net" not in {arg.name for arg in op.arg}
    ws = run(net, case(3))
    assert ws.FetchBlob(outputs[0]).shape == (T, N, H)
    gradient = core.CreateOperator("RecurrentNetworkGradient", ["g", *op.input, *op.output],
                                   ["gates_grad", "h0_grad", "c0_grad"], arg=op.arg)
    with pytest.raises(NetError, match="no backward_step_net: the forward op was built forward only"):
        ws.RunOperatorOnce(gradient)
    net, _ = lstm_net()
    op = net.Proto().op[0]
    gradient = core.CreateOperator("RecurrentNetworkGradient", ["g", *op.input, *op.output],
                                   ["gates_grad", "w_grad", "b_grad", "h0_grad", "c0_grad"], arg=op.arg)
    gradient.arg[[arg.name for arg in gradient.arg].index("param")].ints[:] = [3, 40]
    with pytest.raises(NetError, match=r"param / initial_recurrent_state_ids \[40\] are not inputs"):
        ws.RunOperatorOnce(gradient)


def test_step_net_in_text_form_is_accepted():
    net, outputs = lstm_net(forward_only=True)
    op = net.Proto().op[0]
    step_arg = next(arg for arg in op.arg if arg.name == "step_net")
    text = text_format.MessageToString(step_arg.n)
    step_arg.ClearField("n")
    step_arg.s = text.encode()
    values = case(4)
    hidden, _ = lstm_reference(values["gates"], values["h0"], values["c0"], values["w"], values["b"])
    np.testing.assert_allclose(run(net, values).FetchBlob(outputs[0]), hidden[1:], rtol=1e-4, atol=1e-5)
    step_arg.s = b"op { type: "
    with pytest.raises(NetError, match="step_net is not a NetDef in text form"):
        run(net, values)


def test_rnn_executor_config_is_accepted():
    net, outputs = lstm_net()
    recurrent.set_rnn_executor_config(net.Proto().op[0], num_threads=4, max_cuda_streams=2)
    assert {"rnn_executor.num_threads", "rnn_executor.max_cuda_streams"} <= {a.name for a in net.Proto().op[0].arg}
    assert run(net, case(10)).FetchBlob(outputs[0]).shape == (T, N, H)
    with pytest.raises(ValueError, match="needs a RecurrentNetwork op, got FC"):
        recurrent.set_rnn_executor_config(core.CreateOperator("FC", ["x", "w", "b"], ["y"]), num_threads=1)


def test_legacy_rnn_step_net_type_runs_as_simple():
    net, outputs = lstm_net(forward_only=True)
    step_arg = next(arg for arg in net.Proto().op[0].arg if arg.name == "step_net")
    step_arg.n.type = "rnn"
    assert run(net, case(6)).FetchBlob(outputs[0]).shape == (T, N, H)


def test_retrieve_step_blobs_copies_each_steps_blobs():
    net, outputs = lstm_net()
    values = case(7)
    workspace.ResetWorkspace()
    try:
        for name, value in values.items():
            workspace.FeedBlob(name, value.astype(np.float32) if value.dtype == np.float64 else value)
        workspace.RunNetOnce(net.Proto())
        names = recurrent.retrieve_step_blobs(net, "fetched")
        assert {f"fetched_{blob}{t}".encode() for blob in ("hidden", "summed", "gates_t", "timestep")
                for t in range(T)} <= set(names)
        assert b"fetched_w0" not in names  # the op's own inputs stay out
        np.testing.assert_allclose(workspace.FetchBlob("fetched_hidden2")[0], workspace.FetchBlob(outputs[0])[2])
        np.testing.assert_array_equal(workspace.FetchBlob("fetched_timestep3"), [3])
    finally:
        workspace.ResetWorkspace()


def _with_arg(net, name, value):
    op = net.Proto().op[0]
    kept = [arg for arg in op.arg if arg.name != name]
    del op.arg[:]
    op.arg.extend(kept)
    op.arg.append(core.CreateOperator("RecurrentNetwork", [], [], **{name: value}).arg[0])
    return net


@pytest.mark.parametrize("name, value, message", [
    ("link_offset", [0, 1], r"link_internal, link_external, link_offset \(and link_window\) must be equally long"),
    ("initial_recurrent_state_ids", [1, 9], r"initial_recurrent_state_ids \[9\] are not inputs 1..4"),
    ("alias_dst", ["a", "b", "c", "d"], r"must be the alias_dst blobs \['a', 'b', 'c', 'd'\] and any recurrent_states, got \['hidden_all'"),
    ("alias_src", ["x", "x", "x", "x"], r"alias_src \['x', 'x', 'x', 'x'\] are not recurrent_states"),
    ("link_window", [1, 1, 1, 1, 0], r"link 'gates_t' needs offset >= 0 and window >= 1"),
])
def test_inconsistent_args_are_refused_at_create_net(name, value, message):
    net = _with_arg(lstm_net(forward_only=True)[0], name, value)
    with pytest.raises(NetError, match=message):
        Workspace().CreateNet(net.Proto())


def test_bad_shapes_fail_at_run_time():
    net, _ = lstm_net(forward_only=True)
    with pytest.raises(OpFailure, match=r"initial state 'h0' must be \[D\], \[N, D\] or \[K, N, D\] with N = 3"):
        run(net, {**case(5), "h0": np.zeros((2, H))})
    with pytest.raises(OpFailure, match=r"input 0 must be a T x N x ... sequence, got shape \[4\]"):
        run(net, {**case(5), "gates": np.zeros(4)})
    with pytest.raises(OpFailure, match=r"link 'gates_t' reads rows 4..4 of 'gates', which has 4"):
        run(_with_arg(net, "link_offset", [0, 1, 0, 1, 1]), case(5))


def test_inference_checks_args_and_leaves_outputs_unknown():
    seq, state = TensorInfo((T, N, 4 * H), "float32"), TensorInfo((N, H), "float32")
    args = {"recurrent_states": ["s"], "initial_recurrent_state_ids": [1], "alias_src": ["s"],
            "alias_dst": ["y"], "alias_offset": [1]}
    assert infer("RecurrentNetwork", [seq, state], n_out=2, **args) == [None, None]
    with pytest.raises(ShapeError, match=r"initial state 'input 1' must be"):
        infer("RecurrentNetwork", [seq, TensorInfo((5, H), "float32")], n_out=2, **args)
    with pytest.raises(ShapeError, match="recurrent_states and initial_recurrent_state_ids must be equally long"):
        infer("RecurrentNetwork", [seq, state], n_out=2, **{**args, "initial_recurrent_state_ids": []})
    gradient_args = {**args, "outputs_with_grads": [0], "param": [2]}
    assert infer("RecurrentNetworkGradient", [None] * 6, n_out=3, **gradient_args) == [None] * 3
    with pytest.raises(ShapeError, match=r"needs 3 outputs \(the input's, the 1 params' and the 1 initial"):
        infer("RecurrentNetworkGradient", [None] * 6, n_out=2, **gradient_args)
    with pytest.raises(ShapeError, match=r"output 0 with a gradient must alias rows 1.. or the last row"):
        infer("RecurrentNetworkGradient", [None] * 6, n_out=3, **{**gradient_args, "alias_offset": [0]})
