"""`pycaffe2 run` and run.model.run_model: real model pairs, made-up weights, clear errors."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.executor import Workspace
from pycaffe2.run.model import RunError, run_model

NETS = Path(__file__).resolve().parents[2] / "nets"


def _digit() -> np.ndarray:
    """A '7' drawn on a 28x28 canvas, as LeNet expects it: [1, 1, 28, 28]."""
    image = np.zeros((28, 28), np.float32)
    image[5:8, 6:22] = 1.0
    for row in range(8, 24):
        col = 21 - (row - 8) // 2
        image[row, col - 1:col + 2] = 1.0
    return image[None, None]


def _workspace_run(folder: Path, feeds: dict, fetch: list) -> dict:
    """The model run by hand through the Workspace API, as the README shows."""
    workspace = Workspace("reference")
    workspace.RunNetOnce(netfile.load_net(folder / "init_net.pb"))
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    predict = netfile.load_net(folder / "predict_net.pb")
    predict.name = predict.name or "predict"
    workspace.CreateNet(predict)
    workspace.RunNet(predict.name)
    return {name: workspace.FetchBlob(name) for name in fetch}


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_run_model_matches_numpy_on_the_mlp_model_file():
    x = np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(np.float32)
    names = ["fc1_w", "fc1_b", "fc2_w", "fc2_b", "prob"]
    out = run_model(NETS / "mlp.yaml", feeds={"data": x}, fetch=names, seed=5)
    w1, b1, w2, b2, prob = (out[name] for name in names)
    hidden = np.maximum(x.reshape(4, -1) @ w1.T + b1, 0)
    np.testing.assert_allclose(prob, _softmax(hidden @ w2.T + b2), rtol=1e-5, atol=1e-6)
    again = run_model(NETS / "mlp.yaml", feeds={"data": x}, seed=5)
    np.testing.assert_array_equal(again["prob"], prob)  # default fetch: external_output


def test_lenet_pair_from_the_command_line(caffe2_models, tmp_path, capsys):
    folder = caffe2_models / "hungmingwu_pytorch_export"
    np.save(tmp_path / "digit.npy", _digit())
    out = tmp_path / "results.npz"
    assert main(["run", str(folder), "--feed", f"1={tmp_path / 'digit.npy'}", "--out", str(out)]) == 0
    assert "saved 1 blob(s)" in capsys.readouterr().err
    with np.load(out) as results:
        assert results.files == ["26"]
        logits = results["26"]
    assert logits.shape == (1, 10) and logits.dtype == np.float32
    expected = _workspace_run(folder, {"1": _digit()}, ["26"])["26"]
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)
    # without --out: a summary with the ten values
    assert main(["run", str(folder), "--feed", f"1={tmp_path / 'digit.npy'}", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["run", str(folder), "--feed", f"1={tmp_path / 'digit.npy'}"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("26: float32 [1, 10]  min ") and f"{logits.max():.6g}" in summary


def test_lenet_feed_from_an_npz_member(caffe2_models, tmp_path):
    folder = caffe2_models / "hungmingwu_pytorch_export"
    np.savez(tmp_path / "inputs.npz", blank=np.zeros((1, 1, 28, 28), np.float32), seven=_digit())
    out = tmp_path / "r.npz"
    assert main(["run", str(folder), "--feed", f"1={tmp_path / 'inputs.npz'}:seven",
                 "--fetch", "26", "--fetch", "19", "--out", str(out), "--quiet"]) == 0
    with np.load(out) as results:
        assert results["19"].shape == (1, 50, 4, 4)
        np.testing.assert_allclose(results["26"], run_model(folder, feeds={"1": _digit()})["26"])


@pytest.mark.slow
def test_super_resolution_pair_runs_on_the_input_its_init_net_holds(caffe2_models, tmp_path):
    folder = caffe2_models / "hmc_random_test"
    out = run_model(folder, fetch=["24", "27"])
    assert out["27"].shape == (1, 1, 672, 672)
    # the last three ops are a pixel shuffle of the 9-channel conv output
    shuffled = out["24"].reshape(1, 1, 3, 3, 224, 224).transpose(0, 1, 4, 2, 5, 3)
    np.testing.assert_array_equal(out["27"], shuffled.reshape(1, 1, 672, 672))
    init_input = _workspace_run(folder, {}, ["1", "27"])
    np.testing.assert_allclose(out["27"], init_input["27"], rtol=1e-6, atol=1e-6)
    # a feed replaces the input the init net made
    image = np.random.default_rng(2).uniform(0, 1, (1, 1, 224, 224)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    assert main(["run", str(folder), "--feed", f"1={tmp_path / 'image.npy'}",
                 "--out", str(tmp_path / "sr.npz"), "--quiet"]) == 0
    with np.load(tmp_path / "sr.npz") as results:
        assert set(results.files) == {"27", "OC2_DUMMY_0", "OC2_DUMMY_1"}
        assert not np.allclose(results["27"], out["27"])
        np.testing.assert_allclose(results["27"], _workspace_run(folder, {"1": image}, ["27"])["27"],
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_squeezenet_predict_only_with_made_up_weights(caffe2_models, tmp_path, capsys):
    net = caffe2_models / "squeezenet_predict_only" / "squeeze_predict_net.pb"
    data = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    out = run_model(net, feeds={"data": data}, random_init=True, seed=7,
                    out_channels={"conv10_w": 1000}, fetch=["softmaxout", "fire2/squeeze1x1"])
    probs = out["softmaxout"]
    assert probs.shape == (2, 1000, 1, 1) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert out["fire2/squeeze1x1"].shape == (2, 16, 55, 55)  # 16: the default channel count
    same = run_model(net, feeds={"data": data}, random_init=True, seed=7,
                     out_channels={"conv10_w": 1000})
    np.testing.assert_array_equal(same["softmaxout"], probs)
    # from the command line; data is not a weight, so leaving it out is refused by name
    np.save(tmp_path / "data.npy", data[:1])
    assert main(["run", str(net), "--random-init", "--feed", f"data={tmp_path / 'data.npy'}",
                 "--out-channels", "conv10_w=10", "--seed", "7"]) == 0
    assert capsys.readouterr().out.startswith("softmaxout: float32 [1, 10, 1, 1]")
    assert main(["run", str(net), "--random-init"]) == 2
    assert "input(s) 'data' of net" in capsys.readouterr().err
    assert main(["run", str(net), "--feed", f"data={tmp_path / 'data.npy'}"]) == 2
    assert "reads 52 input(s) nothing provides: 'conv1_w'" in capsys.readouterr().err


def test_missing_op_types_are_listed_at_once(tmp_path, capsys):
    (tmp_path / "unknown.yaml").write_text(
        "name: unknown\nexternal_input: [X]\nexternal_output: [Y]\nop:\n"
        "  - {type: Foo, input: [X], output: [A]}\n  - {type: Relu, input: [A], output: [B]}\n"
        "  - {type: Foo, input: [B], output: [C]}\n  - {type: Bar, input: [C], output: [D]}\n"
        "  - {type: Foo, input: [D], output: [Y]}\n")
    np.save(tmp_path / "x.npy", np.ones(3, np.float32))
    assert main(["run", str(tmp_path / "unknown.yaml"), "--feed", f"X={tmp_path / 'x.npy'}"]) == 2
    err = capsys.readouterr().err
    assert err == (f"pycaffe2 run: {tmp_path / 'unknown.yaml'}: model uses 2 op types pycaffe2 "
                   "does not have: Foo (3 ops), Bar (1 op)\n")


@pytest.mark.parametrize("spec, message", [
    ("data", "bad --feed 'data': expected NAME=PATH.npy or NAME=PATH.npz:member"),
    ("data=x.txt", "bad --feed 'data=x.txt': x.txt is not a .npy or .npz file"),
    ("data={tmp}/absent.npy", "--feed data: {tmp}/absent.npy: cannot read: No such file"),
    ("data={tmp}/junk.npy", "--feed data: {tmp}/junk.npy: not a readable .npy file"),
    ("data={tmp}/pair.npz", "--feed data: {tmp}/pair.npz holds 2 arrays; pick one"),
    ("data={tmp}/pair.npz:c", "--feed data: {tmp}/pair.npz has no array 'c' (members: a, b)"),
    ("dta={tmp}/x.npy", ("feed 'dta': no op of net 'mlp' reads it before writing it "
                         "(did you mean 'data'?)")),
])
def test_bad_feeds_give_one_line(tmp_path, capsys, spec, message):
    (tmp_path / "junk.npy").write_text("not an array")
    np.save(tmp_path / "x.npy", np.ones((1, 784), np.float32))
    np.savez(tmp_path / "pair.npz", a=np.ones(2), b=np.zeros(2))
    assert main(["run", str(NETS / "mlp.yaml"), "--feed", spec.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pycaffe2 run: " + message.format(tmp=tmp_path)) and err.count("\n") == 1


def test_other_errors_give_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((2, 783), np.float32))
    assert main(["run", str(NETS / "mlp.yaml"), "--feed", f"data={tmp_path / 'x.npy'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pycaffe2 run: {NETS / 'mlp.yaml'}: Error running net mlp: op 0 (FC) failed")
    assert err.count("\n") == 1 and "Traceback" not in err
    for argv, message in [
        (["--device", "cuda"], "device cuda: CUDA is not available here: "),
        (["--iters", "0"], "iters must be at least 1, got 0"),
        (["--fetch", "probe"], ("cannot fetch 'probe': no such blob after running net 'mlp' "
                                "(did you mean 'prob'?)")),
        (["--out-channels", "fc1_w=8"], "out_channels (--out-channels) only applies with"),
    ]:
        np.save(tmp_path / "x.npy", np.ones((2, 784), np.float32))
        assert main(["run", str(NETS / "mlp.yaml"), "--feed", f"data={tmp_path / 'x.npy'}",
                     *argv]) == 2
        assert capsys.readouterr().err.startswith(f"pycaffe2 run: {message}")
    assert main(["run", str(tmp_path / "absent.pb")]) == 2
    assert capsys.readouterr().err == f"pycaffe2 run: {tmp_path / 'absent.pb'}: cannot read: " \
                                      "No such file or directory\n"
    with pytest.raises(RunError, match="nothing provides: 'data'"):
        run_model(NETS / "mlp.yaml")


def _light_lenet_pair(real: Path, folder: Path) -> Path:
    """LeNet's real predict_net.pb beside an init net that fills the same blobs with
    XavierFill of the same shapes (the real 430k weights make YAML slow to test with)."""
    init = netfile.load_net(real / "init_net.pb")
    for op in init.op:
        shape = [arg for arg in op.arg if arg.name == "shape"]
        op.type = "XavierFill"
        del op.arg[:]
        op.arg.extend(shape)
    folder.mkdir()
    netfile.save_net(init, folder / "init_net.pb")
    (folder / "predict_net.pb").write_bytes((real / "predict_net.pb").read_bytes())
    return folder


def test_convert_model_pair_folder_to_yaml_and_back(caffe2_models, tmp_path):
    folder = _light_lenet_pair(caffe2_models / "hungmingwu_pytorch_export", tmp_path / "pair")
    assert main(["convert", str(folder), str(tmp_path / "lenet.yaml")]) == 0
    model = netfile.load_model(tmp_path / "lenet.yaml")
    assert len(model.init_net.op) == 8 and len(model.predict_net.op) == 11
    assert main(["convert", str(tmp_path / "lenet.yaml"), str(tmp_path / "back")]) == 0
    for name in ("init_net.pb", "predict_net.pb"):
        assert (tmp_path / "back" / name).read_bytes() == (folder / name).read_bytes()
    digit = {"1": _digit()}
    from_yaml = run_model(tmp_path / "lenet.yaml", feeds=digit, seed=4)["26"]
    assert from_yaml.shape == (1, 10)
    np.testing.assert_array_equal(from_yaml, run_model(folder, feeds=digit, seed=4)["26"])


def test_convert_refuses_to_drop_what_a_folder_cannot_hold(tmp_path, capsys):
    assert main(["convert", str(NETS / "mlp.yaml"), str(tmp_path / "mlp")]) == 2
    assert "write .yaml or .json to keep the plan and input_shapes" in capsys.readouterr().err
    assert main(["convert", str(NETS / "hard_sigmoid.yaml"), str(tmp_path / "toy")]) == 0
    assert netfile.load_model(tmp_path / "toy").predict_net == netfile.load_net(NETS / "hard_sigmoid.yaml")


def test_run_optimize_gives_the_unoptimized_results(tmp_path):
    """`pycaffe2 run --optimize` on the bundled SqueezeNet (Conv + Relu fused, Dropout dropped,
    ops in place) and LeNet: the same outputs within float tolerance, the files unchanged."""
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for model, feed in (("squeezenet1_1", x), ("lenet", _digit())):
        folder = NETS / "models" / model
        before = {path: path.read_bytes() for path in folder.iterdir()}
        np.save(tmp_path / "in.npy", feed)
        outs = []
        for extra in ([], ["--optimize"]):
            out = tmp_path / f"{model}{len(extra)}.npz"
            assert main(["run", str(folder), "--feed", f"data={tmp_path / 'in.npy'}", "--out", str(out),
                         "--quiet", *extra]) == 0
            with np.load(out) as results:
                outs.append(dict(results))
        assert outs[0].keys() == outs[1].keys()
        for name in outs[0]:
            np.testing.assert_allclose(outs[1][name], outs[0][name], rtol=1e-4, atol=1e-5)
        assert {path: path.read_bytes() for path in folder.iterdir()} == before
