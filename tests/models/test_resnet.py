"""models.resnet: Caffe2's ResNet builders, with brew; the networks build under Caffe2's
blob names, run forward, and a training step's backward pass reaches every parameter."""
import numpy as np
import pytest

from pycaffe2 import model_helper, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.models import resnet

RNG = np.random.default_rng(11)


def run(model, feeds):
    workspace.ResetWorkspace()
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)


def test_resnet_32x32_forward_gives_a_distribution_per_image():
    model = model_helper.ModelHelper(name="cifar_resnet")
    softmax = resnet.create_resnet_32x32(model, "data", num_input_channels=3, num_groups=1, num_labels=10,
                                         is_test=True)
    run(model, {"data": RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)})
    probabilities = workspace.FetchBlob(softmax)
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # 6n + 2 layers with n = 1: conv1, six simple blocks of two convs, the FC
    convs = [op for op in model.net.Proto().op if op.type == "Conv"]
    assert len(convs) == 1 + 6 * 2 + 2  # plus the two projection shortcuts (16 -> 32, 32 -> 64)
    assert "comp_5_sum_2" in {op.output[0] for op in model.net.Proto().op}
    workspace.ResetWorkspace()


def test_resnet50_names_shapes_and_a_training_step():
    model = model_helper.ModelHelper(name="resnet50")
    softmax, loss = resnet.create_resnet50(model, "data", num_input_channels=3, num_labels=7, label="label",
                                           no_bias=True)
    names = {str(p) for p in model.params}
    assert {"conv1_w", "comp_0_conv_1_w", "comp_15_conv_3_w", "shortcut_projection_0_w",
            "shortcut_projection_0_spatbn_s", "last_out_L7_w", "last_out_L7_b"} <= names
    assert "comp_16_conv_1_w" not in names and "conv1_b" not in names  # 16 bottlenecks, no conv bias
    grads = model.AddGradientOperators([loss])
    run(model, {"data": RNG.standard_normal((2, 3, 32, 32)).astype(np.float32),
                "label": np.array([1, 4], np.int32)})
    assert workspace.FetchBlob("comp_15_conv_3_w").shape == (2048, 512, 1, 1)
    assert workspace.FetchBlob(softmax).shape == (2, 7)
    assert np.isfinite(workspace.FetchBlob(loss)) and workspace.FetchBlob(loss) > 0
    for param in ("conv1_w", "comp_0_conv_1_w", "last_out_L7_w"):
        grad = workspace.FetchBlob(grads[param])
        assert grad.shape == workspace.FetchBlob(param).shape and np.any(grad != 0)
    workspace.ResetWorkspace()


def test_resnext_groups_and_bad_depth():
    model = model_helper.ModelHelper(name="resnext")
    resnet.create_resnext(model, "data", 3, 5, num_layers=18, num_groups=2, num_width_per_group=4,
                          is_test=True, no_loss=True)
    grouped = [op for op in model.net.Proto().op if op.type == "Conv" and any(
        a.name == "group" and a.i == 2 for a in op.arg)]
    assert len(grouped) == 8  # the 3x3 of every bottleneck
    with pytest.raises(PyCaffe2Error, match="no 42-layer"):
        resnet.create_resnext(model_helper.ModelHelper(), "data", 3, 5, 42, 1, 64)
