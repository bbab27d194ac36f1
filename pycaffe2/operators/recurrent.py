"""Recurrent-cell kernels (NumPy, CPU): LSTMUnit and GRUUnit, their gradient ops
and makers. The states are [1, N, D] and the gates [1, N, 4D] in the order
i, f, o, g (GRU: [1, N, 3D], reset, update, output);
rows past their sequence's end (timestep >= seq_lengths[n]) copy the previous
state forward (or zero it: drop_states) and pass its gradient straight back."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.schema.inference.recurrent import (
    check_lengths_arg,
    check_seq_lengths,
    check_timestep,
    lstm_sizes,
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _step_inputs(inputs, forward_inputs: int, sequence_lengths):
    """(hidden, cell, gates, valid rows [N, 1], the rest) after the shared checks."""
    check_lengths_arg(len(inputs), forward_inputs, sequence_lengths)
    hidden, cell, gates = inputs[:3]
    timestep = inputs[4 if sequence_lengths else 3]
    n, _ = lstm_sizes(cell.shape, gates.shape)
    check_timestep(timestep.shape, str(timestep.dtype))
    t = int(np.asarray(timestep).reshape(-1)[0])
    if sequence_lengths:
        lengths = inputs[3]
        check_seq_lengths(lengths.shape, str(lengths.dtype), n)
        valid = (t < lengths).reshape(n, 1)
    else:
        valid = np.ones((n, 1), bool)
    return hidden[0], cell[0], gates[0], valid, inputs[(5 if sequence_lengths else 4):]


def _gates(gates, forget_bias):
    i, f, o, g = np.split(gates, 4, axis=1)
    return _sigmoid(i), _sigmoid(f + forget_bias), _sigmoid(o), np.tanh(g)


@register_cpu("LSTMUnit")
def lstm_unit(*inputs, forget_bias, sequence_lengths, drop_states):
    hidden, cell, gates, valid, _ = _step_inputs(inputs, 4, sequence_lengths)
    i, f, o, g = _gates(gates, forget_bias)
    new_cell = f * cell + i * g
    new_hidden = o * np.tanh(new_cell)
    keep = (lambda state: np.zeros_like(state)) if drop_states else (lambda state: state)
    hidden_t = np.where(valid, new_hidden, keep(hidden)).astype(cell.dtype, copy=False)
    cell_t = np.where(valid, new_cell, keep(cell)).astype(cell.dtype, copy=False)
    return hidden_t[None], cell_t[None]


@register_cpu("LSTMUnitGradient")
def lstm_unit_gradient(*inputs, forget_bias, sequence_lengths, drop_states):
    _, cell_prev, gates, valid, rest = _step_inputs(inputs, 8, sequence_lengths)
    _, cell_t, hidden_grad, cell_grad = (x[0] for x in rest)
    i, f, o, g = _gates(gates, forget_bias)
    tanh_c = np.tanh(cell_t)
    c_term = cell_grad + hidden_grad * o * (1 - tanh_c * tanh_c)
    gates_grad = np.concatenate([c_term * g * i * (1 - i), c_term * cell_prev * f * (1 - f),
                                 hidden_grad * tanh_c * o * (1 - o), c_term * i * (1 - g * g)], axis=1)
    passed = (lambda grad: np.zeros_like(grad)) if drop_states else (lambda grad: grad)
    hidden_prev_grad = np.where(valid, 0, passed(hidden_grad))
    cell_prev_grad = np.where(valid, c_term * f, passed(cell_grad))
    gates_grad = np.where(valid, gates_grad, 0)
    dtype = cell_prev.dtype
    return tuple(x.astype(dtype, copy=False)[None] for x in (hidden_prev_grad, cell_prev_grad, gates_grad))


@register_gradient("LSTMUnit")
def make_lstm_unit_gradient(g):
    inputs = [g.I(k) for k in range(len(g.op.input))]
    return [g.Op("LSTMUnitGradient", inputs + [g.O(0), g.O(1), g.GO(0), g.GO(1)], [g.GI(0), g.GI(1), g.GI(2)])]


def _gru_inputs(inputs, forward_inputs: int, sequence_lengths):
    """(hidden [N, D], gates [N, 3D], valid rows [N, 1], the rest) after the shared checks."""
    check_lengths_arg(len(inputs), forward_inputs, sequence_lengths)
    hidden, gates = inputs[:2]
    n, _ = lstm_sizes(hidden.shape, gates.shape, 3, "hidden_t_prev")
    timestep = inputs[3 if sequence_lengths else 2]
    check_timestep(timestep.shape, str(timestep.dtype))
    t = int(np.asarray(timestep).reshape(-1)[0])
    valid = np.ones((n, 1), bool)
    if sequence_lengths:
        check_seq_lengths(inputs[2].shape, str(inputs[2].dtype), n)
        valid = (t < inputs[2]).reshape(n, 1)
    return hidden[0], gates[0], valid, inputs[(4 if sequence_lengths else 3):]


def _gru_gates(gates):
    _, update, output = np.split(gates, 3, axis=1)
    return _sigmoid(update), np.tanh(output)


@register_cpu("GRUUnit")
def gru_unit(*inputs, sequence_lengths, drop_states):
    hidden, gates, valid, _ = _gru_inputs(inputs, 3, sequence_lengths)
    u, o = _gru_gates(gates)
    ended = np.zeros_like(hidden) if drop_states else hidden
    return np.where(valid, u * hidden + (1 - u) * o, ended).astype(hidden.dtype, copy=False)[None]


@register_cpu("GRUUnitGradient")
def gru_unit_gradient(*inputs, sequence_lengths, drop_states):
    hidden, gates, valid, rest = _gru_inputs(inputs, 5, sequence_lengths)
    grad = rest[1][0]
    u, o = _gru_gates(gates)
    gates_grad = np.concatenate([np.zeros_like(u), grad * (hidden - o) * u * (1 - u), grad * (1 - u) * (1 - o * o)],
                                axis=1)
    hidden_grad = np.where(valid, grad * u, 0 if drop_states else grad)
    gates_grad = np.where(valid, gates_grad, 0)
    return tuple(x.astype(hidden.dtype, copy=False)[None] for x in (hidden_grad, gates_grad))


@register_gradient("GRUUnit")
def make_gru_unit_gradient(g):
    inputs = [g.I(k) for k in range(len(g.op.input))]
    return [g.Op("GRUUnitGradient", inputs + [g.O(0), g.GO(0)], [g.GI(0), g.GI(1)])]
