"""optimizer.build_rms_prop / build_ftrl / build_adadelta, learning-rate injection
and get_param_device: the nets they build (as Caffe2 builds them) and that they
train a small linear regression."""
from types import SimpleNamespace

import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, optimizer, workspace
from pycaffe2.proto import caffe2_pb2


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("Y", x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32))
    model = model_helper.ModelHelper("reg")
    pred = brew.fc(model, "X", "pred", 4, 1)
    model.net.AveragedLoss(model.net.SquaredL2Distance([pred, "Y"], "dist"), "loss")
    model.AddGradientOperators(["loss"])
    return model


def train(model, iterations):
    workspace.RunNetOnce(model.param_init_net)
    # Fixed start (Xavier's range for fan-in 4), so the result does not hang on the fill's draw.
    workspace.FeedBlob("pred_w", np.random.default_rng(1).uniform(-0.87, 0.87, (1, 4)).astype(np.float32))
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net)
    first = float(workspace.FetchBlob("loss"))
    workspace.RunNet(model.net, iterations)
    return first, float(workspace.FetchBlob("loss"))


@pytest.mark.parametrize("build, kwargs, factor", [
    (optimizer.build_rms_prop, {"base_learning_rate": 0.01}, 100),
    (optimizer.build_rms_prop, {"base_learning_rate": 0.01, "momentum": 0.5, "decay": 0.8}, 20),
    (optimizer.build_ftrl, {"alpha": 0.5, "beta": 1.0, "lambda1": 0.0, "lambda2": 0.0}, 1000),
    (optimizer.build_adadelta, {"base_learning_rate": 1.0, "epsilon": 1e-6}, 2),
    (optimizer.build_wngrad, {"base_learning_rate": 5.0, "moment_init": 1.0}, 10),
    (optimizer.build_storm, {"base_learning_rate": 0.5, "momentum": 1.0, "beta": 1.0}, 5),
    (optimizer.build_gftrl, {"alpha": 0.5, "beta": 1.0}, 100),
    (optimizer.build_decay_adagrad, {"base_learning_rate": 0.1, "beta1": 0.5}, 10),
])
def test_builders_train(build, kwargs, factor):
    model = regression()
    build(model, **kwargs)
    first, last = train(model, 300)
    assert last < first / factor


def test_rms_prop_net_is_caffe2s():
    model = regression()
    opt = optimizer.build_rms_prop(model, 0.01)
    ops = [op for op in model.net.Proto().op if op.type in ("RmsProp", "MomentumSGDUpdate")]
    assert [op.type for op in ops] == ["RmsProp", "MomentumSGDUpdate"] * 2
    rms, update = ops[:2]
    assert list(rms.output) == ["pred_w_grad_o", "pred_w_mean_squares", "pred_w_momentum"]
    assert rms.input[3].startswith("ONE_") and list(update.output) == ["pred_w_grad_o", "pred_w_momentum", "pred_w"]
    assert opt.get_auxiliary_parameters().local == ["pred_w_mean_squares", "pred_w_momentum",
                                                    "pred_b_mean_squares", "pred_b_momentum"]


def test_ftrl_and_adadelta_state_blobs():
    model = regression()
    optimizer.build_ftrl(model, alpha=0.1)
    fill = next(op for op in model.param_init_net.Proto().op if op.output[0] == "pred_w_ftrl_nz")
    assert list(fill.input) == ["pred_w"] and [a.ints for a in fill.arg if a.name == "extra_shape"] == [[2]]
    model = regression()
    optimizer.build_adadelta(model, 0.1, decay=0.9)
    (op, _) = [op for op in model.net.Proto().op if op.type == "Adadelta"]
    assert list(op.input[:3]) == ["pred_w", "pred_w_squared_moment", "pred_w_squared_moment_update"]


def test_sparse_gradients_take_the_sparse_ops_or_are_refused_clearly():
    net, init = core.Net("n"), core.Net("i")
    optimizer.FtrlOptimizer()(net, init, "w", core.GradientSlice("idx", "val"))
    optimizer.AdadeltaOptimizer()(net, init, "w", core.GradientSlice("idx", "val"))
    assert [op.type for op in net.Proto().op if op.type.startswith("Sparse")] == ["SparseFtrl", "SparseAdadelta"]
    with pytest.raises(ValueError, match="sparse gradient"):
        optimizer.RmsPropOptimizer()(net, init, "w", core.GradientSlice("idx", "val"))


def test_lr_injection_scales_every_rate():
    model = regression()
    optimizer.build_sgd(model, 0.05, allow_lr_injection=True)
    workspace.RunNetOnce(model.param_init_net)
    np.testing.assert_array_equal(optimizer.get_lr_injection(), [1.0])
    workspace.CreateNet(model.net)
    optimizer.set_lr_injection(0.0)
    before = workspace.FetchBlob("pred_w").copy()
    workspace.RunNet(model.net, 3)
    np.testing.assert_array_equal(workspace.FetchBlob("pred_w"), before)
    optimizer.set_lr_injection(1.0)
    workspace.RunNet(model.net, 3)
    assert not np.array_equal(workspace.FetchBlob("pred_w"), before)


def test_get_param_device():
    model = regression()
    gpu = core.DeviceOption(caffe2_pb2.PROTO_CUDA, 1)
    with core.DeviceScope(gpu):
        model.param_init_net.ConstantFill([], "on_gpu", shape=[1])
    devices = core.InferBlobDevices(model.param_init_net)
    assert optimizer.get_param_device("on_gpu", "g", devices) == gpu
    assert optimizer.get_param_device("p", core.GradientSlice("i", "on_gpu"), devices) == gpu
    with pytest.raises(ValueError, match="Cannot infer device for p"):
        optimizer.get_param_device("p", "g", devices)


def test_multi_precision_sgd_updates_the_float32_copy_and_writes_it_back():
    net, init = core.Net("mp"), core.Net("mp_init")
    init.GivenTensorFill([], "w32", shape=[3], values=[1.0, 2.0, 3.0])
    init.FloatToHalf("w32", "w16")
    info = SimpleNamespace(blob="w16", grad="w16_grad", blob_copy={core.DataType.FLOAT: "w32"})
    optimizer.MultiPrecisionSgdOptimizer(0.5, momentum=0.9, nesterov=0)(net, init, info)
    assert [op.type for op in net.Proto().op][-3:] == ["HalfToFloat", "MomentumSGDUpdate", "FloatToHalf"]
    workspace.RunNetOnce(init)
    workspace.CreateNet(net)
    grad = np.array([0.5, -1.0, 2.0], np.float16)
    workspace.FeedBlob("w16_grad", grad)
    w, moment = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    for _ in range(2):
        workspace.RunNet(net)
        moment = 0.5 * grad.astype(np.float64) + 0.9 * moment
        w -= moment
    np.testing.assert_allclose(workspace.FetchBlob("w32"), w, rtol=1e-6)
    assert workspace.FetchBlob("w16").dtype == np.float16
    np.testing.assert_allclose(workspace.FetchBlob("w16"), w, rtol=1e-3)


def test_multi_precision_sgd_is_sgd_for_float32_params():
    model = regression()
    optimizer.build_multi_precision_sgd(model, 0.05)
    assert "WeightedSum" in [op.type for op in model.net.Proto().op]
    first, last = train(model, 300)
    assert last < first / 1000


def test_new_builders_nets_are_caffe2s():
    model = regression()
    optimizer.build_wngrad(model, 1.0, output_effective_lr=True)
    (op, _) = [op for op in model.net.Proto().op if op.type == "Wngrad"]
    assert list(op.input[:2]) == ["pred_w", "pred_w_moment"] and list(op.output)[2] == "pred_w_effective_lr"
    model = regression()
    optimizer.build_storm(model, 0.1, grad_sq_init=0.5)
    (op, _) = [op for op in model.net.Proto().op if op.type == "Storm"]
    assert list(op.input[:3]) == ["pred_w", "pred_w_moment", "pred_w_grad_sq_sum"]
    model = regression()
    optimizer.build_decay_adagrad(model, 0.1)
    (op, _) = [op for op in model.net.Proto().op if op.type == "DecayAdagrad"]
    assert list(op.input[:3]) == ["pred_w", "pred_w_first_mo1ment", "pred_w_second_moment"]
    with pytest.raises(NotImplementedError, match="lars=0.1 is not supported"):
        optimizer.WngradOptimizer(lars=0.1)
