"""pycaffe2.attention and rnn_cell's attention cells: LSTMWithAttention of every
attention type against a step-by-step NumPy decoder, its backward pass against
numeric gradients, a tiny training run, and errors."""
import numpy as np
import pytest

from pycaffe2 import core, rnn_cell, workspace
from pycaffe2.attention import AttentionType
from pycaffe2.gradient_checker import check_net_gradient
from pycaffe2.model_helper import ModelHelper
from tests.test_rnn_cell import fc, perturb_params, sigmoid

T, TE, N, DIN, H, D = 3, 4, 2, 3, 4, 5  # decoder steps, encoder length, batch, input, state, encoder dims
ENCODER_LENGTHS = np.array([4, 2], np.int32)
TYPES = {"regular": AttentionType.Regular, "recurrent": AttentionType.Recurrent, "dot": AttentionType.Dot,
         "coverage": AttentionType.SoftCoverage}


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def feed(seed, state_dim=H):
    rng = np.random.default_rng(seed)
    values = {"x": rng.standard_normal((T, N, DIN)), "enc": rng.standard_normal((TE, N, D)),
              "h0": rng.standard_normal((1, N, state_dim)) * 0.5, "c0": rng.standard_normal((1, N, state_dim)) * 0.5,
              "ctx0": rng.standard_normal((1, N, D)) * 0.5}
    values = {k: v.astype(np.float32) for k, v in values.items()}
    values["enc_lengths"] = ENCODER_LENGTHS
    for name, value in values.items():
        workspace.FeedBlob(name, value)
    return values


def build(model, kind, lengths=True, state_dim=H, outputs_with_grads=(0, 4)):
    return rnn_cell.LSTMWithAttention(
        model, "x", None, "h0", "c0", "ctx0", D, "enc", "enc_lengths" if lengths else None, DIN, state_dim, "att",
        attention_type=TYPES[kind], outputs_with_grads=outputs_with_grads)


def attention_numpy(kind, enc, h, ctx_prev, coverage, lengths, state_dim):
    """One step's context [N, D], weights [N, TE] and new coverage."""
    def logits_from(total):
        return (np.tanh(total) @ workspace.FetchBlob("att/attention_logits_w").T)[..., 0]  # [TE, N]
    if kind == "dot":
        query = fc(h, "att/weighted_decoder_hidden_state") if state_dim != D else h
        logits = np.einsum("tnd,nd->tn", enc, query)
    else:
        total = fc(enc, "att/weighted_encoder_outputs") + fc(h, "att/weighted_decoder_hidden_state")
        if kind == "recurrent":
            total = total + fc(ctx_prev, "att/weighted_prev_attention_context")
        if kind == "coverage":
            total = total + fc(enc, "att/coverage_weights") * coverage.T[:, :, None]
        logits = logits_from(total)
    if lengths is not None:
        logits = np.where(np.arange(TE)[:, None] < lengths[None, :], logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=0))
    weights /= weights.sum(axis=0)
    context = np.einsum("tn,tnd->nd", weights, enc)
    return context, weights.T, coverage + weights.T


def decoder_numpy(kind, values, lengths, state_dim=H):
    h, c, ctx = values["h0"][0], values["c0"][0], values["ctx0"][0]
    coverage = np.zeros((N, TE))
    hidden, contexts = [], []
    for x_t in fc(values["x"], "att/decoder/i2h"):
        gates = x_t + fc(np.concatenate([h, ctx], axis=1), "att/decoder/gates_t")
        i, f, o, g = np.split(gates, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        ctx, _, coverage = attention_numpy(kind, values["enc"], h, ctx, coverage, lengths, state_dim)
        hidden.append(h)
        contexts.append(ctx)
    return np.stack(hidden), c, np.stack(contexts), coverage


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize("lengths", [True, False])
def test_lstm_with_attention_matches_numpy(kind, lengths):
    model = ModelHelper("attention")
    outputs = build(model, kind, lengths)
    values = feed(0)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 1)
    workspace.RunNetOnce(model.net)
    hidden, cell, contexts, coverage = decoder_numpy(kind, values, ENCODER_LENGTHS if lengths else None)
    got = [workspace.FetchBlob(o) for o in outputs]
    np.testing.assert_allclose(got[0], hidden, atol=1e-5)
    np.testing.assert_allclose(got[1][0], hidden[-1], atol=1e-5)
    np.testing.assert_allclose(got[3][0], cell, atol=1e-5)
    np.testing.assert_allclose(got[4], contexts, atol=1e-5)
    if kind == "coverage":
        np.testing.assert_allclose(got[7][0], coverage, atol=1e-5)


def test_dot_attention_maps_the_state_when_widths_differ():
    model = ModelHelper("dot")
    outputs = build(model, "dot", state_dim=D + 1)
    values = feed(2, state_dim=D + 1)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 3)
    workspace.RunNetOnce(model.net)
    hidden, _, contexts, _ = decoder_numpy("dot", values, ENCODER_LENGTHS, state_dim=D + 1)
    np.testing.assert_allclose(workspace.FetchBlob(outputs[0]), hidden, atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob(outputs[4]), contexts, atol=1e-5)


# (coverage: its initial state is a float32 ConstantFill in the net, which the float64 check cannot promote)
@pytest.mark.parametrize("kind", ["regular", "recurrent", "dot"])
def test_backward_pass_matches_numeric(kind):
    model = ModelHelper("attention_grad")
    outputs = build(model, kind, outputs_with_grads=(0,))
    values = feed(4)
    workspace.RunNetOnce(model.param_init_net)
    perturb_params(model, 5)
    made = {name for op in model.param_init_net.Proto().op for name in op.output}  # the frozen bias too
    values.update({name: workspace.FetchBlob(name) for name in made})
    values["w"] = np.random.default_rng(6).standard_normal((T, N, H))  # a loss whose seed is not all ones
    full = core.Net("checked")
    full.Proto().op.extend(model.net.Proto().op)
    full.Mul([outputs[0], "w"], "weighted")
    reports = check_net_gradient(full.Proto(), ["weighted"], values, ["x", "enc", "h0", "c0", "ctx0", *map(str, model.params)])
    assert all(r.ok for r in reports), [str(r) for r in reports if not r.ok]


def test_attention_lstm_trains():
    """The target is the encoder's mean over its valid positions: the context must learn to cover them."""
    model = ModelHelper("attention_train")
    hidden_all, *_ = build(model, "regular", outputs_with_grads=(0,))
    out = model.net.FC([hidden_all, "out_w", "out_b"], "out", axis=2)
    model.param_init_net.XavierFill([], "out_w", shape=[D, H])
    model.param_init_net.ConstantFill([], "out_b", shape=[D], value=0.0)
    distance = model.net.SquaredL2Distance([out, "target"], "distance")
    model.AddGradientOperators([model.net.AveragedLoss(distance, "loss")])
    model.param_init_net.ConstantFill([], "lr", shape=[1], value=-0.3)
    model.param_init_net.ConstantFill([], "one", shape=[1], value=1.0)
    for param in [*model.params, "out_w", "out_b"]:
        grad = model.param_to_grad.get(param, f"{param}_grad")
        model.net.WeightedSum([param, "one", grad, "lr"], param)
    values = feed(7)
    mask = (np.arange(TE)[:, None] < ENCODER_LENGTHS[None, :])[..., None]
    mean = (values["enc"] * mask).sum(axis=0) / ENCODER_LENGTHS[:, None]
    workspace.FeedBlob("target", np.broadcast_to(np.tanh(mean), (T, N, D)).astype(np.float32))
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    losses = []
    for _ in range(60):
        workspace.RunNet(model.net)
        losses.append(float(workspace.FetchBlob("loss")))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="attention_type 7 is not an AttentionType"):
        rnn_cell.LSTMWithAttention(ModelHelper("e"), "x", None, "h0", "c0", "ctx0", D, "enc", None, DIN, H, "att",
                                   attention_type=7)
    cell = rnn_cell.LSTMWithAttentionCell(D, "enc", None, DIN, H, "att", AttentionType.Regular, None, 0.0,
                                          False, False)
    with pytest.raises(ValueError, match="build_initial_coverage is for AttentionType.SoftCoverage"):
        cell.build_initial_coverage(ModelHelper("e"))
    with pytest.raises(ValueError, match="takes no extra inputs"):
        cell._apply(ModelHelper("e"), "x", None, ["h", "c", "ctx"], "t", extra_inputs=[("y", 2)])
