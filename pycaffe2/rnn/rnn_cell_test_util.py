"""Caffe2's rnn_cell_test_util: NumPy activations and _prepare_rnn, which builds a
recurrent network (create_rnn: rnn_cell.LSTM, gru_cell.GRU, ...) over fed random
initial states under a NameScope, for Caffe2's RNN tests."""
from __future__ import annotations

import numpy as np

from pycaffe2 import scope, workspace
from pycaffe2.model_helper import ModelHelper


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tanh(x):
    return np.tanh(x)


def _prepare_rnn(t, n, dim_in, create_rnn, outputs_with_grads, forget_bias, memory_optim=False,
                 forward_only=False, drop_states=False, T=None, two_d_initial_states=None, dim_out=None,
                 num_states=2, **kwargs):
    """(create_rnn's outputs, the net, the states' and the input's blobs); initial states
    are [N, D] or [1, N, D] (at random unless two_d_initial_states says), sequence
    lengths random in 1..t."""
    dim_out = [dim_in] if dim_out is None else dim_out
    model = ModelHelper(name="external")
    if two_d_initial_states is None:
        two_d_initial_states = np.random.randint(2)
    states = []
    for layer_id, d in enumerate(dim_out):
        for i in range(num_states):
            states.append(model.net.AddExternalInput(f"state_{i}/layer_{layer_id}"))
            shape = (n, d) if two_d_initial_states else (1, n, d)
            workspace.FeedBlob(states[-1], np.random.randn(*shape).astype(np.float32))
    with scope.NameScope("test_name_scope"):  # the cells must work under a scope too
        input_blob, seq_lengths = model.net.AddScopedExternalInputs("input_blob", "seq_lengths")
        outputs = create_rnn(model, input_blob, seq_lengths, states, dim_in=dim_in, dim_out=dim_out,
                             scope="external/recurrent", outputs_with_grads=outputs_with_grads,
                             memory_optimization=memory_optim, forget_bias=forget_bias, forward_only=forward_only,
                             drop_states=drop_states, static_rnn_unroll_size=T, **kwargs)
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob(seq_lengths, np.random.randint(1, t + 1, size=(n,)).astype(np.int32))
    return outputs, model.net, states + [input_blob]
