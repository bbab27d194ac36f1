"""Inference rules of the recurrent family, and the checks its kernels share
(plain shapes and dtypes, so CreateNet and a run raise the same ShapeError)."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, rule, same_shape


def lstm_sizes(cell_shape, gates_shape, n_gates: int = 4, state: str = "cell_t_prev") -> tuple[int, int]:
    """(N, D) from a state [1, N, D] and gates [1, N, n_gates * D] (LSTM: 4, GRU: 3)."""
    if len(cell_shape) != 3 or len(gates_shape) != 3:
        raise ShapeError(f"{state} and gates must be [1, N, D] and [1, N, {n_gates}D], got "
                         f"{list(cell_shape)} and {list(gates_shape)}")
    _, n, d = cell_shape
    if tuple(gates_shape[:2]) != tuple(cell_shape[:2]) or gates_shape[2] != n_gates * d:
        raise ShapeError(f"gates must be [1, {n}, {n_gates * d}] ({n_gates} x D for {state} "
                         f"{list(cell_shape)}), got {list(gates_shape)}")
    return n, d


def check_seq_lengths(shape, dtype, n: int) -> None:
    if tuple(shape) != (n,) or dtype not in (None, "int32"):
        raise ShapeError(f"seq_lengths must be [{n}] int32, got {list(shape)} {dtype}")


def check_timestep(shape, dtype) -> None:
    if len(shape) > 1 or (shape and shape[0] != 1) or dtype not in (None, "int32"):
        raise ShapeError(f"timestep must be one int32, got {list(shape)} {dtype}")


def lstm_inputs(hidden, cell, gates, lengths, timestep) -> None:
    """Every check of LSTMUnit's inputs that known infos allow (None: unknown)."""
    if cell is not None and hidden is not None:
        same_shape(hidden.shape, cell.shape, ("hidden_t_prev", "cell_t_prev"))
    if cell is not None and gates is not None:
        n, _ = lstm_sizes(cell.shape, gates.shape)
        if lengths is not None:
            check_seq_lengths(lengths.shape, lengths.dtype, n)
    if timestep is not None:
        check_timestep(timestep.shape, timestep.dtype)


def _split(op: OpView, inputs: list):
    """(hidden, cell, gates, seq_lengths or None, timestep) by the op's input count."""
    with_lengths = op.arg("sequence_lengths")
    hidden, cell, gates = inputs[:3]
    return hidden, cell, gates, (inputs[3] if with_lengths else None), inputs[4 if with_lengths else 3]


def check_lengths_arg(n_inputs: int, forward_inputs: int, with_lengths) -> None:
    """sequence_lengths=1 needs the seq_lengths input, 0 needs it absent."""
    if n_inputs != forward_inputs + (1 if with_lengths else 0):
        raise ShapeError(f"sequence_lengths={int(bool(with_lengths))} needs "
                         f"{forward_inputs + (1 if with_lengths else 0)} inputs, got {n_inputs}")


@rule("recurrent_lstm_unit")
def lstm_unit(op: OpView, inputs: list) -> list:
    """LSTMUnit: hidden_t and cell_t like cell_t_prev."""
    check_lengths_arg(len(inputs), 4, op.arg("sequence_lengths"))
    hidden, cell, gates, lengths, timestep = _split(op, inputs)
    lstm_inputs(hidden, cell, gates, lengths, timestep)
    state = cell if cell is not None else hidden
    return [state, state]


@rule("recurrent_lstm_unit_gradient")
def lstm_unit_gradient(op: OpView, inputs: list) -> list:
    """LSTMUnitGradient: the gradients take their forward inputs' shapes."""
    check_lengths_arg(len(inputs), 8, op.arg("sequence_lengths"))
    hidden, cell, gates, lengths, timestep = _split(op, inputs[:-4])
    lstm_inputs(hidden, cell, gates, lengths, timestep)
    for name, info in zip(("hidden_t", "cell_t", "hidden_t_grad", "cell_t_grad"), inputs[-4:]):
        if info is not None and cell is not None:
            same_shape(info.shape, cell.shape, (name, "cell_t_prev"))
    return [hidden, cell, gates]




def gru_inputs(op: OpView, inputs: list, forward_inputs: int):
    """GRUUnit's (hidden_t_prev, gates, seq_lengths or None, timestep), checked."""
    check_lengths_arg(len(inputs), forward_inputs, op.arg("sequence_lengths"))
    with_lengths = op.arg("sequence_lengths")
    hidden, gates = inputs[:2]
    lengths, timestep = (inputs[2] if with_lengths else None), inputs[3 if with_lengths else 2]
    if hidden is not None and gates is not None:
        n, _ = lstm_sizes(hidden.shape, gates.shape, 3, "hidden_t_prev")
        if lengths is not None:
            check_seq_lengths(lengths.shape, lengths.dtype, n)
    if timestep is not None:
        check_timestep(timestep.shape, timestep.dtype)
    return hidden, gates


@rule("recurrent_gru_unit")
def gru_unit(op: OpView, inputs: list) -> list:
    """GRUUnit: hidden_t like hidden_t_prev."""
    hidden, _ = gru_inputs(op, inputs, 3)
    return [hidden]


@rule("recurrent_gru_unit_gradient")
def gru_unit_gradient(op: OpView, inputs: list) -> list:
    """GRUUnitGradient: the gradients take their forward inputs' shapes."""
    hidden, gates = gru_inputs(op, inputs[:-2], 3)
    for name, info in zip(("hidden_t", "hidden_t_grad"), inputs[-2:]):
        if info is not None and hidden is not None:
            same_shape(info.shape, hidden.shape, (name, "hidden_t_prev"))
    return [hidden, gates]
