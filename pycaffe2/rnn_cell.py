"""Caffe2's rnn_cell: recurrent cells built from ops, run over a sequence by one
RecurrentNetwork op.

A cell says what one timestep does (`apply_override`, or `_apply` for cells
that scope their own blobs) and names its states (`get_state_names_override`);
`apply_over_sequence` builds the step net in a ModelHelper that shares the
outer model's parameters and hands it to recurrent.recurrent_net. The outputs
of a sequence alternate per state: (state_1_all, state_1_last, state_2_all, ...).
LSTM(), BasicRNN() and MILSTM() build the standard networks, one cell per layer
(MultiRNNCell stacks them); GRU() is in gru_cell.
"""
from __future__ import annotations

import functools
import importlib
import inspect

import numpy as np

from pycaffe2 import brew, core, recurrent, workspace
from pycaffe2.model_helper import Initializer, ModelHelper


def _rectify_name(blob):
    """Names become BlobReferences, so a NameScope entered later leaves them alone."""
    if blob is None:
        return None
    return blob if isinstance(blob, core.BlobReference) else core.BlobReference(str(blob))


def _rectify_names(blobs) -> list:
    return [_rectify_name(blob) for blob in blobs]


class RNNCell:
    """Base of the cells: a subclass gives apply_override and get_state_names_override
    (or get_state_names); apply_over_sequence and apply come from here."""

    def __init__(self, name=None, forward_only=False, initializer=None):
        self.name = name
        self.recompute_blobs = []
        self.forward_only = forward_only
        self._initializer = initializer

    @property
    def initializer(self):
        return self._initializer

    @initializer.setter
    def initializer(self, value):
        self._initializer = value

    def scope(self, name):
        return self.name + "/" + name if self.name is not None else name

    def apply_over_sequence(self, model, inputs, seq_lengths=None, initial_states=None, outputs_with_grads=None):
        """Run the cell over `inputs` (T x N x D); returns (output sequence, all the
        states' outputs: state_all, state_last for each state)."""
        if initial_states is None:
            with core.NameScope(self.name or ""):
                if self.initializer is None:
                    raise ValueError("apply_over_sequence needs initial_states or a cell initializer")
                initial_states = self.initializer.create_states(model)
        preprocessed = self.prepare_input(model, inputs)
        step_model = ModelHelper(name=self.name, param_model=model)
        input_t, timestep = step_model.net.AddScopedExternalInputs("input_t", "timestep")
        if len(initial_states) != len(self.get_state_names()):
            raise ValueError(f"{len(initial_states)} initial states given for the "
                             f"{len(self.get_state_names())} states {list(self.get_state_names())}")
        states_prev = step_model.net.AddScopedExternalInputs(*[s + "_prev" for s in self.get_state_names()])
        states = self._apply(model=step_model, input_t=input_t, seq_lengths=seq_lengths, states=states_prev,
                             timestep=timestep)
        external_outputs = set(step_model.net.Proto().external_output)
        for state in states:
            if state not in external_outputs:
                step_model.net.AddExternalOutput(state)
        if outputs_with_grads is None:
            outputs_with_grads = [self.get_output_state_index() * 2]
        states_for_all_steps = recurrent.recurrent_net(
            net=model.net, cell_net=step_model.net, inputs=[(input_t, preprocessed)],
            initial_cell_inputs=list(zip(states_prev, initial_states)), links=dict(zip(states_prev, states)),
            timestep=timestep, scope=self.name, forward_only=self.forward_only,
            outputs_with_grads=outputs_with_grads, recompute_blobs_on_backward=self.recompute_blobs)
        return self._prepare_output_sequence(model, states_for_all_steps), states_for_all_steps

    def apply(self, model, input_t, seq_lengths, states, timestep):
        """One step on `model` itself: returns (output, new states)."""
        input_t = self.prepare_input(model, input_t)
        states = self._apply(model, input_t, seq_lengths, states, timestep)
        return self._prepare_output(model, states), states

    def _apply(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        """apply_override under the cell's NameScope; its inputs keep their own names."""
        args = self._rectify_apply_inputs(input_t, seq_lengths, states, timestep, extra_inputs)
        with core.NameScope(self.name or ""):
            return self.apply_override(model, *args)

    def _rectify_apply_inputs(self, input_t, seq_lengths, states, timestep, extra_inputs):
        input_t, seq_lengths, timestep = _rectify_names([input_t, seq_lengths, timestep])
        rectified = [input_t, seq_lengths, _rectify_names(states), timestep]
        if "extra_inputs" in inspect.signature(self.apply_override).parameters:
            if extra_inputs:
                names, sizes = zip(*extra_inputs)
                extra_inputs = list(zip(_rectify_names(names), sizes))
            rectified.append(extra_inputs)
        return rectified

    def apply_override(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        """One timestep: input_t is [1, N, D], states the previous states; returns the new
        states, in get_state_names order."""
        raise NotImplementedError("a cell implements apply_override")

    def prepare_input(self, model, input_blob):
        """Work on the whole input sequence done before the steps (e.g. its projection)."""
        return input_blob

    def get_output_state_index(self):
        """Index of the state that is the cell's output."""
        return 0

    def get_state_names(self):
        return list(map(self.scope, self.get_state_names_override()))

    def get_state_names_override(self):
        raise NotImplementedError("a cell implements get_state_names_override (or get_state_names)")

    def get_output_dim(self):
        raise NotImplementedError("a cell implements get_output_dim")

    def _prepare_output(self, model, states):
        return states[self.get_output_state_index()]

    def _prepare_output_sequence(self, model, state_outputs):
        # state_outputs alternate (all steps, last step) per state
        return state_outputs[2 * self.get_output_state_index()]


def _zero_state(model, name, size):
    return model.create_param(param_name=name, initializer=Initializer("ConstantFill", value=0.0), shape=[size])


class LSTMInitializer:
    """Zero initial hidden and cell states, as parameters of the model."""

    def __init__(self, hidden_size):
        self.hidden_size = hidden_size

    def create_states(self, model):
        return [_zero_state(model, "initial_hidden_state", self.hidden_size),
                _zero_state(model, "initial_cell_state", self.hidden_size)]


def _valid_rows(model, hidden_t, hidden_t_prev, seq_lengths, timestep, drop_states):
    """hidden_t where the sequence goes on, else the previous (or zero) state."""
    valid_b = model.net.GT([seq_lengths, timestep], "valid_b", broadcast=1)
    valid = model.net.Cast(valid_b, "valid_float", to=core.DataType.FLOAT)
    valid = model.net.ExpandDims(model.net.StopGradient(valid, "valid"), "valid_2d", dims=[1])  # a mask: no gradient
    hidden_valid = model.net.Mul([hidden_t, valid], "hidden_valid")
    if drop_states:
        return hidden_valid
    invalid = model.net.Sub([model.net.ConstantFill(valid, "ones", value=1.0), valid], "invalid")
    kept = model.net.Mul([hidden_t_prev, invalid], "hidden_invalid")
    return model.net.Add([hidden_valid, kept], "hidden_t_masked")  # a new name: hidden_t's gradient needs it


class BasicRNNCell(RNNCell):
    """hidden_t = activation(W hidden_t_prev + U input_t + b), activation tanh or relu."""

    def __init__(self, input_size, hidden_size, forget_bias, memory_optimization, drop_states=False,
                 initializer=None, activation=None, **kwargs):
        super().__init__(**kwargs)
        if activation not in ("relu", "tanh"):
            raise ValueError(f"BasicRNNCell activation must be 'relu' or 'tanh', got {activation!r}")
        self.drop_states, self.input_size, self.hidden_size = drop_states, input_size, hidden_size
        self.activation = activation

    def apply_override(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        hidden_t_prev = states[0]
        gates_t = brew.fc(model, hidden_t_prev, "gates_t", dim_in=self.hidden_size, dim_out=self.hidden_size,
                          axis=2)
        brew.sum(model, [gates_t, input_t], gates_t)
        hidden_t = (model.net.Tanh if self.activation == "tanh" else model.net.Relu)(gates_t, "hidden_t")
        if seq_lengths is not None:
            hidden_t = _valid_rows(model, hidden_t, hidden_t_prev, seq_lengths, timestep, self.drop_states)
        return (hidden_t,)

    def prepare_input(self, model, input_blob):
        return brew.fc(model, input_blob, self.scope("i2h"), dim_in=self.input_size, dim_out=self.hidden_size,
                       axis=2)

    def get_state_names(self):
        return (self.scope("hidden_t"),)

    def get_output_dim(self):
        return self.hidden_size


class LSTMCell(RNNCell):
    """The LSTM of LSTMUnit: gates = i2h(input_t) + gates_t(hidden_t_prev), i2h done
    for the whole sequence in prepare_input."""

    def __init__(self, input_size, hidden_size, forget_bias, memory_optimization, drop_states=False,
                 initializer=None, **kwargs):
        super().__init__(initializer=initializer, **kwargs)
        self.initializer = initializer or LSTMInitializer(hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.forget_bias = float(forget_bias)
        self.memory_optimization, self.drop_states = memory_optimization, drop_states
        self.gates_size = 4 * hidden_size

    def _recurrent_input(self, model, hidden_t_prev, extra_inputs, concat_name):
        """(the FC input for the gates, its width): hidden_t_prev and any extra inputs."""
        if not extra_inputs:
            return hidden_t_prev, self.hidden_size
        blobs, sizes = zip(*extra_inputs)
        joined = brew.concat(model, [hidden_t_prev, *blobs], concat_name, axis=2)
        return joined, self.hidden_size + sum(sizes)

    def _lstm_unit(self, model, gates_t, states, seq_lengths, timestep, outputs):
        hidden_t_prev, cell_t_prev = states
        inputs = [hidden_t_prev, cell_t_prev, gates_t] + ([seq_lengths] if seq_lengths is not None else [])
        hidden_t, cell_t = model.net.LSTMUnit(inputs + [timestep], outputs, forget_bias=self.forget_bias,
                                              drop_states=self.drop_states,
                                              sequence_lengths=seq_lengths is not None)
        model.net.AddExternalOutputs(hidden_t, cell_t)
        if self.memory_optimization:
            self.recompute_blobs = [gates_t]
        return hidden_t, cell_t

    def apply_override(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        fc_input, fc_dim = self._recurrent_input(model, states[0], extra_inputs, "gates_concatenated_input_t")
        gates_t = brew.fc(model, fc_input, "gates_t", dim_in=fc_dim, dim_out=self.gates_size, axis=2)
        brew.sum(model, [gates_t, input_t], gates_t)
        gates_t = self._normalize_gates(model, gates_t, "gates_t_norm")
        return self._lstm_unit(model, gates_t, states, seq_lengths, timestep, ["hidden_state", "cell_state"])

    def _normalize_gates(self, model, gates_t, norm_name):
        """The gates as LSTMUnit takes them; the LayerNorm cells (rnn.layer_norm_cell) normalize them."""
        return gates_t

    def get_input_params(self):
        return {"weights": self.scope("i2h") + "_w", "biases": self.scope("i2h") + "_b"}

    def get_recurrent_params(self):
        return {"weights": self.scope("gates_t") + "_w", "biases": self.scope("gates_t") + "_b"}

    def prepare_input(self, model, input_blob):
        return brew.fc(model, input_blob, self.scope("i2h"), dim_in=self.input_size, dim_out=self.gates_size,
                       axis=2)

    def get_state_names_override(self):
        return ["hidden_t", "cell_t"]

    def get_output_dim(self):
        return self.hidden_size


class MILSTMCell(LSTMCell):
    """Multiplicative-integration LSTM: gates = (alpha * x + beta1) * Wh + beta2 * x + b,
    with x = i2h(input_t) and Wh = prev_t(hidden_t_prev)."""

    def _apply(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        fc_input, fc_dim = self._recurrent_input(model, states[0], extra_inputs,
                                                 self.scope("gates_concatenated_input_t"))
        prev_t = brew.fc(model, fc_input, self.scope("prev_t"), dim_in=fc_dim, dim_out=self.gates_size, axis=2)
        alpha, beta_h, beta_i, b = (
            model.create_param(self.scope(name), shape=[self.gates_size],
                               initializer=Initializer("ConstantFill", value=value))
            for name, value in (("alpha", 1.0), ("beta1", 1.0), ("beta2", 1.0), ("b", 0.0)))
        scaled = model.net.ElementwiseLinear([input_t, alpha, beta_h], self.scope("alpha_by_input_t_plus_beta_h"),
                                             axis=2)
        product = model.net.Mul([scaled, prev_t], self.scope("alpha_by_input_t_plus_beta_h_by_prev_t"))
        linear = model.net.ElementwiseLinear([input_t, beta_i, b], self.scope("beta_i_by_input_t_plus_b"), axis=2)
        gates_t = brew.sum(model, [product, linear], self.scope("gates_t"))
        gates_t = self._normalize_gates(model, gates_t, self.scope("gates_t_norm"))
        return self._lstm_unit(model, gates_t, states, seq_lengths, timestep,
                               [self.scope("hidden_t_intermediate"), self.scope("cell_t")])


class DropoutCell(RNNCell):
    """Wraps a cell, applying dropout to its output (not to its recurrent states)."""

    def __init__(self, internal_cell, dropout_ratio=None, use_cudnn=False, **kwargs):
        if "is_test" not in kwargs:
            raise ValueError("DropoutCell needs is_test")
        self.internal_cell, self.dropout_ratio = internal_cell, dropout_ratio
        self.is_test, self.use_cudnn = kwargs.pop("is_test"), use_cudnn
        super().__init__(**kwargs)
        self.prepare_input = internal_cell.prepare_input
        self.get_output_state_index = internal_cell.get_output_state_index
        self.get_state_names = internal_cell.get_state_names
        self.get_output_dim = internal_cell.get_output_dim
        self.mask = 0

    def _apply(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        return self.internal_cell._apply(model, input_t, seq_lengths, states, timestep, extra_inputs)

    def _prepare_output(self, model, states):
        return self._apply_dropout(model, self.internal_cell._prepare_output(model, states))

    def _prepare_output_sequence(self, model, state_outputs):
        return self._apply_dropout(model, self.internal_cell._prepare_output_sequence(model, state_outputs))

    def _apply_dropout(self, model, output):
        if self.dropout_ratio and not self.forward_only:
            with core.NameScope(self.name or ""):
                output = brew.dropout(model, output, f"{output}_with_dropout_mask{self.mask}",
                                      ratio=float(self.dropout_ratio), is_test=self.is_test,
                                      use_cudnn=self.use_cudnn)
                self.mask += 1
        return output


class MultiRNNCellInitializer:
    def __init__(self, cells):
        self.cells = cells

    def create_states(self, model):
        states = []
        for i, cell in enumerate(self.cells):
            if cell.initializer is None:
                raise ValueError(f"layer {i}'s cell has no initializer: give initial_states")
            with core.NameScope(f"layer_{i}"), core.NameScope(cell.name or ""):
                states.extend(cell.initializer.create_states(model))
        return states


class MultiRNNCell(RNNCell):
    """Cells stacked: each layer's output state is the next layer's input.
    residual_output_layers: layers (not 0) whose input is added to their output."""

    def __init__(self, cells, residual_output_layers=None, **kwargs):
        super().__init__(**kwargs)
        self.cells = cells
        self.residual_output_layers = list(residual_output_layers or [])
        output_index_per_layer, base = [], 0
        for cell in cells:
            output_index_per_layer.append(base + cell.get_output_state_index())
            base += len(cell.get_state_names())
        self.output_connected_layers, self.output_indices = [], []
        for i in range(len(cells) - 1):
            if i + 1 in self.residual_output_layers:
                self.output_connected_layers.append(i)
                self.output_indices.append(output_index_per_layer[i])
            else:
                self.output_connected_layers, self.output_indices = [], []
        self.output_connected_layers.append(len(cells) - 1)
        self.output_indices.append(output_index_per_layer[-1])
        self.state_names = [self.layer_scoper(i)(name) for i, cell in enumerate(cells)
                            for name in cell.get_state_names()]
        self.initializer = MultiRNNCellInitializer(cells)

    def layer_scoper(self, layer_id):
        return lambda name: f"{self.name}/layer_{layer_id}/{name}"

    def prepare_input(self, model, input_blob):
        with core.NameScope(self.name or ""):
            return self.cells[0].prepare_input(model, _rectify_name(input_blob))

    def _apply(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        input_t, seq_lengths, timestep = _rectify_names([input_t, seq_lengths, timestep])
        states = _rectify_names(states)
        sizes = [len(cell.get_state_names()) for cell in self.cells]
        if len(states) != sum(sizes):
            raise ValueError(f"{len(states)} states given for cells holding {sum(sizes)}")
        next_states, start, layer_input = [], 0, input_t
        for i, cell in enumerate(self.cells):
            with core.NameScope(self.name or ""), core.NameScope(f"layer_{i}"):
                layer_states = states[start:start + sizes[i]]
                start += sizes[i]
                prepared = cell.prepare_input(model, layer_input) if i > 0 else layer_input
                layer_next = cell._apply(model, prepared, seq_lengths, layer_states, timestep,
                                         extra_inputs=None if i > 0 else extra_inputs)
                if i != len(self.cells) - 1:
                    output = cell._prepare_output(model, layer_next)
                    if i > 0 and i in self.residual_output_layers:
                        output = brew.sum(model, [output, layer_input], self.scope(f"residual_output_{i}"))
                    layer_input = output
                next_states.extend(layer_next)
        return next_states

    def get_state_names(self):
        return self.state_names

    def get_output_state_index(self):
        return sum(len(cell.get_state_names()) for cell in self.cells[:-1]) + \
            self.cells[-1].get_output_state_index()

    def _connected_outputs(self, model, states, per_state, prepare, name):
        outputs, start = [], 0
        for i, cell in enumerate(self.cells):
            count = per_state * len(cell.get_state_names())
            if i in self.output_connected_layers:
                outputs.append(getattr(cell, prepare)(model, states[start:start + count]))
            start += count
        return brew.sum(model, outputs, self.scope(name)) if len(outputs) > 1 else outputs[0]

    def _prepare_output(self, model, states):
        return self._connected_outputs(model, states, 1, "_prepare_output", "residual_output")

    def _prepare_output_sequence(self, model, states):
        return self._connected_outputs(model, states, 2, "_prepare_output_sequence", "residual_output_sequence")


def _LSTM(cell_class, model, input_blob, seq_lengths, initial_states, dim_in, dim_out, scope=None,
          outputs_with_grads=(0,), return_params=False, memory_optimization=False, forget_bias=0.0,
          forward_only=False, drop_states=False, return_last_layer_only=True, static_rnn_unroll_size=None,
          **cell_kwargs):
    """A recurrent network of `cell_class` cells over input_blob (T x N x dim_in), one
    layer per entry of dim_out; returns (hidden_all, hidden_last, cell_all, cell_last)
    of the last layer (of every layer with return_last_layer_only=False), plus the
    params with return_params."""
    if static_rnn_unroll_size is not None:
        raise NotImplementedError("static_rnn_unroll_size (UnrolledCell) is not available")
    dim_out = list(dim_out) if isinstance(dim_out, (list, tuple)) else [dim_out]
    layers = len(dim_out)
    cells = [cell_class(input_size=dim_in if i == 0 else dim_out[i - 1], hidden_size=dim_out[i],
                        forget_bias=forget_bias, memory_optimization=memory_optimization,
                        name=scope if layers == 1 else None, forward_only=forward_only, drop_states=drop_states,
                        **cell_kwargs) for i in range(layers)]
    cell = MultiRNNCell(cells, name=scope, forward_only=forward_only) if layers > 1 else cells[0]
    per_layer = 2 * len(cells[-1].get_state_names())
    _, result = cell.apply_over_sequence(
        model=model, inputs=input_blob, seq_lengths=seq_lengths, initial_states=initial_states,
        outputs_with_grads=[per_layer * (layers - 1) + i for i in outputs_with_grads])
    if return_last_layer_only:
        result = result[per_layer * (layers - 1):]
    if return_params:
        result = list(result) + [{"input": cell.get_input_params(), "recurrent": cell.get_recurrent_params()}]
    return tuple(result)


def _layered_LSTM(model, input_blob, seq_lengths, initial_states, dim_in, dim_out, scope, outputs_with_grads=(0,),
                  return_params=False, memory_optimization=False, forget_bias=0.0, forward_only=False,
                  drop_states=False, create_lstm=None):
    """Layers as separate recurrent networks, each started from the last one's final
    states (initial_states: the first layer's); returns the last layer's outputs."""
    dims = list(dim_out) if isinstance(dim_out, (list, tuple)) else [dim_out]
    if return_params and len(dims) > 1:
        raise ValueError("layered_LSTM gives return_params for one layer only")
    options = {"outputs_with_grads": outputs_with_grads, "memory_optimization": memory_optimization,
               "forget_bias": forget_bias, "forward_only": forward_only, "drop_states": drop_states}
    if len(dims) == 1:
        return create_lstm(model, input_blob, seq_lengths, initial_states, dim_in, dims[0], scope,
                           return_params=return_params, **options)
    layer_scope = scope
    for i, dim in enumerate(dims):
        output, last_output, all_states, last_state = create_lstm(
            model, input_blob, seq_lengths, initial_states, dim_in, dim, layer_scope, **options)
        input_blob, dim_in, initial_states = output, dim, (last_output, last_state)
        layer_scope = f"{scope}_layer_{i + 1}"
    return output, last_output, all_states, last_state


LSTM = functools.partial(_LSTM, LSTMCell)
BasicRNN = functools.partial(_LSTM, BasicRNNCell)
MILSTM = functools.partial(_LSTM, MILSTMCell)
layered_LSTM = functools.partial(_layered_LSTM, create_lstm=LSTM)


def GetLSTMParamNames():
    return {"weights": ["input_gate_w", "forget_gate_w", "output_gate_w", "cell_w"],
            "biases": ["input_gate_b", "forget_gate_b", "output_gate_b", "cell_b"]}


def InitFromLSTMParams(lstm_pblobs, param_values):
    """Set an LSTM's fused weights and biases (lstm_pblobs, from return_params) from
    per-gate values: param_values[input|recurrent][<gate>_w | <gate>_b]."""
    names = GetLSTMParamNames()
    for input_type, values in param_values.items():
        for kind in ("weights", "biases"):
            blob = lstm_pblobs[input_type][kind]
            fused = np.concatenate([np.ravel(values[name]) for name in names[kind]])
            current = workspace.FetchBlob(blob)
            workspace.FeedBlob(blob, fused.reshape(current.shape).astype(np.float32))


# The attention and LayerNorm cells live in pycaffe2.rnn (they subclass the cells above);
# Caffe2 has them here, so they are looked up there on first use (no import cycle).
_ELSEWHERE = {name: "pycaffe2.rnn.attention_cell" for name in
              ("AttentionCell", "LSTMWithAttention", "LSTMWithAttentionCell", "MILSTMWithAttentionCell")}
_ELSEWHERE.update({name: "pycaffe2.rnn.layer_norm_cell" for name in
                   ("LayerNormLSTM", "LayerNormLSTMCell", "LayerNormMILSTM", "LayerNormMILSTMCell")})


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
