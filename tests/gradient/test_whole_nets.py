"""Whole-net gradient checks: the backward pass of real small nets vs central differences."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.gradient import GetBackwardPass
from pycaffe2.gradient_checker import check_net_gradient

rng = np.random.default_rng(0)


def normal(*shape, scale=0.5):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def test_mlp_with_hard_sigmoid_and_softmax_loss():
    net = core.Net("mlp")
    net.FC(["X", "W1", "b1"], "h")
    net.HardSigmoid("h", "a", alpha=0.2, beta=0.5)
    net.FC(["a", "W2", "b2"], "logits")
    net.SoftmaxWithLoss(["logits", "label"], ["P", "loss"])
    values = {"X": normal(4, 5), "W1": normal(6, 5), "b1": normal(6), "W2": normal(3, 6), "b2": normal(3),
              "label": np.array([0, 2, 1, 2], np.int32)}
    reports = check_net_gradient(net.Proto(), ["loss"], values, ["X", "W1", "b1", "W2", "b2"])
    assert all(report.ok for report in reports), "\n".join(map(str, reports))


def cnn():
    net = core.Net("cnn")
    net.Conv(["X", "W1", "b1"], "c", kernel=3, pad=1)
    net.SpatialBN(["c", "scale", "bias", "running_mean", "running_var"],
                  ["bn", "running_mean", "running_var", "saved_mean", "saved_inv_std"], epsilon=1e-3)
    net.HardSigmoid("bn", "hs")
    net.FC(["hs", "W2", "b2"], "f")
    net.FC(["Z", "W3", "b3"], "side")
    net.StopGradient("side", "side_stopped")  # the side branch is a constant to the backward pass
    net.Add(["f", "side_stopped"], "out")
    net.SquaredL2Distance(["out", "target"], "distance")
    net.AveragedLoss("distance", "loss")
    values = {"X": normal(2, 2, 4, 4, scale=1.0), "W1": normal(3, 2, 3, 3), "b1": normal(3),
              "scale": np.full(3, 0.6, np.float32), "bias": normal(3, scale=0.1),
              "running_mean": np.zeros(3, np.float32), "running_var": np.ones(3, np.float32),
              "W2": normal(4, 48, scale=0.2), "b2": normal(4), "Z": normal(2, 3), "W3": normal(4, 3),
              "b3": normal(4), "target": normal(2, 4)}
    return net, values


def test_small_cnn_with_spatial_bn_hard_sigmoid_and_a_stop_gradient():
    net, values = cnn()
    checked = ["X", "W1", "b1", "scale", "bias", "W2", "b2"]
    reports = check_net_gradient(net.Proto(), ["loss"], values, checked, threshold=1e-2)
    assert all(report.ok for report in reports), "\n".join(map(str, reports))


def test_stop_gradient_keeps_the_side_branch_out_of_the_backward_pass():
    net, _ = cnn()
    grad_ops, grad_map = GetBackwardPass(net.Proto().op, ["loss"])
    assert not {"Z", "W3", "b3", "side"} & set(grad_map)
    assert not any(op.type == "FCGradient" and op.input[0] == "Z" for op in grad_ops)


@pytest.mark.parametrize("net_type", ["simple", "dag"])
def test_training_step_lowers_the_loss(net_type):
    """Forward + backward + SGD as one net, run as Caffe2 would: the loss falls."""
    net = core.Net("train")
    net.Proto().type = net_type
    net.FC(["X", "W", "b"], "logits")
    net.SoftmaxWithLoss(["logits", "label"], ["P", "loss"])
    grad_map = net.AddGradientOperators(["loss"])
    for param in ("W", "b"):
        net.WeightedSum([param, "ONE", grad_map[param], "LR"], param)
    from pycaffe2.executor import Workspace
    workspace = Workspace()
    x = normal(16, 4, scale=1.0)
    for name, value in {"X": x, "W": normal(3, 4), "b": normal(3), "ONE": np.ones(1, np.float32),
                        "LR": np.full(1, -0.5, np.float32),
                        "label": (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0)}.items():
        workspace.FeedBlob(name, value)
    workspace.CreateNet(net.Proto())
    workspace.RunNet("train")
    first = float(workspace.FetchBlob("loss"))
    workspace.RunNet("train", num_iter=30)
    assert float(workspace.FetchBlob("loss")) < 0.7 * first
