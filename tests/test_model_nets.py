"""The brew-built model pairs under nets/models: committed files match the script,
pass `pycaffe2 validate`, and LeNet and SqueezeNet run end to end from their .pb
files (ResNet-50 runs in benchmarks/resnet50.py)."""
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from pycaffe2 import netfile, workspace
from pycaffe2.validate import check_file

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "nets" / "models"
_spec = importlib.util.spec_from_file_location("make_model_nets", ROOT / "scripts" / "make_model_nets.py")
make_model_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_model_nets)
NAMES = list(make_model_nets.MODELS)
FILLERS = {"XavierFill", "MSRAFill", "ConstantFill"}


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def run_model(name, data):
    """Init net once, then the predict net on `data`; returns the predict net."""
    init_net = netfile.load_net(MODELS / name / "init_net.pb")
    predict_net = netfile.load_net(MODELS / name / "predict_net.pb")
    workspace.RunNetOnce(init_net)
    workspace.FeedBlob("data", data)
    workspace.CreateNet(predict_net)
    workspace.RunNet(predict_net.name)
    return predict_net


def blob(name):
    return workspace.FetchBlob(name).astype(np.float64)


def conv(x, w, b, stride=1, pad=0):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,mcij->nmhw", windows, w) + b[:, None, None]


def max_pool(x, kernel, stride):
    return sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(4, 5))


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", NAMES)
def test_committed_files_equal_a_fresh_build(name, tmp_path):
    folder = make_model_nets.save(name, tmp_path)
    for file in ("init_net.pb", "predict_net.pb"):
        assert (MODELS / name / file).read_bytes() == (folder / file).read_bytes(), \
            f"nets/models/{name}/{file} is stale: run scripts/make_model_nets.py"


@pytest.mark.parametrize("name", NAMES)
def test_pairs_are_small_seeded_and_wired(name):
    init_net = netfile.load_net(MODELS / name / "init_net.pb")
    predict_net = netfile.load_net(MODELS / name / "predict_net.pb")
    assert {op.type for op in init_net.op} <= FILLERS
    assert (MODELS / name / "init_net.pb").stat().st_size < 32_000
    assert init_net.device_option.random_seed == make_model_nets.SEED
    params = [op.output[0] for op in init_net.op]
    assert list(init_net.external_output) == params
    assert list(predict_net.external_input) == ["data", *params]
    assert list(predict_net.external_output) == ["softmax"]


@pytest.mark.parametrize("name", NAMES)
def test_pairs_validate_clean(name):
    assert check_file(MODELS / name) == []


def test_init_net_is_reproducible():
    init_net = netfile.load_net(MODELS / "lenet" / "init_net.pb")
    workspace.RunNetOnce(init_net)
    first = {b: workspace.FetchBlob(b).copy() for b in init_net.external_output}
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    for name, value in first.items():
        np.testing.assert_array_equal(workspace.FetchBlob(name), value, err_msg=name)
    bound = np.sqrt(3.0 / (20 * 5 * 5))  # XavierFill of conv2_w: U(-sqrt(3/fan_in), +)
    assert 0.5 * bound < np.abs(first["conv2_w"]).max() <= bound
    assert first["fc3_w"].shape == (500, 800) and not first["fc3_b"].any()


def test_lenet_runs_and_matches_numpy():
    data = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    run_model("lenet", data)
    x = max_pool(conv(data.astype(np.float64), blob("conv1_w"), blob("conv1_b")), 2, 2)
    x = max_pool(conv(x, blob("conv2_w"), blob("conv2_b")), 2, 2).reshape(3, -1)
    x = np.maximum(x @ blob("fc3_w").T + blob("fc3_b"), 0)
    expected = softmax(x @ blob("pred_w").T + blob("pred_b"))
    got = workspace.FetchBlob("softmax")
    assert got.shape == (3, 10) and np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_squeezenet_runs_with_caffe_shapes():
    data = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    predict_net = run_model("squeezenet1_1", data)
    counts = Counter(op.type for op in predict_net.op)
    assert counts["Conv"] == 26 and counts["Concat"] == 8 and counts["MaxPool"] == 3
    # conv1 3x3/2 gives 111; Caffe's ceil-mode pools give 55, 27, 13.
    expected_shapes = {"conv1": (1, 64, 111, 111), "pool1": (1, 64, 55, 55), "pool3": (1, 128, 27, 27),
                       "pool5": (1, 256, 13, 13), "fire9/concat": (1, 512, 13, 13),
                       "conv10": (1, 1000, 13, 13), "pool10": (1, 1000, 1, 1)}
    for name, shape in expected_shapes.items():
        assert workspace.FetchBlob(name).shape == shape, name
    np.testing.assert_allclose(blob("pool10"), blob("conv10").mean(axis=(2, 3), keepdims=True), rtol=1e-5)
    got = workspace.FetchBlob("softmax")
    assert got.shape == (1, 1000, 1, 1) and np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(got, softmax(blob("pool10")), rtol=1e-4, atol=1e-9)


def test_resnet50_has_the_resnet50_layout():
    predict_net = netfile.load_net(MODELS / "resnet50" / "predict_net.pb")
    counts = Counter(op.type for op in predict_net.op)
    # 1 stem + 16 blocks x 3 + 4 projections
    assert counts["Conv"] == counts["SpatialBN"] == 53
    assert counts["Sum"] == 16 and counts["FC"] == 1 and counts["MaxPool"] == 1
    assert all(len(op.input) == 2 for op in predict_net.op if op.type == "Conv")  # no_bias
    assert all(len(op.output) == 1 for op in predict_net.op if op.type == "SpatialBN")  # is_test
