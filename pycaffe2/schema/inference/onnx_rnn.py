"""Inference rules of the onnx_rnn family (ONNX's whole-sequence RNN, GRU and LSTM),
and the checks its kernels share with them. Shapes follow ONNX: X [T, N, I] (layout 1:
[N, T, I]), W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], sequence_lens [N], initial
states [D, N, H] (layout 1: [N, D, H]), LSTM's P [D, 3H]; D is 2 when bidirectional.
An optional input given as an empty tensor counts as absent (how the ONNX converter
fills a gap before a later optional input).
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.activation import FLOAT_TYPES
from pycaffe2.schema.inference.segment import INDEX_TYPES

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}


def num_directions(direction: str) -> int:
    return 2 if direction == "bidirectional" else 1


def activation_names(op_type: str, activations, direction: str) -> list[str]:
    """The activations per direction (defaults where none are given), checked for count."""
    per_direction = len(DEFAULT_ACTIVATIONS[op_type])
    names = list(activations) or list(DEFAULT_ACTIVATIONS[op_type]) * num_directions(direction)
    if len(names) == per_direction and direction == "bidirectional":
        names = names * 2  # one set given for both directions, as onnxruntime accepts
    if len(names) != per_direction * num_directions(direction):
        raise ShapeError(f"activations must name {per_direction * num_directions(direction)} functions "
                         f"for direction '{direction}', got {len(names)}: {names}")
    return names


def rnn_dims(op_type: str, x, w, r, direction: str, layout: int, hidden_size: int) -> tuple:
    """(T, N, I, H, D) from the shapes of X, W and R, checked against each other and the args."""
    gates, dirs = GATES[op_type], num_directions(direction)
    if len(x) != 3:
        raise ShapeError(f"X must be 3-D ([seq_length, batch, input_size], or batch first with layout 1), "
                         f"got {list(x)}")
    steps, batch = (x[1], x[0]) if layout else (x[0], x[1])
    hidden = r[-1] if len(r) == 3 else hidden_size
    if len(w) != 3 or len(r) != 3 or w[0] != dirs or r[0] != dirs:
        raise ShapeError(f"W and R must be 3-D with {dirs} direction(s) first for direction '{direction}', "
                         f"got {list(w)} and {list(r)}")
    if hidden_size and hidden_size != hidden:
        raise ShapeError(f"hidden_size {hidden_size} disagrees with R {list(r)} (hidden size {hidden})")
    if tuple(w[1:]) != (gates * hidden, x[2]) or tuple(r[1:]) != (gates * hidden, hidden):
        raise ShapeError(f"W must be [{dirs}, {gates * hidden}, {x[2]}] and R [{dirs}, {gates * hidden}, "
                         f"{hidden}] for X {list(x)} and hidden size {hidden}, got {list(w)} and {list(r)}")
    return steps, batch, x[2], hidden, dirs


def optional_shapes(op_type: str, dims: tuple, layout: int, named: dict) -> None:
    """B, sequence_lens, initial_h, initial_c, P: each absent (None or empty) or of its shape."""
    _, batch, _, hidden, dirs = dims
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    wanted = {"B": (dirs, 2 * GATES[op_type] * hidden), "sequence_lens": (batch,), "initial_h": state,
              "initial_c": state, "P": (dirs, 3 * hidden)}
    for name, info in named.items():
        if info is None or 0 in info.shape:
            continue
        if tuple(info.shape) != wanted[name]:
            raise ShapeError(f"{name} must be {list(wanted[name])}, got {list(info.shape)}")
        if name == "sequence_lens" and info.dtype not in INDEX_TYPES:
            raise ShapeError(f"sequence_lens must be int32 or int64, got {info.dtype}")


def float_input(dtype) -> None:
    if str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"X must be float16, float32 or float64, got {dtype}")


OPTIONAL_NAMES = ("B", "sequence_lens", "initial_h", "initial_c", "P")


def optional_names(op_type: str) -> tuple[str, ...]:
    return OPTIONAL_NAMES if op_type == "LSTM" else OPTIONAL_NAMES[:3]


def _rnn_rule(op: OpView, inputs: list) -> list:
    x, w, r = inputs[:3]
    direction, layout = op.arg("direction"), op.arg("layout")
    activation_names(op.type, op.arg("activations", []), direction)
    if x is not None:
        float_input(x.dtype)
    if x is None or w is None or r is None:
        return [None] * op.n_outputs
    dims = rnn_dims(op.type, x.shape, w.shape, r.shape, direction, layout, op.arg("hidden_size"))
    optional_shapes(op.type, dims, layout, dict(zip(optional_names(op.type), inputs[3:])))
    steps, batch, _, hidden, dirs = dims
    y = (batch, steps, dirs, hidden) if layout else (steps, dirs, batch, hidden)
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    return [TensorInfo(y, x.dtype)] + [TensorInfo(state, x.dtype)] * (op.n_outputs - 1)


rule("onnx_rnn_rnn")(_rnn_rule)
rule("onnx_rnn_gru")(_rnn_rule)
rule("onnx_rnn_lstm")(_rnn_rule)
