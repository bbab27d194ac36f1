"""pycaffe2.cnn.CNNModelHelper: Caffe2's old model helper over brew."""
import numpy as np
import pytest

from pycaffe2 import cnn, core, workspace
from pycaffe2.errors import PyCaffe2Error


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def test_fc_relu_softmax_matches_numpy():
    model = cnn.CNNModelHelper(name="mlp")
    fc = model.FC("data", "fc", dim_in=4, dim_out=3)
    relu = model.Relu(fc, "relu")
    model.Softmax(relu, "prob")
    assert [str(p) for p in model.params] == ["fc_w", "fc_b"]
    assert [str(w) for w in model.weights] == ["fc_w"] and [str(b) for b in model.biases] == ["fc_b"]
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    workspace.FeedBlob("data", x)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    w, b = workspace.FetchBlob("fc_w"), workspace.FetchBlob("fc_b")
    h = np.maximum(x @ w.T + b, 0)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    np.testing.assert_allclose(workspace.FetchBlob("prob"), e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_conv_net_shapes_order_and_engine():
    model = cnn.CNNModelHelper(order="NCHW", name="lenet", ws_nbytes_limit=1024)
    conv = model.Conv("data", "conv1", dim_in=1, dim_out=4, kernel=3)
    bn = model.SpatialBN(conv, "bn1", 4, is_test=True)
    pool = model.MaxPool(bn, "pool1", kernel=2, stride=2)
    avg = model.AveragePool(pool, "avg", kernel=1)
    model.Sum([pool, avg], "sum")
    op = model.net.Proto().op[0]
    args = {a.name: a for a in op.arg}
    assert op.type == "Conv" and op.engine == "CUDNN" and args["order"].s == b"NCHW"
    assert args["ws_nbytes_limit"].i == 1024
    workspace.FeedBlob("data", np.random.rand(2, 1, 6, 6).astype(np.float32))
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    assert workspace.FetchBlob("conv1_w").shape == (4, 1, 3, 3)
    assert workspace.FetchBlob("sum").shape == (2, 4, 2, 2)
    np.testing.assert_allclose(workspace.FetchBlob("sum"), 2 * workspace.FetchBlob("pool1"), rtol=1e-6)


def test_nhwc_filter_layout_and_bad_order():
    model = cnn.CNNModelHelper(order="NHWC", use_cudnn=False)
    model.Conv("data", "c", dim_in=3, dim_out=2, kernel=5)
    workspace.RunNetOnce(model.param_init_net)
    assert workspace.FetchBlob("c_w").shape == (2, 5, 5, 3)
    assert model.net.Proto().op[0].engine == ""
    with pytest.raises(PyCaffe2Error, match="storage order 'NCWH'"):
        cnn.CNNModelHelper(order="NCWH")


def test_training_lowers_the_loss():
    rng = np.random.RandomState(1)
    x = rng.randn(64, 2).astype(np.float32)
    label = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    model = cnn.CNNModelHelper(name="train")
    fc = model.FC("data", "fc", 2, 2)
    drop = model.Dropout(fc, "drop", ratio=0.0)
    softmax = model.Softmax(drop, "softmax")
    xent = model.LabelCrossEntropy([softmax, "label"], "xent")
    loss = model.AveragedLoss(xent, "loss")
    model.Accuracy([softmax, "label"], "accuracy")
    model.AddGradientOperators([loss])
    model.AddWeightDecay(1e-4)
    it = model.Iter("iter")
    lr = model.net.LearningRate(it, "lr", base_lr=-0.5, policy="fixed")
    one = model.param_init_net.ConstantFill([], "one", shape=[1], value=1.0)
    for param in model.params:
        model.net.WeightedSum([param, one, model.param_to_grad[param], lr], param)
    for op in model.param_init_net.Proto().op:  # the same start whichever tests ran before
        op.device_option.random_seed = 3
    workspace.FeedBlob("data", x)
    workspace.FeedBlob("label", label)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net.Name())
    first = float(workspace.FetchBlob("loss"))
    workspace.RunNet(model.net.Name(), 50)
    assert float(workspace.FetchBlob("loss")) < first / 2
    assert float(workspace.FetchBlob("accuracy")) > 0.9
    assert workspace.FetchBlob("iter").tolist() == [51]


def test_get_weights_by_namescope_and_init_params_false():
    model = cnn.CNNModelHelper(init_params=False)
    with core.NameScope("a"):
        model.FC("x", "fc", 2, 2)
    with core.NameScope("b"):
        model.FC("x", "fc", 2, 2)
    assert [str(w) for w in model.GetWeights("a")] == ["a/fc_w"]
    assert [str(b) for b in model.GetBiases()] == ["a/fc_b", "b/fc_b"]
    with core.NameScope("b"):
        assert [str(w) for w in model.GetWeights()] == ["b/fc_w"]
    assert len(model.param_init_net.Proto().op) == 0
    assert model.XavierInit == ("XavierFill", {}) and model.ConstantInit(2.0) == ("ConstantFill", {"value": 2.0})
    assert model.CPU.device_type == 0 and model.GPU.device_type == 1
