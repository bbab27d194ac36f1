"""Caffe2's LayerNorm LSTM cells (rnn_cell.LayerNormLSTMCell, LayerNormMILSTMCell and
their LayerNormLSTM / LayerNormMILSTM networks): the LSTM and MILSTM cells with the
gates layer-normalized (brew.layer_norm over the last axis, a learned scale and bias
`gates_t_norm_scale` / `_bias`) before LSTMUnit."""
from __future__ import annotations

import functools

from pycaffe2 import brew
from pycaffe2.rnn_cell import _LSTM, LSTMCell, MILSTMCell


class _LayerNormGates:
    def _normalize_gates(self, model, gates_t, norm_name):
        normalized, _, _ = brew.layer_norm(model, gates_t, norm_name, dim_in=self.gates_size, axis=-1)
        return normalized


class LayerNormLSTMCell(_LayerNormGates, LSTMCell):
    """LSTMCell with layer-normalized gates."""


class LayerNormMILSTMCell(_LayerNormGates, MILSTMCell):
    """MILSTMCell with layer-normalized gates."""


LayerNormLSTM = functools.partial(_LSTM, LayerNormLSTMCell)
LayerNormMILSTM = functools.partial(_LSTM, LayerNormMILSTMCell)
