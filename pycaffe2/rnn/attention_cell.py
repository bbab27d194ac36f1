"""Caffe2's attention cells (rnn_cell.AttentionCell and its LSTM / MILSTM decoders,
rnn_cell.LSTMWithAttention): a decoder cell whose every step also computes an
attention context over the encoder outputs (pycaffe2.attention). The context is an
extra state, fed to the next step's decoder as an extra input; the cell's output is
[decoder hidden state, context]."""
from __future__ import annotations

from pycaffe2 import brew, core
from pycaffe2.attention import (
    AttentionType,
    apply_dot_attention,
    apply_recurrent_attention,
    apply_regular_attention,
    apply_soft_coverage_attention,
)
from pycaffe2.rnn_cell import LSTMCell, MILSTMCell, RNNCell

ATTENTION_TYPES = (AttentionType.Regular, AttentionType.Recurrent, AttentionType.Dot, AttentionType.SoftCoverage)


class AttentionCell(RNNCell):
    """decoder_cell's states, then the attention context (then, for soft coverage, the
    coverage): encoder_outputs is T x N x encoder_output_dim, encoder_lengths [N] (or
    None when all encoder sequences are full length)."""

    def __init__(self, encoder_output_dim, encoder_outputs, encoder_lengths, decoder_cell, decoder_state_dim,
                 attention_type, weighted_encoder_outputs, attention_memory_optimization, **kwargs):
        super().__init__(**kwargs)
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type {attention_type!r} is not an AttentionType "
                             f"(Regular, Recurrent, Dot or SoftCoverage: {list(ATTENTION_TYPES)})")
        self.encoder_output_dim, self.encoder_outputs = encoder_output_dim, encoder_outputs
        self.encoder_lengths, self.decoder_cell = encoder_lengths, decoder_cell
        self.decoder_state_dim, self.attention_type = decoder_state_dim, attention_type
        self.weighted_encoder_outputs = weighted_encoder_outputs
        self.attention_memory_optimization = attention_memory_optimization
        self.encoder_outputs_transposed = None
        self.coverage_weights = None

    @property
    def _coverage(self) -> bool:
        return self.attention_type == AttentionType.SoftCoverage

    def _apply(self, model, input_t, seq_lengths, states, timestep, extra_inputs=None):
        if extra_inputs:
            raise ValueError("an AttentionCell takes no extra inputs (its context is the decoder's)")
        extra = 2 if self._coverage else 1
        decoder_prev_states, context_prev = states[:-extra], states[-extra]
        decoder_states = self.decoder_cell._apply(model, input_t, seq_lengths, decoder_prev_states, timestep,
                                                  extra_inputs=[(context_prev, self.encoder_output_dim)])
        self.hidden_t_intermediate = self.decoder_cell._prepare_output(model, decoder_states)
        common = {"model": model, "encoder_output_dim": self.encoder_output_dim,
                  "encoder_outputs_transposed": self.encoder_outputs_transposed,
                  "decoder_hidden_state_t": self.hidden_t_intermediate,
                  "decoder_hidden_state_dim": self.decoder_state_dim, "scope": self.name,
                  "encoder_lengths": self.encoder_lengths}
        weighted = {"weighted_encoder_outputs": self.weighted_encoder_outputs}
        if self.attention_type == AttentionType.Recurrent:
            result = apply_recurrent_attention(**common, **weighted,
                                               attention_weighted_encoder_context_t_prev=context_prev)
        elif self.attention_type == AttentionType.Regular:
            result = apply_regular_attention(**common, **weighted)
        elif self.attention_type == AttentionType.Dot:
            result = apply_dot_attention(**common)
        else:
            result = apply_soft_coverage_attention(**common, **weighted, coverage_t_prev=states[-1],
                                                   coverage_weights=self.coverage_weights)
        context_t, self.attention_weights_3d, attention_blobs = result[:3]
        if self.attention_memory_optimization:
            self.recompute_blobs.extend(attention_blobs)
        output = [*decoder_states, context_t, *result[3:]]
        out_index = self.decoder_cell.get_output_state_index()
        # the hidden state leaves the step under a name of its own (its last value is an output)
        output[out_index] = model.Copy(output[out_index], self.scope("hidden_t_external"))
        model.net.AddExternalOutputs(*output)
        return output

    def get_attention_weights(self):
        """[N, T, 1]: the last step's attention weights."""
        return self.attention_weights_3d

    def prepare_input(self, model, input_blob):
        if self.encoder_outputs_transposed is None:
            self.encoder_outputs_transposed = brew.transpose(
                model, self.encoder_outputs, self.scope("encoder_outputs_transposed"), axes=[1, 2, 0])
        if self.weighted_encoder_outputs is None and self.attention_type != AttentionType.Dot:
            self.weighted_encoder_outputs = brew.fc(
                model, self.encoder_outputs, self.scope("weighted_encoder_outputs"),
                dim_in=self.encoder_output_dim, dim_out=self.encoder_output_dim, axis=2)
        return self.decoder_cell.prepare_input(model, input_blob)

    def build_initial_coverage(self, model):
        """Zero coverage, [encoder_length] from the encoder outputs' shape at run time;
        also makes coverage_weights, the encoder outputs' own FC for the coverage term."""
        if not self._coverage:
            raise ValueError("build_initial_coverage is for AttentionType.SoftCoverage")
        self.coverage_weights = brew.fc(model, self.encoder_outputs, self.scope("coverage_weights"),
                                        dim_in=self.encoder_output_dim, dim_out=self.encoder_output_dim, axis=2)
        encoder_length = model.net.Slice(model.net.Shape(self.encoder_outputs), starts=[0], ends=[1])
        return model.net.ConstantFill(encoder_length, self.scope("initial_coverage"), value=0.0, input_as_shape=1)

    def get_state_names(self):
        names = list(self.decoder_cell.get_state_names())
        names[self.get_output_state_index()] = self.scope("hidden_t_external")
        names.append(self.scope("attention_weighted_encoder_context_t"))
        if self._coverage:
            names.append(self.scope("coverage_t"))
        return names

    def get_output_dim(self):
        return self.decoder_state_dim + self.encoder_output_dim

    def get_output_state_index(self):
        return self.decoder_cell.get_output_state_index()

    def _prepare_output(self, model, states):
        context = states[-2] if self._coverage else states[-1]
        with core.NameScope(self.name or ""):
            return brew.concat(model, [self.hidden_t_intermediate, context], "states_and_context_combination",
                               axis=2)

    def _prepare_output_sequence(self, model, state_outputs):
        extra = 2 if self._coverage else 1  # states after the decoder's, each (all, last) in the outputs
        decoder_output = self.decoder_cell._prepare_output_sequence(model, state_outputs[:-2 * extra])
        context_all = state_outputs[2 * (len(self.get_state_names()) - extra)]
        with core.NameScope(self.name or ""):
            return brew.concat(model, [decoder_output, context_all], "states_and_context_combination", axis=2)


def _decoder(cell_class, decoder_input_dim, decoder_state_dim, forget_bias, lstm_memory_optimization, name):
    return cell_class(input_size=decoder_input_dim, hidden_size=decoder_state_dim, forget_bias=forget_bias,
                      memory_optimization=lstm_memory_optimization, name=f"{name}/decoder", forward_only=False,
                      drop_states=False)


class LSTMWithAttentionCell(AttentionCell):
    """An AttentionCell over an LSTMCell decoder named `<name>/decoder`."""

    def __init__(self, encoder_output_dim, encoder_outputs, encoder_lengths, decoder_input_dim, decoder_state_dim,
                 name, attention_type, weighted_encoder_outputs, forget_bias, lstm_memory_optimization,
                 attention_memory_optimization, forward_only=False):
        super().__init__(
            encoder_output_dim=encoder_output_dim, encoder_outputs=encoder_outputs,
            encoder_lengths=encoder_lengths,
            decoder_cell=_decoder(LSTMCell, decoder_input_dim, decoder_state_dim, forget_bias,
                                  lstm_memory_optimization, name),
            decoder_state_dim=decoder_state_dim, name=name, attention_type=attention_type,
            weighted_encoder_outputs=weighted_encoder_outputs,
            attention_memory_optimization=attention_memory_optimization, forward_only=forward_only)


class MILSTMWithAttentionCell(AttentionCell):
    """An AttentionCell over an MILSTMCell decoder named `<name>/decoder`."""

    def __init__(self, encoder_output_dim, encoder_outputs, decoder_input_dim, decoder_state_dim, name,
                 attention_type, weighted_encoder_outputs, forget_bias, lstm_memory_optimization,
                 attention_memory_optimization, forward_only=False, encoder_lengths=None):
        super().__init__(
            encoder_output_dim=encoder_output_dim, encoder_outputs=encoder_outputs,
            encoder_lengths=encoder_lengths,
            decoder_cell=_decoder(MILSTMCell, decoder_input_dim, decoder_state_dim, forget_bias,
                                  lstm_memory_optimization, name),
            decoder_state_dim=decoder_state_dim, name=name, attention_type=attention_type,
            weighted_encoder_outputs=weighted_encoder_outputs,
            attention_memory_optimization=attention_memory_optimization, forward_only=forward_only)


def LSTMWithAttention(model, decoder_inputs, decoder_input_lengths, initial_decoder_hidden_state,
                      initial_decoder_cell_state, initial_attention_weighted_encoder_context, encoder_output_dim,
                      encoder_outputs, encoder_lengths, decoder_input_dim, decoder_state_dim, scope,
                      attention_type=AttentionType.Regular, outputs_with_grads=(0, 4), weighted_encoder_outputs=None,
                      lstm_memory_optimization=False, attention_memory_optimization=False, forget_bias=0.0,
                      forward_only=False):
    """An LSTM decoder over decoder_inputs (T x N x decoder_input_dim) attending to
    encoder_outputs; returns the states' outputs (hidden_all, hidden_last, cell_all,
    cell_last, context_all, context_last[, coverage_all, coverage_last])."""
    cell = LSTMWithAttentionCell(
        encoder_output_dim=encoder_output_dim, encoder_outputs=encoder_outputs, encoder_lengths=encoder_lengths,
        decoder_input_dim=decoder_input_dim, decoder_state_dim=decoder_state_dim, name=scope,
        attention_type=attention_type, weighted_encoder_outputs=weighted_encoder_outputs, forget_bias=forget_bias,
        lstm_memory_optimization=lstm_memory_optimization,
        attention_memory_optimization=attention_memory_optimization, forward_only=forward_only)
    initial_states = [initial_decoder_hidden_state, initial_decoder_cell_state,
                      initial_attention_weighted_encoder_context]
    if attention_type == AttentionType.SoftCoverage:
        initial_states.append(cell.build_initial_coverage(model))
    _, result = cell.apply_over_sequence(model=model, inputs=decoder_inputs, seq_lengths=decoder_input_lengths,
                                         initial_states=initial_states, outputs_with_grads=outputs_with_grads)
    return result
