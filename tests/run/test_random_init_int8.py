"""--random-init for quantized nets, and feeding them: Int8Conv, Int8ConvRelu,
Int8ConvTranspose and Int8FC make up uint8 weights and int32 biases from their schema's
`param: {kind, shape, dtype}`; every input any schema flags as a parameter has a rule;
Glow's int8 predict nets run from the command line with no init net; a float feed an
Int8 op reads is quantized over its range, an .npz as --out writes an Int8 blob is fed
back losslessly, and integer codes without their quantization are refused."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.cli import main
from pycaffe2.errors import RunError
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.run import run_model
from pycaffe2.run.random_init import can_make_up, made_up_weights
from pycaffe2.schema.catalogue import primary_schemas
from tests.conftest import SHARED

NETS = SHARED / "glow_caffe2_nets"
# Optimizer updates flag the parameter they update (in place, as Caffe2 allows or enforces):
# a training net's init net makes it, its shape is its gradient's, and random init, which
# fills predict nets, has nothing to derive it from.
def updated_in_place(schema, position: int) -> bool:
    return any(i == position for i, _ in schema.inplace_enforced | schema.inplace_allowed)


X = Int8Tensor((np.arange(2 * 4 * 5 * 5) % 11 + 120).astype(np.uint8).reshape(2, 4, 5, 5), 0.1, 125)
X_NHWC = Int8Tensor(X.data.transpose(0, 2, 3, 1).copy(), 0.1, 125)


def test_every_flagged_parameter_has_a_rule():
    missing = sorted({schema.type for schema in primary_schemas()
                      for i, spec in enumerate(schema.inputs)
                      if spec.param is not None and not can_make_up(schema.type, i)
                      and not updated_in_place(schema, i)})
    assert missing == []


@pytest.mark.parametrize("op_type, x, args, shapes", [
    ("Int8Conv", X, {"kernel": 3, "pad": 1}, {"w": (6, 4, 3, 3), "b": (6,)}),
    ("Int8Conv", X_NHWC, {"kernel": 3, "order": "NHWC", "group": 2}, {"w": (6, 3, 3, 2), "b": (6,)}),
    ("Int8ConvRelu", X, {"kernel": 2, "stride": 2}, {"w": (6, 4, 2, 2), "b": (6,)}),
    ("Int8ConvTranspose", X_NHWC, {"kernel": 2, "stride": 2, "order": "NHWC"}, {"w": (4, 2, 2, 6), "b": (6,)}),
    ("Int8ConvTranspose", X, {"kernel": 3}, {"w": (4, 6, 3, 3), "b": (6,)}),
    ("Int8FC", X, {"axis": 2}, {"w": (6, 25), "b": (6,)}),
])
def test_int8_weights_are_made_up(op_type, x, args, shapes):
    net = core.Net("q")
    getattr(net, op_type)(["x", "w", "b"], ["y"], Y_scale=0.5, Y_zero_point=10, **args)
    made = made_up_weights(net.Proto(), {"x": x}, default=6)  # runs the net once
    assert {name: value.shape for name, value in made.items()} == shapes
    w, b = made["w"], made["b"]
    assert isinstance(w, Int8Tensor) and w.data.dtype == np.uint8 and w.zero_point == 128 and w.scale > 0
    assert isinstance(b, Int8Tensor) and b.data.dtype == np.int32 and not b.data.any()
    assert can_make_up(op_type, 1) and can_make_up(op_type, 2)


GLOW = [("int8convrelu_pred_net.pbtxt", "gpu_0/data_0", (1, 1, 3, 3), True),
        ("conv_group_quantized_pred_net.pbtxt", "input", (1, 3, 4, 2), True),
        ("int8fc_4d_first_axis_predict_net.pbtxt", "input", (2, 5, 1, 1), False),
        ("int8fc_3d_second_axis_predict.pbtxt", "input", (2, 2, 3), False),
        ("dynamic_quantized_fc_predict_net.pbtxt", "input", (2, 3), False)]


@pytest.mark.skipif(not NETS.is_dir(), reason=f"needs {NETS}")
@pytest.mark.parametrize("name, blob, shape, quantized", GLOW)
def test_glow_int8_nets_run_without_their_init_net(name, blob, shape, quantized, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape))
    assert main(["run", str(NETS / name), "--random-init", "--feed", f"{blob}={x}"]) == 0
    assert ("note: fed " in capsys.readouterr().err) == quantized


def conv_net():
    net = core.Net("q")
    net.Int8ConvRelu(["x", "w", "b"], ["y"], kernel=1, Y_scale=0.05, Y_zero_point=0)
    proto = net.Proto()
    proto.external_output.append("y")
    return proto


def test_a_float_feed_is_quantized_over_its_range():
    x = np.array([[[[-0.5, 0.25], [1.0, 2.0]]]], dtype=np.float32)
    from pycaffe2.run import ModelRunner
    runner = ModelRunner(conv_net(), feeds={"x": x}, random_init=True)
    fed = runner.workspace.FetchBlob("x")
    scale = (2.0 - -0.5) / 255
    zero_point = round(0.5 / scale)
    assert fed.zero_point == runner.quantized_feeds["x"].zero_point == zero_point
    assert fed.scale == pytest.approx(scale)
    np.testing.assert_array_equal(fed.data, np.clip(np.rint(x / np.float32(scale)) + zero_point, 0, 255))


@pytest.mark.parametrize("x, message", [
    (np.ones((1, 1, 2, 2), np.uint8), "does not say its scale and zero point"),
    (np.full((1, 1, 2, 2), np.nan, np.float32), "NaN or infinite"),
])
def test_feeds_an_int8_op_cannot_take(x, message):
    with pytest.raises(RunError, match=message):
        run_model(conv_net(), feeds={"x": x}, random_init=True)


def test_an_int8_feed_is_taken_as_is():
    x = Int8Tensor(np.full((1, 2, 2, 2), 130, np.uint8), 0.5, 128)
    y = run_model(conv_net(), feeds={"x": x}, random_init=True)["y"]
    assert isinstance(y, Int8Tensor) and y.shape == (1, 16, 2, 2)


def test_out_then_feed_round_trips_an_int8_blob(tmp_path, capsys):
    net_file, x_file = tmp_path / "net.pbtxt", tmp_path / "x.npy"
    net_file.write_text(str(conv_net()))
    np.save(x_file, np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 2, 2, 2))
    out = tmp_path / "out.npz"
    assert main(["run", str(net_file), "--random-init", "--feed", f"x={x_file}", "--fetch", "x",
                 "--out", str(out), "--quiet"]) == 0
    saved = np.load(out)
    assert sorted(saved.files) == ["x", "x_scale", "x_zero_point"] and saved["x"].dtype == np.uint8
    capsys.readouterr()
    for spec in (f"x={out}", f"x={out}:x"):  # the one Int8 blob picked out, or named
        assert main(["run", str(net_file), "--random-init", "--feed", spec]) == 0
        assert "note: fed" not in capsys.readouterr().err  # fed as the Int8 blob it was


def test_out_refuses_a_name_clash(tmp_path, capsys):
    net = core.Net("q")
    net.Int8Quantize(["x"], ["y"], Y_scale=0.1, Y_zero_point=5)
    net.Copy(["x"], ["y_scale"])
    net_file, x_file, out = tmp_path / "net.pbtxt", tmp_path / "x.npy", tmp_path / "out.npz"
    net_file.write_text(str(net.Proto()))
    np.save(x_file, np.ones(3, np.float32))
    code = main(["run", str(net_file), "--feed", f"x={x_file}", "--fetch", "y", "--fetch", "y_scale",
                 "--out", str(out)])
    assert code != 0 and "fetch it into another file" in capsys.readouterr().err and not out.exists()


def test_an_npz_with_a_bad_quantization_is_refused(tmp_path, capsys):
    net_file, bad = tmp_path / "net.pbtxt", tmp_path / "bad.npz"
    net_file.write_text(str(conv_net()))
    np.savez(bad, x=np.ones((1, 1, 2, 2), np.uint8), x_scale=np.float32(-1), x_zero_point=np.int32(0))
    assert main(["run", str(net_file), "--random-init", "--feed", f"x={bad}"]) != 0
    assert "finite and positive" in capsys.readouterr().err
