"""The optimizer builders on a sparse gradient (an embedding table read by
Gather): each emits Caffe2's sparse op and updates only the rows read, once per
occurrence, as an independent NumPy version of the rule says, step by step."""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, optimizer
from pycaffe2.executor import Workspace
from pycaffe2.model_helper import ParameterTags

V, D, K, STEPS = 7, 4, 3, 3
IDS = np.array([2, 5, 2, 0, 6], np.int32)  # row 2 read twice; rows 1, 3, 4 never


def embedding_model(name, params=("emb",)):
    """pred = FC(emb[IDS]), loss = mean 0.5 * |pred - Y|^2; `params` are trained."""
    model = model_helper.ModelHelper(name)
    model.param_init_net.GaussianFill([], ["emb"], shape=[V, D], std=0.5)
    model.param_init_net.GaussianFill([], ["fc_w"], shape=[K, D], std=0.5)
    model.param_init_net.GaussianFill([], ["fc_b"], shape=[K], std=0.5)
    for param in params:
        model.AddParameter(core.BlobReference(param),
                           ParameterTags.BIAS if param.endswith("_b") else ParameterTags.WEIGHT)
    model.net.AddExternalInput("ids", "Y")
    rows = model.net.Gather(["emb", "ids"], ["rows"])
    pred = model.net.FC([rows, "fc_w", "fc_b"], ["pred"])
    dist = model.net.SquaredL2Distance([pred, "Y"], ["dist"])
    model.net.AveragedLoss([dist], ["loss"])
    model.AddGradientOperators(["loss"])
    return model


def row_gradients(p, y):
    """The gradient of each read row, one per occurrence (the slice's values)."""
    dpred = (p["emb"][IDS] @ p["fc_w"].T + p["fc_b"] - y) / len(IDS)
    return dpred @ p["fc_w"]


def check_sparse_steps(build, update):
    model = embedding_model(build.__name__)
    assert isinstance(model.param_to_grad["emb"], core.GradientSlice)
    build(model)
    y = np.random.default_rng(1).standard_normal((len(IDS), K)).astype(np.float32)
    workspace = Workspace(seed=3)
    workspace.FeedBlob("ids", IDS)
    workspace.FeedBlob("Y", y)
    workspace.RunNetOnce(model.param_init_net.Proto())
    workspace.CreateNet(model.net.Proto())
    p = {name: workspace.FetchBlob(name).astype(np.float64) for name in ("emb", "fc_w", "fc_b")}
    untouched = p["emb"][[1, 3, 4]].copy()
    for it in range(1, STEPS + 1):
        update(p["emb"], row_gradients(p, y), it)
        workspace.RunNet(model.net.Name())
        np.testing.assert_allclose(workspace.FetchBlob("emb"), p["emb"], rtol=2e-5, atol=2e-6,
                                   err_msg=f"emb after step {it}")
    np.testing.assert_array_equal(workspace.FetchBlob("emb")[[1, 3, 4]], untouched.astype(np.float32))
    return model


def sgd(model):
    optimizer.build_sgd(model, 0.5)


def test_sgd_scatters_minus_lr_times_each_row():
    def update(emb, g, it):
        np.add.at(emb, IDS, -0.5 * g)
    model = check_sparse_steps(sgd, update)
    (scatter,) = [op for op in model.net.Proto().op if op.type == "ScatterWeightedSum"]
    assert list(scatter.input)[2:4] == ["ids", "rows_grad"] and list(scatter.output) == ["emb"]


def sgd_momentum(model):
    optimizer.build_sgd(model, 0.5, momentum=0.9, nesterov=0)


def test_sgd_momentum_uses_sparse_momentum_sgd_update():
    moment = np.zeros((V, D))

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            moment[k] = 0.5 * g[i] + 0.9 * moment[k]
            emb[k] -= moment[k]
    model = check_sparse_steps(sgd_momentum, update)
    assert "SparseMomentumSGDUpdate" in [op.type for op in model.net.Proto().op]


def adagrad(model):
    optimizer.build_adagrad(model, 0.2, epsilon=1e-3)


@pytest.mark.parametrize("aggregator, merge", [("sum", np.sum), ("mean", np.mean)])
def test_sparse_dedup_aggregator_merges_repeated_rows_first(aggregator, merge):
    """With an aggregator each row read is updated once, by its merged gradient."""
    history = np.zeros((V, D))

    def update(emb, g, it):
        for k in np.unique(IDS):
            merged = merge(g[IDS == k], axis=0)
            history[k] += merged ** 2
            emb[k] -= 0.2 * merged / (np.sqrt(history[k]) + 1e-3)

    def build(model):
        optimizer.build_adagrad(model, 0.2, epsilon=1e-3, sparse_dedup_aggregator=aggregator)
    model = check_sparse_steps(build, update)
    types = [op.type for op in model.net.Proto().op]
    assert "Unique" in types and f"UnsortedSegment{aggregator.title()}" in types


def test_adagrad_uses_sparse_adagrad():
    history = np.zeros((V, D))

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            history[k] += g[i] ** 2
            emb[k] -= 0.2 * g[i] / (np.sqrt(history[k]) + 1e-3)
    check_sparse_steps(adagrad, update)


def row_wise_adagrad(model):
    optimizer.build_adagrad(model, 0.2, epsilon=1e-3, rowWise=True)


def test_row_wise_adagrad_uses_row_wise_sparse_adagrad():
    history = np.zeros(V)

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            history[k] += np.mean(g[i] ** 2)
            emb[k] -= 0.2 * g[i] / (np.sqrt(history[k]) + 1e-3)
    model = check_sparse_steps(row_wise_adagrad, update)
    assert "RowWiseSparseAdagrad" in [op.type for op in model.net.Proto().op]
    assert "emb_avg_squared_sum" in [out for op in model.param_init_net.Proto().op for out in op.output]


def test_row_wise_adagrad_refuses_a_dense_gradient():
    model = embedding_model("row_wise_dense", ("fc_w",))
    with pytest.raises(ValueError, match="rowWise=True needs a sparse gradient"):
        optimizer.build_adagrad(model, 0.2, rowWise=True)


@pytest.mark.parametrize("row_wise", [False, True])
def test_adagrad_weight_decay_on_a_sparse_gradient_is_the_ops_arg(row_wise):
    history = np.zeros(V) if row_wise else np.zeros((V, D))

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            gi = g[i] + 0.1 * emb[k]
            history[k] += np.mean(gi ** 2) if row_wise else gi ** 2
            emb[k] -= 0.2 * gi / (np.sqrt(history[k]) + 1e-3)

    def build(model):
        optimizer.build_adagrad(model, 0.2, epsilon=1e-3, weight_decay=0.1, rowWise=row_wise)
    model = check_sparse_steps(build, update)
    (op,) = [op for op in model.net.Proto().op if op.type.endswith("SparseAdagrad")]
    assert [a.f for a in op.arg if a.name == "weight_decay"] == [pytest.approx(0.1)]


@pytest.mark.parametrize("variant", ["rowWise", "use_smart_decay", "enableRAdam"])
def test_adam_variants_use_their_sparse_ops(variant):
    m1, m2 = np.zeros((V, D)), np.zeros(V) if variant == "rowWise" else np.zeros((V, D))
    last_seen = np.zeros(V, np.int64)

    def update(emb, g, it):
        t = it + 1
        for i, k in enumerate(IDS):
            if variant == "use_smart_decay":
                n = t - last_seen[k]
                catchup = m1[k] * sum(0.8 ** j for j in range(1, n))
                m1[k] = 0.8 ** n * m1[k] + 0.2 * g[i]
                m2[k] = 0.95 ** n * m2[k] + 0.05 * g[i] ** 2
                emb[k] -= 0.05 * (m1[k] + catchup) / (np.sqrt(m2[k]) + 1e-6)
                last_seen[k] = t
                continue
            m1[k] = 0.8 * m1[k] + 0.2 * g[i]
            m2[k] = 0.95 * m2[k] + 0.05 * (np.mean(g[i] ** 2) if variant == "rowWise" else g[i] ** 2)
            step = np.sqrt(1 - 0.95 ** t) / (1 - 0.8 ** t) * m1[k] / (np.sqrt(m2[k]) + 1e-6)
            if variant == "enableRAdam":  # rho_inf = 39: rho_t < 5 over these first steps
                step = m1[k] / (1 - 0.8 ** t)
            emb[k] -= 0.05 * step

    def build(model):
        optimizer.build_adam(model, 0.05, beta1=0.8, beta2=0.95, epsilon=1e-6, **{variant: True})
    model = check_sparse_steps(build, update)
    expected = {"rowWise": "RowWiseSparseAdam", "use_smart_decay": "SmartDecaySparseAdam",
                "enableRAdam": "SparseAdam"}[variant]
    assert expected in [op.type for op in model.net.Proto().op]


def test_adam_lr_adaption_adds_learning_rate_adaption():
    model = embedding_model("adaption", ("emb", "fc_w"))
    optimizer.build_adam(model, 0.05, use_lr_adaption=True, lr_alpha=0.1)
    ops = [op for op in model.net.Proto().op if op.type in ("SparseAdam", "Adam", "LearningRateAdaption")]
    assert [op.type for op in ops] == ["SparseAdam", "LearningRateAdaption", "Adam", "LearningRateAdaption"]
    assert list(ops[0].output)[3] == "emb_effective_grad" and list(ops[1].input)[2] == "emb_effective_grad"
    workspace = Workspace(seed=3)
    workspace.FeedBlob("ids", IDS)
    workspace.FeedBlob("Y", np.zeros((len(IDS), K), np.float32))
    workspace.RunNetOnce(model.param_init_net.Proto())
    workspace.RunNetOnce(model.net.Proto())
    assert np.isfinite(workspace.FetchBlob("emb")).all()


def test_wngrad_uses_sparse_wngrad():
    b = [1.0]

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            emb[k] -= 0.5 * g[i] / (b[0] + 1e-9)
        b[0] += (g ** 2).sum() / b[0]
    model = check_sparse_steps(lambda m: optimizer.build_wngrad(m, 0.5, moment_init=1.0), update)
    assert "SparseWngrad" in [op.type for op in model.net.Proto().op]


def test_storm_uses_sparse_storm():
    moment, total = np.zeros((V, D)), [0.5]

    def update(emb, g, it):
        total[0] += (g ** 2).sum()
        rate = -0.3 * (2.0 + total[0]) ** (-1 / 3)
        alpha = 1.5 * rate ** 2
        for i, k in enumerate(IDS):
            moment[k] = g[i] + (1 - alpha) * (moment[k] - g[i])
            emb[k] += rate * moment[k]
    model = check_sparse_steps(
        lambda m: optimizer.build_storm(m, 0.3, momentum=1.5, beta=2.0, grad_sq_init=0.5), update)
    assert "SparseStorm" in [op.type for op in model.net.Proto().op]


def ftrl(model):
    optimizer.build_ftrl(model, alpha=0.5, beta=1.0, lambda1=0.01, lambda2=0.001)


def test_ftrl_uses_sparse_ftrl():
    n, z = np.zeros((V, D)), np.zeros((V, D))

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            n_new = n[k] + g[i] ** 2
            z[k] += g[i] - (np.sqrt(n_new) - np.sqrt(n[k])) / 0.5 * emb[k]
            n[k] = n_new
            shrunk = (0.01 * np.sign(z[k]) - z[k]) / ((1.0 + np.sqrt(n[k])) / 0.5 + 0.001)
            emb[k] = np.where(np.abs(z[k]) > 0.01, shrunk, 0.0)
    model = check_sparse_steps(ftrl, update)
    assert "SparseFtrl" in [op.type for op in model.net.Proto().op]


def adadelta(model):
    optimizer.build_adadelta(model, 0.5, epsilon=1e-3, decay=0.9)


def test_adadelta_uses_sparse_adadelta():
    moment, delta = np.zeros((V, D)), np.zeros((V, D))

    def update(emb, g, it):
        for i, k in enumerate(IDS):
            moment[k] = 0.9 * moment[k] + 0.1 * g[i] ** 2
            step = np.sqrt(delta[k] + 1e-3) / np.sqrt(moment[k] + 1e-3) * g[i]
            emb[k] -= 0.5 * step
            delta[k] = 0.9 * delta[k] + 0.1 * step ** 2
    model = check_sparse_steps(adadelta, update)
    assert "SparseAdadelta" in [op.type for op in model.net.Proto().op]


def adam(model):
    optimizer.build_adam(model, 0.05, beta1=0.8, beta2=0.95, epsilon=1e-6)


def test_adam_uses_sparse_adam():
    m1, m2 = np.zeros((V, D)), np.zeros((V, D))

    def update(emb, g, it):
        t = it + 1  # Caffe2 corrects the bias at iteration + 1
        for i, k in enumerate(IDS):
            m1[k] = 0.8 * m1[k] + 0.2 * g[i]
            m2[k] = 0.95 * m2[k] + 0.05 * g[i] ** 2
            emb[k] -= 0.05 * np.sqrt(1 - 0.95 ** t) / (1 - 0.8 ** t) * m1[k] / (np.sqrt(m2[k]) + 1e-6)
    check_sparse_steps(adam, update)


def test_every_builder_trains_the_dense_params_beside_the_sparse_one():
    model = embedding_model("mixed", ("emb", "fc_w", "fc_b"))
    optimizer.build_sgd(model, 0.1, max_gradient_norm=1.0)
    types = [op.type for op in model.net.Proto().op]
    assert types.count("ScatterWeightedSum") == 1 and types.count("WeightedSum") == 2


@pytest.mark.parametrize("make, message", [
    (lambda m: optimizer.build_sgd(m, 0.1, weight_decay=0.01), "weight decay needs a dense one"),
    (lambda m: optimizer.add_weight_decay(m, 0.01), "param emb has a sparse gradient"),
    (lambda m: brew.add_weight_decay(m, 0.01), "dense_gradient=1"),
    (lambda m: optimizer.build_adagrad(m, 0.1, decay=0.9), "SparseAdagrad has no decay"),
    (lambda m: optimizer.build_sgd(m, 0.1, sparse_dedup_aggregator="max"), "max is not supported"),
])
def test_what_a_sparse_gradient_cannot_take_is_refused(make, message):
    model = embedding_model("refused", ("emb", "fc_w", "fc_b"))
    with pytest.raises((ValueError, NotImplementedError), match=message):
        make(model)


def test_dense_gradient_gather_keeps_the_dense_update():
    model = model_helper.ModelHelper("dense")
    model.param_init_net.GaussianFill([], ["emb"], shape=[V, D])
    model.params.append(core.BlobReference("emb"))
    model.net.Gather(["emb", "ids"], ["rows"], dense_gradient=1)
    model.net.AveragedLoss([model.net.ReduceSum(["rows"], ["s"], keepdims=0)], ["loss"])
    model.AddGradientOperators(["loss"])
    assert str(model.param_to_grad["emb"]) == "emb_grad"
    optimizer.build_sgd(model, 0.1)
    assert "WeightedSum" in [op.type for op in model.net.Proto().op]
