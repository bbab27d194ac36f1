"""Real Caffe2 model files run end to end (caffe2_models in ../shared, or in $PYCAFFE2_SHARED).

The two complete pairs run from their .pb files; the predict-only nets run
with weights of the right shapes made up by pycaffe2.run.random_init.
"""
import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.executor import Workspace
from pycaffe2.run import made_up_weights


def run_pair(folder, feeds):
    workspace = Workspace("model")
    workspace.RunNetOnce(netfile.load_net(folder / "init_net.pb"))
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    predict = netfile.load_net(folder / "predict_net.pb")
    workspace.CreateNet(predict)
    workspace.RunNet(predict.name)
    return workspace


def digit_image() -> np.ndarray:
    """A 28x28 stroke shaped like a 1, MNIST-scaled."""
    image = np.zeros((1, 1, 28, 28), np.float32)
    image[0, 0, 4:24, 13:16] = 1.0
    return image


def test_lenet_pair_classifies_a_digit_shaped_input(caffe2_models):
    workspace = run_pair(caffe2_models / "hungmingwu_pytorch_export", {"1": digit_image()})
    logits = workspace.FetchBlob("26")
    assert logits.shape == (1, 10) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits)) and logits.std() > 0


def test_lenet_pair_runs_a_batch_consistently(caffe2_models):
    rng = np.random.default_rng(0)
    batch = rng.random((3, 1, 28, 28)).astype(np.float32)
    many = run_pair(caffe2_models / "hungmingwu_pytorch_export", {"1": batch}).FetchBlob("26")
    one = run_pair(caffe2_models / "hungmingwu_pytorch_export", {"1": batch[1:2]}).FetchBlob("26")
    assert many.shape == (3, 10)
    np.testing.assert_allclose(many[1:2], one, rtol=1e-4, atol=1e-4)


def test_super_resolution_pair_runs_from_its_init_net_alone(caffe2_models):
    workspace = run_pair(caffe2_models / "hmc_random_test", {})
    image = workspace.FetchBlob("27")
    assert image.shape == (1, 1, 672, 672) and np.all(np.isfinite(image))


SQUEEZENET = ["squeeze_predict_net.pb", "squeezenet_predict_armcompute.pb"]


@pytest.mark.parametrize("file", SQUEEZENET)
def test_squeezenet_with_made_up_weights(caffe2_models, file):
    net = netfile.load_net(caffe2_models / "squeezenet_predict_only" / file)
    data = np.random.default_rng(1).random((1, 3, 227, 227)).astype(np.float32)
    weights = made_up_weights(net, {"data": data}, out_channels={"conv10_w": 1000})
    assert weights["conv1_w"].shape == (16, 3, 3, 3)
    workspace = Workspace("squeezenet")
    for name, value in {"data": data, **weights}.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net)
    probabilities = workspace.FetchBlob("softmaxout")
    assert probabilities.shape == (1, 1000, 1, 1)
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("file", ["tinyPredict.pb", "tinyYoloPredict.pb"])
def test_tiny_nets_with_spatial_bn_and_broadcast_mul_add(caffe2_models, file):
    net = netfile.load_net(caffe2_models / "caffe2_ios_predict_only" / file)
    data = np.random.default_rng(2).random((1, 3, 64, 64)).astype(np.float32)
    weights = made_up_weights(net, {"data": data})
    assert all(weights[name].shape == (16,) for name in ("conv1_bn_mean", "conv1_scale_w"))
    workspace = Workspace("tiny")
    for name, value in {"data": data, **weights}.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net)
    result = workspace.FetchBlob("result")
    assert result.shape[:2] == (1, 16) and np.all(np.isfinite(result))
