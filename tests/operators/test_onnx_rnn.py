"""onnx_rnn family (ONNX's RNN, GRU, LSTM over whole sequences): each against a per-row,
per-step NumPy reference written here (directions, layouts, sequence_lens, initial states,
biases, peepholes, input_forget, linear_before_reset, activations with alpha/beta, clip),
shape inference, and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer

T, N, I, H = 4, 3, 2, 5
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def sig(v):
    return 1 / (1 + np.exp(-v))


ACTS = {"Tanh": lambda v, a, b: np.tanh(v), "Sigmoid": lambda v, a, b: sig(v), "Relu": lambda v, a, b: v * (v > 0),
        "Affine": lambda v, a, b: a * v + b, "LeakyRelu": lambda v, a, b: np.where(v < 0, a * v, v),
        "ThresholdedRelu": lambda v, a, b: v * (v > a), "ScaledTanh": lambda v, a, b: a * np.tanh(b * v),
        "HardSigmoid": lambda v, a, b: np.minimum(1, np.maximum(0, a * v + b)),
        "Elu": lambda v, a, b: np.where(v < 0, a * (np.exp(v) - 1), v), "Softsign": lambda v, a, b: v / (1 + abs(v)),
        "Softplus": lambda v, a, b: np.log(1 + np.exp(v))}
ALPHA = {"Affine": 1.0, "LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "ScaledTanh": 1.0, "HardSigmoid": 0.2, "Elu": 1.0}
BETA = {"Affine": 0.0, "ScaledTanh": 1.0, "HardSigmoid": 0.5}
DEFAULTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def make_acts(op, activations, alphas, betas, dirs, clip):
    names = activations or DEFAULTS[op] * dirs
    alphas, betas, out = list(alphas), list(betas), []
    for name in names:
        a = alphas.pop(0) if name in ALPHA and alphas else ALPHA.get(name)
        b = betas.pop(0) if name in BETA and betas else BETA.get(name)
        out.append(lambda v, fn=ACTS[name], a=a, b=b: fn(np.clip(v, -clip, clip) if clip else v, a, b))
    k = len(DEFAULTS[op])
    return [out[d * k:(d + 1) * k] for d in range(dirs)]


def step(op, x, h, c, w, r, b, p, acts, lbr, input_forget):
    """One step for one batch row (vectors), straight from ONNX's equations."""
    g = GATES[op]
    wb, rb = b[:g * H], b[g * H:]
    if op == "RNN":
        return acts[0](w @ x + r @ h + wb + rb), None
    if op == "GRU":
        f, gg = acts
        z = f(w[:H] @ x + r[:H] @ h + wb[:H] + rb[:H])
        rr = f(w[H:2 * H] @ x + r[H:2 * H] @ h + wb[H:2 * H] + rb[H:2 * H])
        if lbr:
            hh = gg(w[2 * H:] @ x + rr * (r[2 * H:] @ h + rb[2 * H:]) + wb[2 * H:])
        else:
            hh = gg(w[2 * H:] @ x + r[2 * H:] @ (rr * h) + rb[2 * H:] + wb[2 * H:])
        return (1 - z) * hh + z * h, None
    f, gg, hh = acts
    pre = [w[k * H:(k + 1) * H] @ x + r[k * H:(k + 1) * H] @ h + wb[k * H:(k + 1) * H] + rb[k * H:(k + 1) * H]
           for k in range(4)]
    i = f(pre[0] + p[:H] * c)
    fg = 1 - i if input_forget else f(pre[2] + p[2 * H:] * c)
    c_new = fg * c + i * gg(pre[3])
    o = f(pre[1] + p[H:2 * H] * c_new)
    return o * hh(c_new), c_new


def reference(op, x, w, r, b=None, lens=None, h0=None, c0=None, p=None, direction="forward", layout=0,
              activations=(), activation_alpha=(), activation_beta=(), clip=0.0, linear_before_reset=0,
              input_forget=0, hidden_size=0):
    x, w, r = (v.astype(np.float64) for v in (x, w, r))
    if layout:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    steps, batch = x.shape[:2]
    dirs = w.shape[0]
    acts = make_acts(op, list(activations), activation_alpha, activation_beta, dirs, clip)
    y = np.zeros((steps, dirs, batch, H))
    yh, yc = np.zeros((dirs, batch, H)), np.zeros((dirs, batch, H))
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        for n in range(batch):
            length = steps if lens is None else int(lens[n])
            h = np.zeros(H) if h0 is None else h0[d, n].astype(np.float64)
            c = np.zeros(H) if c0 is None else c0[d, n].astype(np.float64)
            order = range(length - 1, -1, -1) if reverse else range(length)
            for t in order:
                h, c = step(op, x[t, n], h, c, w[d], r[d], np.zeros(2 * GATES[op] * H) if b is None else b[d],
                            np.zeros(3 * H) if p is None else p[d], acts[d], linear_before_reset, input_forget)
                y[t, d, n] = h
            yh[d, n], yc[d, n] = h, c
    outs = [y, yh, yc]
    if layout:
        outs = [y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)]
    return [o.astype(np.float32) for o in outs]


def weights(op, dirs, seed, batch_first=False):
    rng = np.random.default_rng(seed)
    g = GATES[op]
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    w = (0.5 * rng.standard_normal((dirs, g * H, I))).astype(np.float32)
    r = (0.5 * rng.standard_normal((dirs, g * H, H))).astype(np.float32)
    b = (0.3 * rng.standard_normal((dirs, 2 * g * H))).astype(np.float32)
    state = (N, dirs, H) if batch_first else (dirs, N, H)
    h0, c0 = (rng.standard_normal(state).astype(np.float32) for _ in range(2))
    p = (0.3 * rng.standard_normal((dirs, 3 * H))).astype(np.float32)
    return x, w, r, b, h0, c0, p


def run_case(op, args, with_b=True, lens=None, with_h0=False, with_c0=False, with_p=False, outputs=None, seed=0):
    dirs = 2 if args.get("direction") == "bidirectional" else 1
    x, w, r, b, h0, c0, p = weights(op, dirs, seed, args.get("layout", 0))
    empty = np.zeros(0, np.float32)
    inputs = [x, w, r, b if with_b else empty, empty if lens is None else np.array(lens, np.int32),
              h0 if with_h0 else empty]
    if op == "LSTM":
        inputs += [c0 if with_c0 else empty, p if with_p else empty]
    while inputs[-1].size == 0:
        inputs.pop()
    outputs = outputs or (3 if op == "LSTM" else 2)

    def ref(*given, **kwargs):
        names = ["x", "w", "r", "b", "lens", "h0", "c0", "p"]
        named = {k: (v if v.size else None) for k, v in zip(names, given)}
        return tuple(reference(op, **named, **kwargs)[:outputs])
    return check_reference(op, inputs, ref, args, num_outputs=outputs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_directions(op, direction):
    run_case(op, {"direction": direction})


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("layout", [0, 1])
def test_sequence_lens_initial_states_and_layout(op, layout):
    y = run_case(op, {"direction": "bidirectional", "layout": layout}, lens=[4, 2, 0], with_h0=True,
                 with_c0=True, seed=1)[0]
    padded = y[1, 2:] if layout else y[2:, :, 1]
    assert not padded.any()  # Y is zero past a row's end


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_without_bias_and_with_only_y(op):
    run_case(op, {}, with_b=False, outputs=1)
    run_case(op, {"hidden_size": H}, with_b=False, with_h0=True, seed=3)


@pytest.mark.parametrize("op, activations, alpha, beta", [
    ("RNN", ["Relu"], [], []),
    ("RNN", ["LeakyRelu", "Affine"], [0.2, 0.7], [0.1]),
    ("GRU", ["HardSigmoid", "Softsign"], [0.3], [0.4]),
    ("GRU", ["Sigmoid", "Elu"], [], []),
    ("LSTM", ["Sigmoid", "ScaledTanh", "Softplus"], [0.8], [1.3]),
    ("LSTM", ["HardSigmoid", "ThresholdedRelu", "Tanh"], [0.25, 0.1], [0.45]),
])
def test_activations(op, activations, alpha, beta):
    direction = "bidirectional" if len(activations) > len(DEFAULTS[op]) else "forward"
    run_case(op, {"activations": activations, "activation_alpha": alpha, "activation_beta": beta,
                  "direction": direction})


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(op):
    run_case(op, {"clip": 0.4, "direction": "reverse"}, seed=4)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru_linear_before_reset(linear_before_reset):
    run_case("GRU", {"linear_before_reset": linear_before_reset, "direction": "bidirectional"}, lens=[1, 4, 3],
             with_h0=True, seed=5)


@pytest.mark.parametrize("input_forget", [0, 1])
def test_lstm_peepholes_and_input_forget(input_forget):
    run_case("LSTM", {"input_forget": input_forget, "direction": "bidirectional"}, with_h0=True, with_c0=True,
             with_p=True, seed=6)


def test_lstm_float64_keeps_dtype():
    x, w, r, b, *_ = weights("LSTM", 1, 7)
    y, yh = run_op("LSTM", [v.astype(np.float64) for v in (x, w, r, b)], num_outputs=2)
    assert y.dtype == yh.dtype == np.float64
    np.testing.assert_allclose(yh, reference("LSTM", x, w, r, b)[1], rtol=1e-5, atol=1e-6)


def test_inference():
    x, w, r = TensorInfo((T, N, I)), TensorInfo((2, 4 * H, I)), TensorInfo((2, 4 * H, H))
    got = infer("LSTM", [x, w, r], n_out=3, direction="bidirectional")
    assert got == [TensorInfo((T, 2, N, H)), TensorInfo((2, N, H)), TensorInfo((2, N, H))]
    got = infer("GRU", [TensorInfo((N, T, I)), (1, 3 * H, I), (1, 3 * H, H)], n_out=2, layout=1)
    assert got == [TensorInfo((N, T, 1, H)), TensorInfo((N, 1, H))]
    assert infer("RNN", [None, (1, H, I), (1, H, H)], n_out=2) == [None, None]


@pytest.mark.parametrize("op, shapes, args, message", [
    ("RNN", [(T, N, I), (1, H, I), (1, H, H)], {"direction": "bidirectional"}, r"with 2 direction\(s\) first"),
    ("GRU", [(T, N, I), (1, 4 * H, I), (1, 4 * H, H)], {}, r"W must be \[1, 15, 2\] and R \[1, 15, 5\]"),
    ("LSTM", [(T, N, I), (1, 4 * H, 3), (1, 4 * H, H)], {}, r"W must be \[1, 20, 2\]"),
    ("RNN", [(T, N), (1, H, I), (1, H, H)], {}, "X must be 3-D"),
    ("RNN", [(T, N, I), (1, H, I), (1, H, H)], {"hidden_size": 4}, "hidden_size 4 disagrees with R"),
    ("RNN", [(T, N, I), (1, H, I), (1, H, H), (1, H)], {}, r"B must be \[1, 10\], got \[1, 5\]"),
    ("LSTM", [(T, N, I), (1, 4 * H, I), (1, 4 * H, H), (1, 8 * H), TensorInfo((N,), "int32"), (1, N, H), (1, N, H),
              (1, H)], {},
     r"P must be \[1, 15\]"),
    ("GRU", [(T, N, I), (1, 3 * H, I), (1, 3 * H, H)], {"activations": ["Tanh"]},
     "activations must name 2 functions"),
])
def test_errors(op, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op, shapes, n_out=2, **args)


def test_kernel_errors():
    x, w, r, *_ = weights("RNN", 1, 8)
    with pytest.raises((OpFailure, NetError), match="sequence_lens must be int32 or int64"):
        run_op("RNN", [x, w, r, np.zeros((1, 2 * H), np.float32), np.zeros(N, np.float32)])
    with pytest.raises((OpFailure, NetError), match="X must be float"):
        run_op("RNN", [x.astype(np.int32), w, r])
