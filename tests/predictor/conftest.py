"""The small trained CNN the predictor tests export."""
import numpy as np
import pytest

from pycaffe2 import brew, model_helper, workspace

RNG = np.random.default_rng(5)


def small_cnn():
    model = model_helper.ModelHelper(name="small_cnn", arg_scope={"order": "NCHW"})
    conv = brew.conv(model, "data", "conv1", dim_in=2, dim_out=4, kernel=3)
    relu = brew.relu(model, conv, "relu1")
    pool = brew.max_pool(model, relu, "pool1", kernel=2, stride=2)
    fc = brew.fc(model, pool, "fc2", dim_in=4 * 3 * 3, dim_out=5)
    brew.softmax(model, fc, "softmax")
    return model


@pytest.fixture
def trained():
    """The model, its parameters initialised in the global workspace, and one batch."""
    workspace.ResetWorkspace()
    model = small_cnn()
    data = RNG.standard_normal((3, 2, 8, 8)).astype(np.float32)
    workspace.FeedBlob("data", data)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net)
    yield model, data, workspace.FetchBlob("softmax")
    workspace.ResetWorkspace()
