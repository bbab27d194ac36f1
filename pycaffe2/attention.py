"""Caffe2's attention module: one decoder step's attention over the encoder outputs,
as ops in a (step) model. Used by rnn_cell.AttentionCell.

Shapes (T encoder length, N batch, D encoder_output_dim): encoder_outputs_transposed
[N, D, T], weighted_encoder_outputs [T, N, D], decoder_hidden_state_t [1, N, H].
Each apply_* returns (context [1, N, D], weights [N, T, 1], blobs worth recomputing
on the backward pass), and the soft-coverage one the new coverage [1, N, T] too.
Blob names are Caffe2's, under `scope` given explicitly (the step net's blobs are
linked to outer ones by name).
"""
from __future__ import annotations

from pycaffe2 import brew


class AttentionType:
    Regular, Recurrent, Dot, SoftCoverage = tuple(range(4))


def s(scope, name) -> str:
    """`scope/name`: attention blobs are named by hand, not by the NameScope."""
    return f"{scope}/{name}"


def _weighted_context(model, encoder_outputs_transposed, encoder_output_dim, attention_weights_3d, scope):
    """sum_t weights[t] * encoder_outputs[t], as [1, N, D]."""
    context = brew.batch_mat_mul(model, [encoder_outputs_transposed, attention_weights_3d],
                                 s(scope, "attention_weighted_encoder_context"))  # [N, D, 1]
    context, _ = model.net.Reshape(
        context, [context, s(scope, "attention_weighted_encoder_context_old_shape")],
        shape=[1, -1, encoder_output_dim])
    return context


def _attention_weights(model, logits_transposed, scope, encoder_lengths=None):
    """Softmax over the encoder positions of [N, T, 1] logits; positions past a
    sequence's length are masked out first."""
    if encoder_lengths is not None:
        logits_transposed = model.net.SequenceMask([logits_transposed, encoder_lengths],
                                                   ["masked_attention_logits"], mode="sequence")
    return brew.softmax(model, logits_transposed, s(scope, "attention_weights_3d"), engine="CUDNN", axis=1)


def _logits_from_sum(model, hidden_encoder_sum, encoder_output_dim, scope):
    """v^T tanh(sum) for each encoder position: [T, N, D] -> [N, T, 1]. The FC's
    bias is frozen at zero (a constant shift cancels in the softmax)."""
    hidden_encoder_sum = model.net.Tanh(hidden_encoder_sum, hidden_encoder_sum)
    logits = brew.fc(model, hidden_encoder_sum, s(scope, "attention_logits"), dim_in=encoder_output_dim,
                     dim_out=1, axis=2, freeze_bias=True)
    return brew.transpose(model, logits, s(scope, "attention_logits_transposed"), axes=[1, 0, 2])


def _project(model, blob, dim_in, dim_out, scope, name):
    """An FC over the last axis of [1, N, dim_in], squeezed to [N, dim_out]."""
    out = brew.fc(model, blob, s(scope, name), dim_in=dim_in, dim_out=dim_out, axis=2)
    return model.net.Squeeze(out, out, dims=[0])


def _finish(model, logits_transposed, encoder_outputs_transposed, encoder_output_dim, scope, encoder_lengths):
    weights = _attention_weights(model, logits_transposed, scope, encoder_lengths)
    context = _weighted_context(model, encoder_outputs_transposed, encoder_output_dim, weights, scope)
    return context, weights


def apply_regular_attention(model, encoder_output_dim, encoder_outputs_transposed, weighted_encoder_outputs,
                            decoder_hidden_state_t, decoder_hidden_state_dim, scope, encoder_lengths=None):
    """Additive (Bahdanau) attention: v^T tanh(W_e s_j + W_h h_t)."""
    weighted_hidden = _project(model, decoder_hidden_state_t, decoder_hidden_state_dim, encoder_output_dim,
                               scope, "weighted_decoder_hidden_state")
    total = model.net.Add([weighted_encoder_outputs, weighted_hidden],
                          s(scope, "decoder_hidden_encoder_outputs_sum"), broadcast=1)
    logits = _logits_from_sum(model, total, encoder_output_dim, scope)
    context, weights = _finish(model, logits, encoder_outputs_transposed, encoder_output_dim, scope,
                               encoder_lengths)
    return context, weights, [total]


def apply_recurrent_attention(model, encoder_output_dim, encoder_outputs_transposed, weighted_encoder_outputs,
                              decoder_hidden_state_t, decoder_hidden_state_dim,
                              attention_weighted_encoder_context_t_prev, scope, encoder_lengths=None):
    """Regular attention whose match also sees the previous context (RecAtt,
    arXiv:1601.03317 section 4.1)."""
    weighted_prev = _project(model, attention_weighted_encoder_context_t_prev, encoder_output_dim,
                             encoder_output_dim, scope, "weighted_prev_attention_context")
    weighted_hidden = _project(model, decoder_hidden_state_t, decoder_hidden_state_dim, encoder_output_dim,
                               scope, "weighted_decoder_hidden_state")
    step_sum = model.net.Add([weighted_prev, weighted_hidden], s(scope, "decoder_hidden_encoder_outputs_sum_tmp"))
    total = model.net.Add([weighted_encoder_outputs, step_sum], s(scope, "decoder_hidden_encoder_outputs_sum"),
                          broadcast=1)
    logits = _logits_from_sum(model, total, encoder_output_dim, scope)
    context, weights = _finish(model, logits, encoder_outputs_transposed, encoder_output_dim, scope,
                               encoder_lengths)
    return context, weights, [total]


def apply_dot_attention(model, encoder_output_dim, encoder_outputs_transposed, decoder_hidden_state_t,
                        decoder_hidden_state_dim, scope, encoder_lengths=None):
    """Dot-product (Luong) attention: s_j . h_t, h_t first mapped to the encoder's
    width by an FC when the widths differ."""
    hidden = decoder_hidden_state_t
    if decoder_hidden_state_dim != encoder_output_dim:
        hidden = brew.fc(model, hidden, s(scope, "weighted_decoder_hidden_state"),
                         dim_in=decoder_hidden_state_dim, dim_out=encoder_output_dim, axis=2)
    squeezed = model.net.Squeeze(hidden, s(scope, "squeezed_weighted_decoder_hidden_state"), dims=[0])
    column = model.net.ExpandDims(squeezed, squeezed, dims=[2])  # [N, D, 1]
    logits = model.net.BatchMatMul([encoder_outputs_transposed, column], s(scope, "attention_logits"),
                                   trans_a=1)  # [N, T, 1]
    context, weights = _finish(model, logits, encoder_outputs_transposed, encoder_output_dim, scope,
                               encoder_lengths)
    return context, weights, []


def apply_soft_coverage_attention(model, encoder_output_dim, encoder_outputs_transposed,
                                  weighted_encoder_outputs, decoder_hidden_state_t, decoder_hidden_state_dim,
                                  scope, encoder_lengths, coverage_t_prev, coverage_weights):
    """Regular attention plus coverage_weights scaled by the attention each encoder
    position has had so far (coverage, [1, N, T]); returns the new coverage too."""
    weighted_hidden = _project(model, decoder_hidden_state_t, decoder_hidden_state_dim, encoder_output_dim,
                               scope, "weighted_decoder_hidden_state")
    total = model.net.Add([weighted_encoder_outputs, weighted_hidden],
                          s(scope, "decoder_hidden_encoder_outputs_sum"), broadcast=1)
    coverage_2d = model.net.Squeeze(coverage_t_prev, s(scope, "coverage_t_prev_2d"), dims=[0])
    coverage_tn = brew.transpose(model, coverage_2d, s(scope, "coverage_t_prev_transposed"))  # [T, N]
    scaled = model.net.Mul([coverage_weights, coverage_tn], s(scope, "scaled_coverage_weights"),
                           broadcast=1, axis=0)
    # a new blob, not in place as in Caffe2: AddGradient reads its inputs (for their shapes)
    total = model.net.Add([total, scaled], s(scope, "decoder_hidden_encoder_outputs_sum_with_coverage"))
    logits = _logits_from_sum(model, total, encoder_output_dim, scope)
    context, weights = _finish(model, logits, encoder_outputs_transposed, encoder_output_dim, scope,
                               encoder_lengths)
    weights_2d = model.net.Squeeze(weights, s(scope, "attention_weights_2d"), dims=[2])
    coverage_t = model.net.Add([coverage_t_prev, weights_2d], s(scope, "coverage_t"), broadcast=1)
    return context, weights, [total], coverage_t
