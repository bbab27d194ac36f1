"""`pycaffe2 optimize IN OUT` (pycaffe2.run.optimize): folders, files, formats, refusals."""
import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.core import CreateOperator
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from tests.conftest import REPO

RNG = np.random.default_rng(3)


def fill(name, array):
    return CreateOperator("GivenTensorFill", [], [name], shape=list(array.shape), values=array.ravel().tolist())


def small_model():
    """Conv -> SpatialBN -> Relu -> Dropout -> Softmax, weights in GivenTensorFills."""
    params = {"W": RNG.standard_normal((4, 3, 3, 3)), "s": RNG.standard_normal(4), "b": RNG.standard_normal(4),
              "m": RNG.standard_normal(4), "v": RNG.uniform(0.5, 2, 4)}
    init = caffe2_pb2.NetDef(name="init", op=[fill(k, v.astype(np.float32)) for k, v in params.items()],
                             external_output=list(params))
    predict = caffe2_pb2.NetDef(name="small", external_input=["data", *params], external_output=["prob"], op=[
        CreateOperator("Conv", ["data", "W"], ["conv"], kernel=3, pad=1),
        CreateOperator("SpatialBN", ["conv", "s", "b", "m", "v"], ["bn"], is_test=1),
        CreateOperator("Relu", ["bn"], ["relu"]),
        CreateOperator("Dropout", ["relu"], ["drop"], is_test=1),
        CreateOperator("Softmax", ["drop"], ["prob"])])
    return predict, init


def outputs(predict, init, data):
    ws = Workspace()
    ws.RunNetOnce(init)
    ws.FeedBlob("data", data)
    ws.RunNetOnce(predict)
    return ws.FetchBlob(predict.external_output[0])


@pytest.fixture
def folder(tmp_path):
    predict, init = small_model()
    path = tmp_path / "model"
    netfile.save_model(netfile.Model(predict, init), path)
    return path


def check_same(folder, predict, init):
    data = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    model = netfile.load_model(folder)
    np.testing.assert_allclose(outputs(predict, init, data), outputs(model.predict_net, model.init_net, data),
                               rtol=1e-4, atol=1e-6)


def test_folder_to_folder(folder, tmp_path, capsys):
    assert main(["optimize", str(folder), str(tmp_path / "out")]) == 0
    assert "folded 1 SpatialBN, dropped 1 Dropout, 1 Relu in place" in capsys.readouterr().out
    new = netfile.load_model(tmp_path / "out")
    assert [op.type for op in new.predict_net.op] == ["Conv", "Relu", "Softmax"]
    check_same(folder, new.predict_net, new.init_net)
    assert {"s", "m", "v", "W"}.isdisjoint(new.init_net.external_output)


@pytest.mark.parametrize("out, init_out", [("p.pbtxt", "i.json"), ("p.yaml", "i.pb"), ("model.yaml", None),
                                           ("model.json", None)])
def test_files_in_any_format(folder, tmp_path, out, init_out):
    args = ["optimize", str(folder / "predict_net.pb"), str(tmp_path / out), "--init", str(folder / "init_net.pb")]
    assert main(args + (["--init-out", str(tmp_path / init_out)] if init_out else [])) == 0
    if init_out:
        predict, init = netfile.load_net(tmp_path / out), netfile.load_net(tmp_path / init_out)
    else:
        model = netfile.load_model(tmp_path / out)
        predict, init = model.predict_net, model.init_net
    original = netfile.load_model(folder)
    check_same(folder, predict, init)
    assert len(predict.op) < len(original.predict_net.op)


def test_keep(folder, tmp_path, capsys):
    assert main(["optimize", str(folder), str(tmp_path / "out"), "--keep", "conv", "--keep", "relu"]) == 0
    assert "dropped 1 Dropout" in capsys.readouterr().out
    types = [op.type for op in netfile.load_model(tmp_path / "out").predict_net.op]
    assert types == ["Conv", "SpatialBN", "Relu", "Softmax"]


def test_conv_relu(folder, tmp_path, capsys):
    assert main(["optimize", str(folder), str(tmp_path / "out.yaml"), "--conv-relu"]) == 0
    assert "folded 1 SpatialBN, dropped 1 Dropout, 1 Conv + Relu fused" in capsys.readouterr().out
    model = netfile.load_model(tmp_path / "out.yaml")
    assert [op.type for op in model.predict_net.op] == ["ConvRelu", "Softmax"]
    check_same(folder, model.predict_net, model.init_net)


def test_random_fills_are_run(tmp_path, capsys):
    assert main(["optimize", str(REPO / "nets" / "models" / "squeezenet1_1"), str(tmp_path / "sq")]) == 0
    assert "dropped 1 Dropout" in capsys.readouterr().out
    model = netfile.load_model(tmp_path / "sq")
    assert "Dropout" not in [op.type for op in model.predict_net.op]
    assert "XavierFill" in [op.type for op in model.init_net.op]  # nothing folded: the fills stay as they were


@pytest.mark.parametrize("target", ["same-folder", "init-out-is-init", "out-is-predict"])
def test_refuses_to_overwrite_the_input(folder, tmp_path, capsys, target):
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    if target == "same-folder":
        args = ["optimize", str(folder), str(folder)]
    elif target == "init-out-is-init":
        args = ["optimize", str(folder), str(tmp_path / "p.pb"), "--init-out", str(folder / "init_net.pb")]
    else:
        args = ["optimize", str(folder / "predict_net.pb"), str(folder / "predict_net.pb"),
                "--init", str(folder / "init_net.pb"), "--init-out", str(tmp_path / "i.pb")]
    assert main(args) == 2
    assert "is an input of this optimize" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (tmp_path / "p.pb").exists() and not (tmp_path / "i.pb").exists()


def test_bad_input(folder, tmp_path, capsys):
    assert main(["optimize", str(tmp_path / "missing.pb"), str(tmp_path / "o.pb")]) == 2
    assert "missing.pb" in capsys.readouterr().err
    predict, init = small_model()
    predict.op[1].input.pop()  # SpatialBN with four inputs
    netfile.save_net(predict, tmp_path / "bad.pbtxt")
    netfile.save_net(init, tmp_path / "init.pb")
    assert main(["optimize", str(tmp_path / "bad.pbtxt"), str(tmp_path / "o.yaml"),
                 "--init", str(tmp_path / "init.pb")]) == 2
    err = capsys.readouterr().err
    assert "bad.pbtxt" in err and "op 1 (SpatialBN)" in err
    assert not (tmp_path / "o.yaml").exists()


@pytest.mark.parametrize("out, init_out, says", [
    ("o.pb", None, "needs a folder, a .yaml/.json model file, or --init-out"),
    ("o.txt", None, "unknown net file extension"),
    ("o.pb", "sub", "")])
def test_bad_outputs_write_nothing(folder, tmp_path, capsys, out, init_out, says):
    if init_out == "sub":  # the init net's folder cannot be made: a file is in the way
        (tmp_path / "blocker").write_text("")
        init_out = str(tmp_path / "blocker" / "i.pb")
    args = ["optimize", str(folder), str(tmp_path / out)] + (["--init-out", init_out] if init_out else [])
    assert main(args) == 2
    assert says in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model"] + (["blocker"] if init_out else []))
