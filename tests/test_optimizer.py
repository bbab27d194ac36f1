"""pycaffe2.optimizer: each builder's nets against an independent NumPy version
of its update rule, step by step, and a small softmax model that learns."""
import numpy as np
import pytest

from pycaffe2 import core, model_helper, optimizer
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2

N, D, K = 8, 4, 3
STEPS = 4


class TinyModel:
    """The part of model_helper.ModelHelper the optimizer reads."""

    def __init__(self, name):
        self.net = core.Net(name)
        self.param_init_net = core.Net(name + "_init")
        self.params = []
        self.param_to_grad = {}

    def GetParams(self):
        return list(self.params)

    def get_param_to_grad(self, params):
        return {p: self.param_to_grad[p] for p in params}

    def AddGradientOperators(self, losses):
        grads = self.net.AddGradientOperators(losses)
        self.param_to_grad = {p: grads[p] for p in self.params if p in grads}
        return grads


def regression_model(name="reg"):
    """pred = X W^T + b, loss = mean over rows of 0.5 * |pred - Y|^2."""
    model = TinyModel(name)
    model.param_init_net.GaussianFill([], ["fc_w"], shape=[K, D], std=0.5)
    model.param_init_net.GaussianFill([], ["fc_b"], shape=[K], std=0.5)
    model.params = ["fc_w", "fc_b"]
    model.net.AddExternalInput("X", "Y")
    pred = model.net.FC(["X", "fc_w", "fc_b"], ["pred"])
    dist = model.net.SquaredL2Distance([pred, "Y"], ["dist"])
    model.net.AveragedLoss([dist], ["loss"])
    model.AddGradientOperators(["loss"])
    return model


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)).astype(np.float32), rng.standard_normal((N, K)).astype(np.float32)


def start(model, x, y, seed=0):
    workspace = Workspace(seed=seed)
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("Y", y)
    workspace.RunNetOnce(model.param_init_net.Proto())
    workspace.CreateNet(model.net.Proto())
    params = {p: workspace.FetchBlob(p).astype(np.float64) for p in model.params}
    return workspace, params


def grads_of(params, x, y):
    """NumPy gradients of the regression loss."""
    dpred = (x @ params["fc_w"].T + params["fc_b"] - y) / len(x)
    return {"fc_w": dpred.T @ x, "fc_b": dpred.sum(axis=0)}


def check_steps(model, update, x, y):
    """Run the train net STEPS times; `update(params, grads, it)` is the reference
    for one step at iteration `it` (1 on the first run) and updates params in place."""
    workspace, params = start(model, x, y)
    for it in range(1, STEPS + 1):
        update(params, grads_of(params, x, y), it)
        workspace.RunNet(model.net.Name())
        assert workspace.FetchBlob("optimizer_iteration")[0] == it
        for name, value in params.items():
            np.testing.assert_allclose(workspace.FetchBlob(name), value, rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name} after step {it}")


# --- SGD and the learning-rate policies -------------------------------------------------

POLICIES = [
    ("fixed", {}, lambda it: 1.0),
    ("step", {"stepsize": 2, "gamma": 0.5}, lambda it: 0.5 ** (it // 2)),
    ("exp", {"gamma": 0.8}, lambda it: 0.8 ** it),
    ("inv", {"gamma": 0.3, "power": 1.5}, lambda it: (1 + 0.3 * it) ** -1.5),
    ("multistep", {"stepsizes": [2, 3], "gamma": 0.1}, lambda it: 0.1 ** ((it >= 2) + (it >= 3))),
]


@pytest.mark.parametrize("policy, kwargs, multiplier", POLICIES, ids=[p[0] for p in POLICIES])
def test_sgd_with_policy(policy, kwargs, multiplier):
    model = regression_model()
    optimizer.build_sgd(model, 0.3, policy=policy, **kwargs)
    x, y = data()

    def update(params, grads, it):
        for name in params:
            params[name] -= 0.3 * multiplier(it) * grads[name]

    check_steps(model, update, x, y)


@pytest.mark.parametrize("nesterov", [0, 1])
def test_sgd_momentum(nesterov):
    model = regression_model()
    optimizer.build_sgd(model, 0.2, momentum=0.9, nesterov=nesterov)
    x, y = data(1)
    velocity = {"fc_w": 0.0, "fc_b": 0.0}

    def update(params, grads, it):
        for name in params:
            old = velocity[name]
            velocity[name] = 0.9 * old + 0.2 * grads[name]
            step = velocity[name] + 0.9 * (velocity[name] - old) if nesterov else velocity[name]
            params[name] -= step

    check_steps(model, update, x, y)


def test_sgd_net_layout():
    """Caffe2's ops and blobs: CPU int64 counter, negative base_lr for WeightedSum,
    positive for MomentumSGDUpdate, moments filled like their params."""
    model = regression_model()
    opt = optimizer.build_sgd(model, 0.1)
    init_ops = {op.output[0]: op for op in model.param_init_net.Proto().op}
    counter = init_ops["optimizer_iteration"]
    assert counter.device_option.device_type == caffe2_pb2.PROTO_CPU
    assert {a.name: a.i for a in counter.arg}["dtype"] == caffe2_pb2.TensorProto.INT64
    ops = model.net.Proto().op
    types = [op.type for op in ops]
    assert types.count("Iter") == 1 and types.count("LearningRate") == 1
    assert types.index("Iter") < types.index("LearningRate")
    lr_op = ops[types.index("LearningRate")]
    assert {a.name: a.f for a in lr_op.arg}["base_lr"] == pytest.approx(-0.1)
    assert [list(op.input) for op in ops if op.type == "WeightedSum"] == [
        ["fc_w", "ONE_0_0", "fc_w_grad", lr_op.output[0]],
        ["fc_b", "ONE_0_0", "fc_b_grad", lr_op.output[0]]]
    assert opt.get_auxiliary_parameters().shared == ["ONE_0_0"]

    momentum_model = regression_model()
    optimizer.build_sgd(momentum_model, 0.1, momentum=0.5)
    ops = momentum_model.net.Proto().op
    lr_op = next(op for op in ops if op.type == "LearningRate")
    assert {a.name: a.f for a in lr_op.arg}["base_lr"] == pytest.approx(0.1)
    fill = next(op for op in momentum_model.param_init_net.Proto().op if op.output[0] == "fc_w_momentum")
    assert list(fill.input) == ["fc_w"]


def test_gradients_required():
    model = TinyModel("none")
    model.params = ["w"]
    with pytest.raises(ValueError, match="AddGradientOperators"):
        optimizer.build_sgd(model, 0.1)


# --- weight decay -----------------------------------------------------------------------

def test_add_weight_decay_skips_biases():
    model = regression_model()
    optimizer.add_weight_decay(model, 0.1)
    optimizer.build_sgd(model, 0.25)
    x, y = data(2)

    def update(params, grads, it):
        grads["fc_w"] = grads["fc_w"] + 0.1 * params["fc_w"]
        for name in params:
            params[name] -= 0.25 * grads[name]

    check_steps(model, update, x, y)
    decays = [op for op in model.net.Proto().op if op.type == "WeightedSum" and op.output[0].endswith("_grad")]
    assert [list(op.input)[::2] for op in decays] == [["fc_w_grad", "fc_w"]]


def test_model_weights_list_wins():
    model = regression_model()
    model.weights, model.biases = ["fc_b"], ["fc_w"]
    optimizer.add_weight_decay(model, 0.1)
    decays = [op.output[0] for op in model.net.Proto().op if op.type == "WeightedSum"]
    assert decays == ["fc_b_grad"]


def test_optimizer_weight_decay_covers_every_param():
    model = regression_model()
    optimizer.build_sgd(model, 0.25, momentum=0.5, weight_decay=0.05)
    x, y = data(3)
    velocity = {"fc_w": 0.0, "fc_b": 0.0}

    # Nesterov (Caffe2's default) with decay folded into the gradient.
    def nesterov_update(params, grads, it):
        for name in params:
            g = grads[name] + 0.05 * params[name]
            old = velocity[name]
            velocity[name] = 0.5 * old + 0.25 * g
            params[name] -= 1.5 * velocity[name] - 0.5 * old

    check_steps(model, nesterov_update, x, y)


# --- Adam and Adagrad -------------------------------------------------------------------

def test_adam():
    model = regression_model()
    opt = optimizer.build_adam(model, 0.05, beta1=0.8, beta2=0.95, epsilon=1e-6,
                               policy="exp", gamma=0.9)
    x, y = data(4)
    m1 = {"fc_w": 0.0, "fc_b": 0.0}
    m2 = {"fc_w": 0.0, "fc_b": 0.0}

    def update(params, grads, it):
        t = it + 1  # Caffe2 corrects the bias at iteration + 1
        lr = 0.05 * 0.9 ** it
        for name in params:
            m1[name] = 0.8 * m1[name] + 0.2 * grads[name]
            m2[name] = 0.95 * m2[name] + 0.05 * grads[name] ** 2
            m1_hat, m2_hat = m1[name] / (1 - 0.8 ** t), m2[name] / (1 - 0.95 ** t)
            # Caffe2 puts epsilon outside the corrected root: rescale it to match.
            eps = 1e-6 / np.sqrt(1 - 0.95 ** t)
            params[name] -= lr * m1_hat / (np.sqrt(m2_hat) + eps)

    check_steps(model, update, x, y)
    assert sorted(opt.get_auxiliary_parameters().local) == [
        "fc_b_first_moment", "fc_b_second_moment", "fc_w_first_moment", "fc_w_second_moment"]


@pytest.mark.parametrize("decay", [1.0, 0.9])
def test_adagrad(decay):
    model = regression_model()
    optimizer.build_adagrad(model, 0.2, epsilon=1e-3, decay=decay, policy="inv", gamma=0.5, power=1.0)
    x, y = data(5)
    history = {"fc_w": 0.0, "fc_b": 0.0}

    def update(params, grads, it):
        lr = 0.2 / (1 + 0.5 * it)
        for name in params:
            history[name] = decay * history[name] + grads[name] ** 2
            params[name] -= lr * grads[name] / (np.sqrt(history[name]) + 1e-3)

    check_steps(model, update, x, y)


def test_adagrad_parameters_and_weight_decay():
    """`parameters` limits the update; Adagrad's weight_decay reaches biases too."""
    model = regression_model()
    optimizer.build_adagrad(model, 0.2, parameters=["fc_b"], weight_decay=0.1)
    x, y = data(6)
    history = {"fc_b": 0.0}

    def update(params, grads, it):
        g = grads["fc_b"] + 0.1 * params["fc_b"]
        history["fc_b"] = history["fc_b"] + g ** 2
        params["fc_b"] -= 0.2 * g / (np.sqrt(history["fc_b"]) + 1e-4)

    check_steps(model, update, x, y)


# --- gradient clipping, several optimizers side by side -----------------------------------

def test_max_gradient_norm():
    model = regression_model()
    optimizer.build_sgd(model, 0.5, max_gradient_norm=0.3)
    x, y = data(7)

    def update(params, grads, it):
        norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
        ratio = 0.3 / max(norm, 0.3)
        for name in params:
            params[name] -= 0.5 * ratio * grads[name]

    check_steps(model, update, x, y)


def test_two_optimizers_share_the_counter():
    model = regression_model()
    optimizer.build_sgd(model, 0.1)  # every param...
    optimizer.build_adagrad(model, 0.1, parameters=["fc_b"])  # ...and fc_b again
    types = [op.type for op in model.net.Proto().op]
    assert types.count("Iter") == 1 and types.count("LearningRate") == 2
    lr_blobs = [op.output[0] for op in model.net.Proto().op if op.type == "LearningRate"]
    assert len(set(lr_blobs)) == 2
    workspace, _ = start(model, *data())
    workspace.RunNet(model.net.Name(), num_iter=2)
    assert workspace.FetchBlob("optimizer_iteration")[0] == 2


def test_name_scope():
    """Under a NameScope the optimizer's own blobs take it; the counter and params do not."""
    model = regression_model()
    with core.NameScope("train"):
        opt = optimizer.build_sgd(model, 0.1)
    ops = model.net.Proto().op
    lr = next(op.output[0] for op in ops if op.type == "LearningRate")
    assert lr == f"train/SgdOptimizer_{opt._instance_num}_lr_cpu"
    assert next(list(op.input) for op in ops if op.type == "WeightedSum") == [
        "fc_w", "train/ONE_0_0", "fc_w_grad", lr]
    assert next(op for op in ops if op.type == "Iter").output[0] == "optimizer_iteration"
    workspace, _ = start(model, *data())
    workspace.RunNet(model.net.Name())


def test_build_iter_is_idempotent():
    init, net = core.Net("i_init"), core.Net("i")
    first = optimizer.build_iter(init, net, iter_val=5)
    second = optimizer.build_iter(init, net)
    assert first == second == "optimizer_iteration"
    assert len(init.Proto().op) == len(net.Proto().op) == 1
    workspace = Workspace()
    workspace.RunNetOnce(init.Proto())
    workspace.RunNetOnce(net.Proto())
    value = workspace.FetchBlob("optimizer_iteration")
    assert value.dtype == np.int64 and value.tolist() == [6]


# --- a softmax classifier learns ----------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda m: optimizer.build_sgd(m, 0.5, momentum=0.9, policy="step", stepsize=20, gamma=0.5),
    lambda m: optimizer.build_adam(m, 0.05),
    lambda m: optimizer.build_adagrad(m, 0.5),
], ids=["sgd", "adam", "adagrad"])
def test_softmax_model_learns(build):
    rng = np.random.default_rng(0)
    centers = 3 * rng.standard_normal((K, D))
    labels = rng.integers(0, K, size=64).astype(np.int32)
    x = (centers[labels] + rng.standard_normal((64, D))).astype(np.float32)

    model = model_helper.ModelHelper(name="softmax")
    tags = model_helper.ParameterTags
    w = model.create_param("fc_w", [K, D], ("XavierFill", {}), tags=tags.WEIGHT)
    b = model.create_param("fc_b", [K], ("ConstantFill", {"value": 0.0}), tags=tags.BIAS)
    model.net.AddExternalInput("X", "label")
    logits = model.net.FC(["X", w, b], ["logits"])
    model.net.SoftmaxWithLoss([logits, "label"], ["softmax", "loss"])
    model.AddGradientOperators(["loss"])
    optimizer.add_weight_decay(model, 1e-4)
    build(model)
    decayed = [op.output[0] for op in model.net.Proto().op
               if op.type == "WeightedSum" and op.output[0].endswith("_grad")]
    assert decayed == ["fc_w_grad"]  # the weight by its tag, not the bias

    workspace = Workspace(seed=0)
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("label", labels)
    workspace.RunNetOnce(model.param_init_net.Proto())
    workspace.CreateNet(model.net.Proto())
    workspace.RunNet("softmax")
    first = float(workspace.FetchBlob("loss"))
    workspace.RunNet("softmax", num_iter=60)
    last = float(workspace.FetchBlob("loss"))
    accuracy = np.mean(workspace.FetchBlob("softmax").argmax(axis=1) == labels)
    assert last < 0.5 * first and accuracy > 0.9, (first, last, accuracy)
