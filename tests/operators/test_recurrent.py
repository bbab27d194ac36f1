"""Recurrent family: LSTMUnit and GRUUnit against NumPy steps (valid and ended
rows, drop_states, forget_bias, without seq_lengths), their gradient ops and
registered makers against numeric differentiation, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

N, D = 4, 3


def lstm_case(seed, lengths=(2, 1, 3, 0), t=1):
    rng = np.random.default_rng(seed)
    states = [rng.standard_normal((1, N, D)).astype(np.float32) for _ in range(2)]
    gates = rng.standard_normal((1, N, 4 * D)).astype(np.float32)
    return states + [gates, np.array(lengths, np.int32), np.array([t], np.int32)]


def lstm_reference(hidden, cell, gates, lengths, timestep, forget_bias=0.0, sequence_lengths=1, drop_states=0):
    sig = lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))
    i, f, o, g = (gates[0][:, k * D:(k + 1) * D] for k in range(4))
    c = sig(f + forget_bias) * cell[0] + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    hidden_out, cell_out = h.copy(), c.copy()
    for n in range(N):
        if sequence_lengths and timestep[0] >= lengths[n]:
            hidden_out[n] = 0 if drop_states else hidden[0][n]
            cell_out[n] = 0 if drop_states else cell[0][n]
    return hidden_out[None], cell_out[None]


@pytest.mark.parametrize("args", [{}, {"forget_bias": 1.5}, {"drop_states": 1}])
def test_lstm_unit_matches_reference(args):
    hidden_t, cell_t = check_reference("LSTMUnit", lstm_case(0), lstm_reference, args, num_outputs=2)
    assert hidden_t.shape == (1, N, D) and cell_t.dtype == np.float32


def test_lstm_unit_without_seq_lengths_updates_every_row():
    hidden, cell, gates, _, timestep = lstm_case(1)
    args = {"sequence_lengths": 0}
    check_reference("LSTMUnit", [hidden, cell, gates, timestep],
                    lambda h, c, g, t, **a: lstm_reference(h, c, g, None, t, **a), args, num_outputs=2)


@pytest.mark.parametrize("args", [{}, {"drop_states": 1, "forget_bias": 0.5}])
def test_lstm_unit_gradient_op_matches_numeric(args):
    inputs = lstm_case(2)
    hidden_t, cell_t = run_op("LSTMUnit", inputs, args, num_outputs=2)
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((1, N, D)).astype(np.float32) for _ in range(2)]
    check_gradient_op("LSTMUnit", inputs, "LSTMUnitGradient", inputs + [hidden_t, cell_t] + grads,
                      {0: 0, 1: 1, 2: 2}, grads, args, num_outputs=2)


@pytest.mark.parametrize("input_to_check", [0, 1, 2])
def test_lstm_unit_registered_gradient(input_to_check):
    op = make_op("LSTMUnit", ["h", "c", "g", "s", "t"], ["h_t", "c_t"])
    report = check_op_gradient(op, lstm_case(4), input_to_check, outputs_with_grads=[0, 1])
    assert report.ok, report


def test_lstm_unit_maker_needs_both_output_gradients():
    op = make_op("LSTMUnit", ["h", "c", "g", "s", "t"], ["h_t", "c_t"])
    (grad,), g_input = GetGradientForOp(op, ["h_t_grad", "c_t_grad"])
    assert list(grad.input) == ["h", "c", "g", "s", "t", "h_t", "c_t", "h_t_grad", "c_t_grad"]
    assert g_input == ["h_grad", "c_grad", "g_grad", None, None]
    with pytest.raises(GradientError, match=r"output 1 \(c_t\) has no gradient"):
        GetGradientForOp(op, ["h_t_grad", None])


def test_lstm_unit_inference_and_errors():
    state = TensorInfo((1, N, D), "float32")
    lengths, step = TensorInfo((N,), "int32"), TensorInfo((1,), "int32")
    assert infer("LSTMUnit", [state, state, (1, N, 4 * D), lengths, step], n_out=2) == [state, state]
    with pytest.raises(ShapeError, match=r"gates must be \[1, 4, 12\] \(4 x D for cell_t_prev \[1, 4, 3\]\), got \[1, 4, 9\]"):
        infer("LSTMUnit", [state, state, (1, N, 9), lengths, step], n_out=2)
    with pytest.raises(ShapeError, match=r"seq_lengths must be \[4\] int32, got \[3\] int64"):
        infer("LSTMUnit", [state, state, (1, N, 4 * D), TensorInfo((3,), "int64"), step], n_out=2)
    with pytest.raises(ShapeError, match=r"timestep must be one int32"):
        infer("LSTMUnit", [state, state, (1, N, 4 * D), lengths, TensorInfo((2,), "int32")], n_out=2)
    with pytest.raises(ShapeError, match=r"sequence_lengths=0 needs 4 inputs, got 5"):
        infer("LSTMUnit", [state, state, (1, N, 4 * D), lengths, step], n_out=2, sequence_lengths=0)
    assert infer("LSTMUnitGradient", [state, state, (1, N, 4 * D), lengths, step] + [state] * 4, n_out=3)[2] == \
        TensorInfo((1, N, 4 * D), "float32")
    with pytest.raises((OpFailure, NetError), match="cell_t_prev and gates must be"):
        run_op("LSTMUnit", [np.zeros((N, D), np.float32)] * 2 + lstm_case(5)[2:], num_outputs=2)


def gru_case(seed, lengths=(2, 1, 3, 0), t=1):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((1, N, D)).astype(np.float32)
    gates = rng.standard_normal((1, N, 3 * D)).astype(np.float32)
    return [hidden, gates, np.array(lengths, np.int32), np.array([t], np.int32)]


def gru_reference(hidden, gates, lengths, timestep, sequence_lengths=1, drop_states=0, forget_bias=0.0):
    u = 1 / (1 + np.exp(-gates[0][:, D:2 * D].astype(np.float64)))
    h = u * hidden[0] + (1 - u) * np.tanh(gates[0][:, 2 * D:])
    for n in range(N):
        if sequence_lengths and timestep[0] >= lengths[n]:
            h[n] = 0 if drop_states else hidden[0][n]
    return h[None]


@pytest.mark.parametrize("args", [{}, {"drop_states": 1}, {"forget_bias": 2.0}])
def test_gru_unit_matches_reference(args):
    (hidden_t,) = check_reference("GRUUnit", gru_case(6), gru_reference, args)
    assert hidden_t.shape == (1, N, D)


def test_gru_unit_without_seq_lengths_updates_every_row():
    hidden, gates, _, timestep = gru_case(7)
    check_reference("GRUUnit", [hidden, gates, timestep],
                    lambda h, g, t, **a: gru_reference(h, g, None, t, **a), {"sequence_lengths": 0})


@pytest.mark.parametrize("args", [{}, {"drop_states": 1}, {"sequence_lengths": 0}])
def test_gru_unit_gradient_op_matches_numeric(args):
    inputs = gru_case(8)
    if args.get("sequence_lengths") == 0:
        del inputs[2]
    hidden_t = run_op("GRUUnit", inputs, args)
    grad = np.random.default_rng(9).standard_normal((1, N, D)).astype(np.float32)
    check_gradient_op("GRUUnit", inputs, "GRUUnitGradient", inputs + [hidden_t, grad], {0: 0, 1: 1}, [grad], args)


@pytest.mark.parametrize("input_to_check", [0, 1])
def test_gru_unit_registered_gradient(input_to_check):
    op = make_op("GRUUnit", ["h", "g", "s", "t"], ["h_t"])
    (grad,), g_input = GetGradientForOp(op, ["h_t_grad"])
    assert list(grad.input) == ["h", "g", "s", "t", "h_t", "h_t_grad"] and grad.type == "GRUUnitGradient"
    assert g_input == ["h_grad", "g_grad", None, None]
    report = check_op_gradient(op, gru_case(10), input_to_check)
    assert report.ok, report


def test_gru_unit_inference_and_errors():
    state = TensorInfo((1, N, D), "float32")
    lengths, step = TensorInfo((N,), "int32"), TensorInfo((1,), "int32")
    assert infer("GRUUnit", [state, (1, N, 3 * D), lengths, step]) == [state]
    assert infer("GRUUnitGradient", [state, (1, N, 3 * D), lengths, step, state, state], n_out=2)[1] == \
        TensorInfo((1, N, 3 * D), "float32")
    with pytest.raises(ShapeError, match=r"gates must be \[1, 4, 9\] \(3 x D for hidden_t_prev \[1, 4, 3\]\)"):
        infer("GRUUnit", [state, (1, N, 4 * D), lengths, step])
    with pytest.raises(ShapeError, match=r"sequence_lengths=1 needs 4 inputs, got 3"):
        infer("GRUUnit", [state, (1, N, 3 * D), step])
    with pytest.raises(ShapeError, match=r"hidden_t_grad"):
        infer("GRUUnitGradient", [state, (1, N, 3 * D), lengths, step, state, (1, N, 2)], n_out=2)
    with pytest.raises((OpFailure, NetError), match="hidden_t_prev and gates must be"):
        run_op("GRUUnit", [np.zeros((N, D), np.float32)] + gru_case(11)[1:])
