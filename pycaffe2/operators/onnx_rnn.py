"""ONNX's whole-sequence recurrent ops (RNN, GRU, LSTM) in NumPy, CPU only.

One loop serves the three: the input projections X W^T + Wb of every step are computed
at once, then each step runs the cell on the rows still inside their sequence
(sequence_lens) and leaves the others as they were; the reverse direction walks each
row from its own last step down. The arithmetic runs in float64 and the outputs take
X's dtype. Activations take their alpha and beta from the op's lists in order, ONNX's
defaults otherwise.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.onnx_rnn import (
    activation_names,
    float_input,
    optional_names,
    optional_shapes,
    rnn_dims,
)


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow warning for large |x|


def _softplus(x):
    return np.logaddexp(0.0, x)


# name -> (function of (x, alpha, beta), default alpha or None, default beta or None)
ACTIVATIONS = {
    "Relu": (lambda x, a, b: np.maximum(x, 0.0), None, None),
    "Tanh": (lambda x, a, b: np.tanh(x), None, None),
    "Sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "Affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "LeakyRelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "ThresholdedRelu": (lambda x, a, b: np.where(x > a, x, 0.0), 1.0, None),
    "ScaledTanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0.0, 1.0), 0.2, 0.5),
    "Elu": (lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0.0))), 1.0, None),
    "Softsign": (lambda x, a, b: x / (1.0 + np.abs(x)), None, None),
    "Softplus": (lambda x, a, b: _softplus(x), None, None),
}


def _activations(op_type, activations, alphas, betas, direction, clip):
    """The activation callables, per direction, each clipping its input when clip > 0."""
    alphas, betas = list(alphas), list(betas)
    functions = []
    for name in activation_names(op_type, activations, direction):
        function, alpha, beta = ACTIVATIONS[name]
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        functions.append(_bind(function, alpha, beta, clip))
    per_direction = len(functions) // (2 if direction == "bidirectional" else 1)
    return [functions[k:k + per_direction] for k in range(0, len(functions), per_direction)]


def _bind(function, alpha, beta, clip):
    if clip > 0:
        return lambda x: function(np.clip(x, -clip, clip), alpha, beta)
    return lambda x: function(x, alpha, beta)


def _present(value):
    return value is not None and value.size > 0


def _prepare(op_type, inputs, direction, layout, hidden_size):
    """Checked (x [T, N, I], w, r, b, lengths [N], the optional inputs by name, dims)."""
    x, w, r = inputs[:3]
    float_input(x.dtype)
    dims = rnn_dims(op_type, x.shape, w.shape, r.shape, direction, layout, hidden_size)
    optional = dict(zip(optional_names(op_type), inputs[3:]))
    optional_shapes(op_type, dims, layout, {k: info_of(v) for k, v in optional.items()})
    optional = {k: v.astype(np.float64) if k != "sequence_lens" else v
                for k, v in optional.items() if _present(v)}
    steps, batch, _, hidden, dirs = dims
    for state in ("initial_h", "initial_c"):
        if state in optional and layout:
            optional[state] = optional[state].transpose(1, 0, 2)
    x = (x.transpose(1, 0, 2) if layout else x).astype(np.float64)
    lengths = optional.get("sequence_lens", np.full(batch, steps)).astype(np.int64)
    lengths = np.clip(lengths, 0, steps)
    gates = w.shape[1] // hidden
    bias = optional.get("B", np.zeros((dirs, 2 * gates * hidden)))
    return x, w.astype(np.float64), r.astype(np.float64), bias, lengths, optional, dims


def _run_direction(x, lengths, reverse, projection, states, cell):
    """Y [T, N, H] and the final states of one direction; `projection` [T, N, G*H]."""
    steps, batch = x.shape[:2]
    rows = np.arange(batch)
    y = np.zeros((steps, batch, states[0].shape[-1]))
    for s in range(steps):
        valid = s < lengths
        t = np.where(reverse, lengths - 1 - s, s).clip(0, steps - 1)
        new = cell(projection[t, rows], *states)
        states = tuple(np.where(valid[:, None], n, o) for n, o in zip(new, states))
        y[t[valid], rows[valid]] = states[0][valid]
    return y, states


def _run(op_type, inputs, args, cell_factory, num_outputs):
    direction, layout = args["direction"], args["layout"]
    x, w, r, bias, lengths, optional, dims = _prepare(op_type, inputs, direction, layout, args["hidden_size"])
    _, batch, _, hidden, dirs = dims
    functions = _activations(op_type, args["activations"], args["activation_alpha"], args["activation_beta"],
                             direction, args["clip"])
    n_states = 2 if op_type == "LSTM" else 1
    ys, finals = [], []
    for d in range(dirs):
        gates = w.shape[1]
        projection = x @ w[d].T + bias[d, :gates]
        initial = tuple(optional[k][d] if k in optional else np.zeros((batch, hidden))
                        for k in ("initial_h", "initial_c")[:n_states])
        reverse = direction == "reverse" or d == 1
        peep = optional["P"][d] if "P" in optional else None
        cell = cell_factory(r[d], bias[d, gates:], functions[d], peep)
        y, states = _run_direction(x, lengths, reverse, projection, initial, cell)
        ys.append(y)
        finals.append(states)
    dtype = inputs[0].dtype
    y = np.stack(ys, axis=1)  # [T, D, N, H]
    outputs = [y.transpose(2, 0, 1, 3) if layout else y]
    for k in range(n_states):
        state = np.stack([f[k] for f in finals])  # [D, N, H]
        outputs.append(state.transpose(1, 0, 2) if layout else state)
    return tuple(o.astype(dtype) for o in outputs[:num_outputs])


def _rnn_cell(r, rb, functions, peep):
    (f,) = functions
    return lambda xw, h: (f(xw + h @ r.T + rb),)


def _gru_cell(linear_before_reset):
    def factory(r, rb, functions, peep):
        f, g = functions
        hidden = r.shape[1]
        r_zr, r_h, rb_zr, rb_h = r[:2 * hidden], r[2 * hidden:], rb[:2 * hidden], rb[2 * hidden:]

        def cell(xw, h):
            zr = f(xw[:, :2 * hidden] + h @ r_zr.T + rb_zr)
            z, reset = zr[:, :hidden], zr[:, hidden:]
            if linear_before_reset:
                candidate = g(xw[:, 2 * hidden:] + reset * (h @ r_h.T + rb_h))
            else:
                candidate = g(xw[:, 2 * hidden:] + (reset * h) @ r_h.T + rb_h)
            return ((1.0 - z) * candidate + z * h,)
        return cell
    return factory


def _lstm_cell(input_forget):
    def factory(r, rb, functions, peep):
        f, g, h_act = functions
        hidden = r.shape[1]
        p_i, p_o, p_f = (np.zeros(hidden),) * 3 if peep is None else np.split(peep, 3)

        def cell(xw, h, c):
            gates = xw + h @ r.T + rb
            i_pre, o_pre, f_pre, c_pre = np.split(gates, 4, axis=1)
            i = f(i_pre + p_i * c)
            forget = 1.0 - i if input_forget else f(f_pre + p_f * c)
            c_new = forget * c + i * g(c_pre)
            o = f(o_pre + p_o * c_new)
            return o * h_act(c_new), c_new
        return cell
    return factory


def _args(**args):
    return args


@register_cpu("RNN")
def rnn(*inputs, hidden_size, direction, activations, activation_alpha, activation_beta, clip, layout,
        num_outputs):
    args = _args(hidden_size=hidden_size, direction=direction, activations=activations, clip=clip,
                 activation_alpha=activation_alpha, activation_beta=activation_beta, layout=layout)
    return _run("RNN", inputs, args, _rnn_cell, num_outputs)


@register_cpu("GRU")
def gru(*inputs, hidden_size, direction, activations, activation_alpha, activation_beta, clip, layout,
        linear_before_reset, num_outputs):
    args = _args(hidden_size=hidden_size, direction=direction, activations=activations, clip=clip,
                 activation_alpha=activation_alpha, activation_beta=activation_beta, layout=layout)
    return _run("GRU", inputs, args, _gru_cell(linear_before_reset), num_outputs)


@register_cpu("LSTM")
def lstm(*inputs, hidden_size, direction, activations, activation_alpha, activation_beta, clip, layout,
         input_forget, num_outputs):
    args = _args(hidden_size=hidden_size, direction=direction, activations=activations, clip=clip,
                 activation_alpha=activation_alpha, activation_beta=activation_beta, layout=layout)
    return _run("LSTM", inputs, args, _lstm_cell(input_forget), num_outputs)
