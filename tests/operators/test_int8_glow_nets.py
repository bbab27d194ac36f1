"""Glow's Caffe2 test nets of the int8 and fused families (../shared/glow_caffe2_nets):
each init + predict pair validates and runs, with inputs fed as Glow's tests feed
them, and gives what the float ops give within one output step."""
import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.executor import Workspace
from pycaffe2.qtensor import Int8Tensor
from tests.conftest import SHARED

NETS = SHARED / "glow_caffe2_nets"
pytestmark = pytest.mark.skipif(not NETS.is_dir(), reason=f"needs {NETS}")


def run_pair(predict, init, feeds, init_feeds=()):
    workspace = Workspace("glow")
    if init is not None:
        workspace.RunNetOnce(netfile.load_net(NETS / init))
    for name, value in [*init_feeds, *feeds.items()]:
        workspace.FeedBlob(name, value)
    net = netfile.load_net(NETS / predict)
    workspace.RunNetOnce(net)
    return workspace, [workspace.FetchBlob(name) for name in net.external_output]


def codes(shape, scale, zero_point):
    return Int8Tensor((np.arange(np.prod(shape)) % 7 + 125).astype(np.uint8).reshape(shape), scale, zero_point)


def close_within_step(y: Int8Tensor, expected):
    low, high = -y.zero_point * y.scale, (255 - y.zero_point) * y.scale
    assert np.abs(y.dequantize() - np.clip(expected, low, high)).max() <= y.scale * 1.0001


PREDICT_NETS = ["int8convrelu_pred_net.pbtxt", "int8fc_3d_second_axis_predict.pbtxt",
                "int8fc_4d_first_axis_predict_net.pbtxt", "int8sumrelu_pred_net.pbtxt",
                "int8sumrelu_large_range_pred_net.pbtxt", "int8sumrelu_tiny_scale_pred_net.pbtxt",
                "conv_group_quantized_pred_net.pbtxt", "dynamic_quantized_fc_predict_net.pbtxt",
                "convrelu_pred_net.pbtxt", "fbfcpacked_3d_second_axis_predict.pbtxt",
                "fbfcpacked_4d_first_axis_predict_net.pbtxt"]


@pytest.mark.parametrize("name", PREDICT_NETS)
def test_validates(name, capsys):
    assert main(["validate", str(NETS / name)]) == 0


def test_int8_conv_relu():
    x = codes((1, 1, 3, 3), 0.5, 128)
    workspace, (y,) = run_pair("int8convrelu_pred_net.pbtxt", "int8convrelu_init_net.pbtxt",
                               {"gpu_0/data_0": x})
    w, b = workspace.FetchBlob("conv_w"), workspace.FetchBlob("conv_b")
    assert y.shape == (1, 1, 4, 4) and (y.scale, y.zero_point) == (1.5, 7)
    xp = np.pad(x.dequantize()[0, 0], 1)
    conv = np.array([[np.sum(xp[i:i + 2, j:j + 2] * w.dequantize()[0, 0]) for j in range(4)] for i in range(4)])
    close_within_step(y, np.maximum(conv + b.data[0] * 0.5 * 2.0, 0)[None, None])


@pytest.mark.parametrize("predict,init,shape", [
    ("int8fc_3d_second_axis_predict.pbtxt", "int8fc_3d_second_axis_init.pbtxt", (2, 2, 3)),
    ("int8fc_4d_first_axis_predict_net.pbtxt", "int8fc_4d_first_axis_init_net.pbtxt", (1, 5, 1, 1)),
])
def test_int8_fc(predict, init, shape):
    x = Int8Tensor(np.arange(np.prod(shape), dtype=np.uint8).reshape(shape), 1.0, 0)
    workspace, (y,) = run_pair(predict, init, {"input": x})
    w, b = workspace.FetchBlob("weights").data.astype(np.float32), workspace.FetchBlob("bias").data
    axis = len(shape) - 1 if len(shape) == 3 else 1
    k = w.shape[1]
    expected = x.data.reshape(-1, k).astype(np.float32) @ w.T + b
    np.testing.assert_array_equal(y, expected.reshape(shape[:axis] + (w.shape[0],)))


@pytest.mark.parametrize("predict,init,x", [
    ("int8sumrelu_pred_net.pbtxt", "int8sumrelu_init_net.pbtxt", codes((4, 2), 1.0, 0)),
    ("int8sumrelu_tiny_scale_pred_net.pbtxt", "int8sumrelu_tiny_scale_init_net.pbtxt",
     codes((4, 2), 1e-10, 0)),
    ("int8sumrelu_large_range_pred_net.pbtxt", "int8sumrelu_large_range_init_net.pbtxt",
     np.linspace(-200, 200, 8, dtype=np.float32).reshape(4, 2)),
])
def test_int8_sum_relu(predict, init, x):
    workspace, (y,) = run_pair(predict, init, {"gpu_0/data_0": x})
    xq = workspace.FetchBlob("qout") if workspace.HasBlob("qout") else x
    close_within_step(y, np.maximum(xq.dequantize() + workspace.FetchBlob("rhs").dequantize(), 0))


def test_conv_group_quantized():
    x = codes((1, 2, 3, 4), 1.0, 0)
    workspace, (y,) = run_pair("conv_group_quantized_pred_net.pbtxt", "conv_group_quantized_init_net.pbtxt",
                               {"input": x})
    assert y.shape == (1, 4, 5, 4)  # NHWC, 1x1 kernel, pad 1
    w = workspace.FetchBlob("conv_w").dequantize()[:, 0, 0, :]  # [4, 2]
    xp = np.pad(x.dequantize()[0], ((1, 1), (1, 1), (0, 0)))
    expected = np.concatenate([xp[..., :2] @ w[:2].T, xp[..., 2:] @ w[2:].T], axis=-1) + 7.0
    close_within_step(y, expected[None])


def test_dynamic_quantized_fc():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    workspace, (y,) = run_pair("dynamic_quantized_fc_predict_net.pbtxt", "dynamic_quantized_fc_init.pbtxt",
                               {"input": x})
    w = workspace.FetchBlob("weights").data.astype(np.float32)
    np.testing.assert_allclose(y, x @ w.T + np.arange(4), atol=0.05 * 11)


def test_conv_relu():
    x = np.linspace(-1, 1, 9, dtype=np.float32).reshape(1, 1, 3, 3)
    _, (y,) = run_pair("convrelu_pred_net.pbtxt", "convrelu_init_net.pbtxt", {"gpu_0/data_0": x})
    assert y.shape == (1, 1, 4, 4) and y.min() >= 0


@pytest.mark.parametrize("predict,init,shape", [
    ("fbfcpacked_3d_second_axis_predict.pbtxt", "fbfcpacked_3d_second_axis_init.pbtxt", (2, 3, 4)),
    ("fbfcpacked_4d_first_axis_predict_net.pbtxt", "fbfcpacked_4d_first_axis_init_net.pbtxt", (2, 5, 1, 1)),
])
def test_fb_fc_packed(predict, init, shape):
    x = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    workspace, (y,) = run_pair(predict, init, {"input": x})
    w = workspace.FetchBlob("weights")
    assert w.dtype == np.float16  # GivenTensorFp16Fill's
    w = w.astype(np.float32)
    b = workspace.FetchBlob("bias")
    axis = 2 if len(shape) == 3 else 1
    expected = (x.reshape(-1, w.shape[1]) @ w.T + b).reshape(shape[:axis] + (w.shape[0],))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_cli_runs_an_int8_net_and_saves_its_codes(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.linspace(0, 700, 8, dtype=np.float32).reshape(4, 2))
    base = [str(NETS / "int8sumrelu_large_range_pred_net.pbtxt"), "--init",
            str(NETS / "int8sumrelu_large_range_init_net.pbtxt"), "--feed", f"gpu_0/data_0={tmp_path / 'x.npy'}"]
    assert main(["run", *base]) == 0
    assert "(Int8: scale 575, zero_point 120)" in capsys.readouterr().out
    assert main(["run", *base, "--out", str(tmp_path / "out.npz")]) == 0
    saved = np.load(tmp_path / "out.npz")
    assert saved["out"].dtype == np.uint8 and saved["out_scale"] == 575 and saved["out_zero_point"] == 120
