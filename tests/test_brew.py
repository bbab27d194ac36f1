"""brew helpers and ModelHelper: a small CNN built as a Caffe2 user would, run and
checked against NumPy; parameter names, initialisers, arg_scope, is_test, the backward
pass and one SGD step."""
import functools

import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper
from pycaffe2.executor import Workspace
from pycaffe2.gradient import BlockGradients

RNG = np.random.default_rng(0)


def run(model, feeds, seed=0):
    ws = Workspace("brew_test", seed=seed)
    for name, value in feeds.items():
        ws.FeedBlob(name, value)
    ws.RunNetOnce(model.param_init_net.Proto())
    ws.RunNetOnce(model.net.Proto())
    return ws


def conv2d(x, w, b, pad):
    """NCHW cross-correlation, stride 1."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    patches = np.stack([x[:, :, i:i + h, j:j + wd] for i in range(k) for j in range(k)], axis=-1)
    return np.einsum("nchwk,ock->nohw", patches, w.reshape(*w.shape[:2], -1)) + b[None, :, None, None]


def lrn(x, size, alpha, beta, bias):
    sq = np.pad(x ** 2, ((0, 0), (size // 2, size // 2), (0, 0), (0, 0)))
    window = sum(sq[:, i:i + x.shape[1]] for i in range(size))
    return x * (bias + alpha / size * window) ** -beta


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def build_cnn(model, is_test=False):
    conv1 = brew.conv(model, "data", "conv1", dim_in=2, dim_out=4, kernel=3, pad=1)
    bn1 = brew.spatial_bn(model, conv1, "bn1", 4, epsilon=1e-3, momentum=0.9, is_test=is_test)
    relu1 = brew.relu(model, bn1, bn1)
    pool1 = brew.max_pool(model, relu1, "pool1", kernel=2, stride=2)
    lrn1 = brew.lrn(model, pool1, "lrn1", size=3, alpha=0.5, beta=0.75, bias=1.0)
    drop1 = brew.dropout(model, lrn1, "drop1", ratio=0.5, is_test=True)
    fc_a = brew.fc(model, drop1, "fc_a", 4 * 3 * 3, 3)
    fc_b = brew.fc(model, drop1, "fc_b", 4 * 3 * 3, 3)
    total = brew.sum(model, [fc_a, fc_b], "total")
    brew.concat(model, [fc_a, fc_b], "both", axis=1)
    return brew.softmax(model, total, "prob")


def test_cnn_runs_and_matches_numpy():
    model = model_helper.ModelHelper(name="cnn")
    build_cnn(model)
    x = RNG.standard_normal((5, 2, 6, 6)).astype(np.float32)
    ws = run(model, {"data": x})
    get = ws.FetchBlob

    conv = conv2d(x, get("conv1_w"), get("conv1_b"), pad=1)
    np.testing.assert_allclose(get("conv1"), conv, rtol=1e-4, atol=1e-5)
    mean, var = conv.mean(axis=(0, 2, 3)), conv.var(axis=(0, 2, 3))
    bn = (conv - mean[None, :, None, None]) / np.sqrt(var + 1e-3)[None, :, None, None]
    np.testing.assert_allclose(get("bn1_sm"), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(get("bn1_siv"), 1 / np.sqrt(var + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(get("bn1_rm"), 0.1 * mean, rtol=1e-4, atol=1e-6)  # r = 0.9 r + 0.1 stat
    np.testing.assert_allclose(get("bn1_riv"), 0.9 + 0.1 * var, rtol=1e-4)
    relu = np.maximum(bn, 0)
    np.testing.assert_allclose(get("bn1"), relu, rtol=1e-3, atol=1e-4)  # relu ran in place
    pool = relu.reshape(5, 4, 3, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(get("pool1"), pool, rtol=1e-3, atol=1e-4)
    normed = lrn(pool, 3, 0.5, 0.75, 1.0)
    np.testing.assert_allclose(get("lrn1"), normed, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(get("drop1"), get("lrn1"))  # is_test: identity
    flat = normed.reshape(5, -1)
    fc_a = flat @ get("fc_a_w").T + get("fc_a_b")
    fc_b = flat @ get("fc_b_w").T + get("fc_b_b")
    np.testing.assert_allclose(get("fc_a"), fc_a, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(get("both"), np.concatenate([fc_a, fc_b], axis=1), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(get("prob"), softmax(fc_a + fc_b), rtol=1e-3, atol=1e-5)
    assert get("prob").shape == (5, 3)


def test_cnn_backward_reaches_every_param():
    model = model_helper.ModelHelper(name="cnn")
    prob = build_cnn(model)
    loss = model.AveragedLoss(model.LabelCrossEntropy([prob, "label"], "xent"), "loss")
    model.AddGradientOperators([loss])
    assert set(model.param_to_grad) == set(model.params)
    label = np.array([0, 1, 2, 0, 1], np.int32)
    ws = run(model, {"data": RNG.standard_normal((5, 2, 6, 6)).astype(np.float32), "label": label})
    for param, grad in model.param_to_grad.items():
        assert ws.FetchBlob(grad).shape == ws.FetchBlob(param).shape
    # both fc biases feed the Sum, so each gets the softmax gradient summed over the batch
    dlogits = ((ws.FetchBlob("prob") - np.eye(3)[label]) / 5).sum(axis=0)
    np.testing.assert_allclose(ws.FetchBlob("fc_a_b_grad"), dlogits, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ws.FetchBlob("fc_b_b_grad"), dlogits, rtol=1e-4, atol=1e-6)


def test_param_names_tags_and_initialisers():
    model = model_helper.ModelHelper(name="cnn")
    build_cnn(model)
    assert model.params == ["conv1_w", "conv1_b", "bn1_s", "bn1_b", "fc_a_w", "fc_a_b", "fc_b_w", "fc_b_b"]
    assert all(isinstance(p, core.BlobReference) for p in model.params)
    assert model.weights == ["conv1_w", "bn1_s", "fc_a_w", "fc_b_w"]
    assert model.biases == ["conv1_b", "bn1_b", "fc_a_b", "fc_b_b"]
    assert model.GetComputedParams() == ["bn1_rm", "bn1_riv"]
    assert model.GetAllParams() == model.params + ["bn1_rm", "bn1_riv"]
    fills = {op.output[0]: op.type for op in model.param_init_net.Proto().op}
    assert fills == {"conv1_w": "XavierFill", "conv1_b": "ConstantFill", "bn1_s": "ConstantFill",
                     "bn1_b": "ConstantFill", "bn1_rm": "ConstantFill", "bn1_riv": "ConstantFill",
                     "fc_a_w": "XavierFill", "fc_a_b": "ConstantFill",
                     "fc_b_w": "XavierFill", "fc_b_b": "ConstantFill"}
    ws = run(model, {"data": np.zeros((1, 2, 6, 6), np.float32)})
    w = ws.FetchBlob("conv1_w")
    assert w.shape == (4, 2, 3, 3) and np.abs(w).max() <= np.sqrt(3 / 18) and w.std() > 0.05
    assert ws.FetchBlob("fc_a_w").shape == (3, 36)
    np.testing.assert_array_equal(ws.FetchBlob("fc_a_b"), np.zeros(3, np.float32))
    np.testing.assert_array_equal(ws.FetchBlob("bn1_s"), np.ones(4, np.float32))
    assert model.Proto() is model.net.Proto() and model.param_init_net.Name() == "cnn_init"


def test_weight_init_tuple_no_bias_and_namescope():
    model = model_helper.ModelHelper(name="m")
    with core.NameScope("block"):
        brew.conv(model, "data", "conv", 3, 8, kernel=[3, 5], no_bias=1,
                  weight_init=("GaussianFill", {"std": 0.01}))
        brew.fc(model, "conv", "fc", 8 * 2 * 2, 2, bias_init=("ConstantFill", {"value": 0.5}))
    assert model.params == ["block/conv_w", "block/fc_w", "block/fc_b"]
    assert model.GetParams("block") == model.params and model.GetParams("other") == []
    with core.NameScope("block"):
        assert model.GetParams() == model.params
    conv_op = model.net.Proto().op[0]
    assert list(conv_op.input) == ["block/data", "block/conv_w"] and conv_op.output == ["block/conv"]
    args = {a.name: a for a in conv_op.arg}
    assert args["kernel_h"].i == 3 and args["kernel_w"].i == 5 and "no_bias" not in args
    gauss = model.param_init_net.Proto().op[0]
    assert gauss.type == "GaussianFill" and list(gauss.arg[0].ints) == [8, 3, 3, 5]
    ws = run(model, {"block/data": np.zeros((1, 3, 4, 6), np.float32)})
    assert abs(ws.FetchBlob("block/conv_w").std() - 0.01) < 0.003
    np.testing.assert_array_equal(ws.FetchBlob("block/fc_b"), [0.5, 0.5])


def test_init_params_false_and_create_param_reuse():
    model = model_helper.ModelHelper(name="m", init_params=False)
    brew.fc(model, "x", "y", 4, 2)
    assert model.params == ["y_w", "y_b"] and len(model.param_init_net.Proto().op) == 0
    model = model_helper.ModelHelper(name="m")
    first = model.create_param("shared", [2, 2], ("ConstantFill", {"value": 1.0}))
    again = model.create_param("shared", [2, 2], ("ConstantFill", {"value": 2.0}))
    assert first is again and len(model.param_init_net.Proto().op) == 1


def test_arg_scope():
    model = model_helper.ModelHelper(name="m", arg_scope={"order": "NCHW", "use_cudnn": False})
    with brew.arg_scope([brew.conv, brew.fc], weight_init=("ConstantFill", {"value": 0.25})):
        with brew.arg_scope(brew.conv, stride=2):
            brew.conv(model, "x", "c1", 1, 2, kernel=3)
            brew.conv(model, "x", "c2", 1, 2, kernel=3, stride=1)  # the call wins
        brew.fc(model, "x", "f1", 4, 2)
    brew.fc(model, "x", "f2", 4, 2)  # outside: back to XavierFill
    assert brew.get_current_scope() == {}
    init = {op.output[0]: op for op in model.param_init_net.Proto().op}
    assert [init[n].type for n in ("c1_w", "c2_w", "f1_w", "f2_w")] == ["ConstantFill"] * 3 + ["XavierFill"]
    strides = [{a.name: a.i for a in op.arg}.get("stride") for op in model.net.Proto().op[:2]]
    assert strides == [2, 1]
    assert all(not op.engine for op in model.net.Proto().op)  # use_cudnn=False from the model

    nhwc = model_helper.ModelHelper(name="n", arg_scope={"order": "NHWC"})
    brew.conv(nhwc, "x", "c", 3, 8, kernel=5)
    assert nhwc.net.Proto().op[0].engine == "CUDNN"  # Caffe2's default arg_scope has use_cudnn
    assert list(nhwc.param_init_net.Proto().op[0].arg[0].ints) == [8, 5, 5, 3]


@pytest.mark.parametrize("helper", ["conv", "conv_nd"])
@pytest.mark.parametrize("model_cudnn, call", [
    (None, {}), (None, {"engine": "CUDNN"}), (None, {"use_cudnn": False}),
    (None, {"use_cudnn": False, "engine": ""}), (False, {}), (False, {"use_cudnn": True}),
    (True, {"engine": ""}), (False, {"engine": "CUDNN"}), (None, {"use_cudnn": True, "engine": ""})])
def test_use_cudnn_and_engine(helper, model_cudnn, call):
    """As Caffe2's conv helpers: engine follows use_cudnn (the model's, True by default,
    unless the call gives one); an engine contradicting it is refused."""
    scope = {} if model_cudnn is None else {"use_cudnn": model_cudnn}
    model = model_helper.ModelHelper(name="m", arg_scope=scope)
    use_cudnn = call.get("use_cudnn", True if model_cudnn is None else model_cudnn)
    engine = call.get("engine", "CUDNN" if use_cudnn else "")
    add = functools.partial(getattr(brew, helper), model, "x", "y", 4, 4, [3, 3] if helper == "conv_nd" else 3)
    if engine != ("CUDNN" if use_cudnn else ""):
        with pytest.raises(ValueError, match=f"When use_cudnn={use_cudnn}, the only engine"):
            add(**call)
        assert not model.net.Proto().op
    else:
        add(**call)
        assert model.net.Proto().op[-1].engine == engine


def test_register_custom_helper():
    def double_relu(model, blob_in, blob_out, **kwargs):
        return brew.relu(model, brew.relu(model, blob_in, blob_out + "_1"), blob_out, **kwargs)

    if not brew.has_helper("double_relu"):
        brew.Register(double_relu)
    with pytest.raises(AttributeError, match="already exists"):
        brew.Register(double_relu)
    model = model_helper.ModelHelper(name="m")
    brew.double_relu(model, "x", "y")
    assert [op.type for op in model.net.Proto().op] == ["Relu", "Relu"]
    with pytest.raises(AttributeError, match="not registered"):
        brew.no_such_helper  # noqa: B018


def test_is_test_modes():
    x = RNG.standard_normal((4, 3, 2, 2)).astype(np.float32)
    model = model_helper.ModelHelper(name="test_mode")
    bn = brew.spatial_bn(model, "x", "bn", 3, is_test=True)
    brew.dropout(model, bn, "drop", ratio=0.5, is_test=True)
    assert len(model.net.Proto().op[0].output) == 1
    ws = run(model, {"x": x})
    np.testing.assert_allclose(ws.FetchBlob("bn"), x / np.sqrt(1 + 1e-5), rtol=1e-5)  # rm 0, riv 1
    np.testing.assert_array_equal(ws.FetchBlob("drop"), ws.FetchBlob("bn"))

    train = model_helper.ModelHelper(name="train_mode")
    brew.dropout(train, "x", "drop", ratio=0.5)
    y = run(train, {"x": x}).FetchBlob("drop")
    kept = y != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_allclose(y[kept], 2 * x[kept], rtol=1e-6)


def test_other_helpers_against_numpy():
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    model = model_helper.ModelHelper(name="misc")
    brew.leaky_relu(model, "x", "leaky", alpha=0.1)
    brew.sigmoid(model, "x", "sig")
    brew.tanh(model, "x", "tanh")
    brew.average_pool(model, "x", "avg", kernel=2, stride=2)
    brew.conv_transpose(model, "x", "up", 3, 2, kernel=2, stride=2)
    model.Relu("x", "relu_direct")  # ops without params go to model.net
    ws = run(model, {"x": x})
    np.testing.assert_allclose(ws.FetchBlob("leaky"), np.where(x >= 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_allclose(ws.FetchBlob("sig"), 1 / (1 + np.exp(-x)), rtol=1e-5)
    np.testing.assert_allclose(ws.FetchBlob("tanh"), np.tanh(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ws.FetchBlob("avg"), x.reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-5)
    np.testing.assert_array_equal(ws.FetchBlob("relu_direct"), np.maximum(x, 0))
    w, b = ws.FetchBlob("up_w"), ws.FetchBlob("up_b")
    assert w.shape == (3, 2, 2, 2) and model.params == ["up_w", "up_b"]
    # stride = kernel: every input pixel paints its own 2x2 block
    up = np.einsum("nchw,cokl->nohkwl", x, w).reshape(2, 2, 8, 8) + b[None, :, None, None]
    np.testing.assert_allclose(ws.FetchBlob("up"), up, rtol=1e-4, atol=1e-5)


def test_accuracy():
    model = model_helper.ModelHelper(name="acc")
    brew.accuracy(model, ["pred", "label"], "acc")
    brew.accuracy(model, ["pred", "label"], "acc2", top_k=2)
    pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]], np.float32)
    ws = run(model, {"pred": pred, "label": np.array([1, 1, 2, 2], np.int32)})
    assert ws.FetchBlob("acc") == pytest.approx(0.5) and ws.FetchBlob("acc2") == pytest.approx(1.0)


def separable_problem(n=32):
    rng = np.random.default_rng(1)
    label = rng.integers(0, 2, n).astype(np.int32)
    x = rng.standard_normal((n, 1, 4, 4)).astype(np.float32)
    x[:, 0, :2] += np.where(label == 1, 2.0, -2.0)[:, None, None]
    return x, label


def build_trainable(model):
    conv = brew.conv(model, "data", "conv", 1, 2, kernel=3, pad=1)
    bn = brew.spatial_bn(model, conv, "bn", 2)
    relu = brew.relu(model, bn, "relu")
    pred = brew.fc(model, relu, "pred", 2 * 4 * 4, 2)
    _, loss = model.SoftmaxWithLoss([pred, "label"], ["softmax", "loss"])
    return loss


def test_gradients_and_one_sgd_step_lower_the_loss():
    model = model_helper.ModelHelper(name="train")
    loss = build_trainable(model)
    with pytest.raises(RuntimeError, match="AddGradientOperators first"):
        model.get_param_to_grad(model.params)
    grad_map = model.AddGradientOperators([loss])
    assert set(model.param_to_grad) == set(model.params)
    assert all(model.param_to_grad[p] == str(p) + "_grad" for p in model.params)
    assert grad_map["conv_w"] == "conv_w_grad" and "bn_rm" not in model.param_to_grad
    assert model.get_param_to_grad(["pred_w"]) == {"pred_w": "pred_w_grad"}
    with pytest.raises(RuntimeError, match="twice"):
        model.AddGradientOperators([loss])

    x, label = separable_problem()
    ws = run(model, {"data": x, "label": label})
    before = float(ws.FetchBlob("loss"))
    # the fc gradient by hand: dloss/dlogits = (softmax - onehot) / N
    dlogits = (ws.FetchBlob("softmax") - np.eye(2)[label]) / len(label)
    np.testing.assert_allclose(ws.FetchBlob("pred_w_grad"), dlogits.T @ ws.FetchBlob("relu").reshape(len(x), -1),
                               rtol=1e-3, atol=1e-6)

    sgd = core.Net("sgd")
    ws.FeedBlob("ONE", np.ones(1, np.float32))
    ws.FeedBlob("LR", np.full(1, -0.5, np.float32))
    for param, grad in model.param_to_grad.items():
        sgd.WeightedSum([param, "ONE", grad, "LR"], param)
    ws.RunNetOnce(sgd.Proto())
    ws.RunNetOnce(model.net.Proto())
    after = float(ws.FetchBlob("loss"))
    assert after < before - 0.05


def test_block_passes_through_and_weight_decay():
    model = model_helper.ModelHelper(name="blocked")
    loss = build_trainable(model)
    model.AddGradientOperators([loss], block=[BlockGradients("conv_*")])
    assert "conv_w" not in model.param_to_grad and "pred_w" in model.param_to_grad

    model = model_helper.ModelHelper(name="decay")
    loss = build_trainable(model)
    model.AddGradientOperators([loss])
    x, label = separable_problem()
    plain = run(model, {"data": x, "label": label})
    brew.add_weight_decay(model, 0.1)
    decayed = run(model, {"data": x, "label": label})
    for w in model.weights:
        expected = plain.FetchBlob(str(w) + "_grad") + 0.1 * plain.FetchBlob(str(w))
        np.testing.assert_allclose(decayed.FetchBlob(str(w) + "_grad"), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(decayed.FetchBlob("pred_b_grad"), plain.FetchBlob("pred_b_grad"))
