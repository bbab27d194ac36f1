"""`validate --input-shape`: shapes followed through a .pb pair, so a wrong weight
shape in an init net is found; and workspace.InferShapesAndTypes, Caffe2's name."""
import numpy as np
import pytest

from pycaffe2 import core, netfile, workspace
from pycaffe2.cli import main
from pycaffe2.proto import caffe2_pb2
from pycaffe2.validate import check_file, parse_input_shape


def _fill(name, shape):
    values = np.zeros(shape, np.float32).ravel().tolist()
    return core.CreateOperator("GivenTensorFill", [], [name], shape=list(shape), values=values)


def _pair(folder, weight_shape):
    """A model folder: init_net.pb fills W (weight_shape) and b; predict_net.pb is FC(X, W, b)."""
    init = caffe2_pb2.NetDef(name="init")
    init.op.extend([_fill("W", weight_shape), _fill("b", (weight_shape[0],))])
    init.external_output.extend(["W", "b"])
    predict = caffe2_pb2.NetDef(name="predict")
    predict.op.extend([core.CreateOperator("FC", ["X", "W", "b"], ["Y"])])
    predict.external_input.extend(["X", "W", "b"])
    predict.external_output.append("Y")
    folder.mkdir()
    netfile.save_net(init, folder / "init_net.pb")
    netfile.save_net(predict, folder / "predict_net.pb")
    return folder


def test_wrong_weight_shape_in_init_net_is_found_with_input_shape(tmp_path, capsys):
    model = _pair(tmp_path / "model", (3, 5))  # FC over X [2, 4] needs W [N, 4]
    assert main(["validate", str(model), "--input-shape", "X=2,4"]) == 1
    out = capsys.readouterr().out
    assert "predict_net.pb" in out and "FC" in out and "[3, 5]" in out and "[2, 4]" in out


def test_right_weight_shape_passes_with_input_shape(tmp_path):
    model = _pair(tmp_path / "model", (3, 4))
    assert main(["validate", str(model), "--input-shape", "X=2,4"]) == 0
    assert check_file(model, input_shapes={"X": ((2, 4), "float32")}) == []


def test_input_shape_overrides_the_model_files_own(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "input_shapes: {X: [2, 4]}\n"
        "predict_net:\n  external_input: [X]\n  op:\n"
        "    - {type: Reshape, input: [X], output: [Y, old], arg: {shape: [8]}}\n")
    assert check_file(tmp_path / "m.yaml") == []
    (problem,) = check_file(tmp_path / "m.yaml", input_shapes={"X": ((3, 4), "float32")})
    assert problem.kind == "shape" and problem.op_type == "Reshape"


@pytest.mark.parametrize("spec, expected", [
    ("X=2,4", ("X", ((2, 4), "float32"))),
    ("data=1,3,224,224", ("data", ((1, 3, 224, 224), "float32"))),
    ("label=64:int32", ("label", ((64,), "int32"))),
    ("a=b=7", ("a=b", ((7,), "float32"))),
])
def test_parse_input_shape(spec, expected):
    assert parse_input_shape(spec) == expected


@pytest.mark.parametrize("spec", ["X", "=2,4", "X=", "X=2,-1", "X=2,a", "X=2:nodtype", "X=2,,3"])
def test_bad_input_shape_is_a_usage_error(spec, capsys):
    assert main(["validate", "nets/mlp.yaml", "--input-shape", spec]) == 2
    err = capsys.readouterr().err
    assert "--input-shape" in err and spec in err and "Traceback" not in err


def test_input_shape_no_net_reads_is_reported(tmp_path, capsys):
    model = _pair(tmp_path / "model", (3, 4))
    assert main(["validate", str(model), "--input-shape", "Xx=2,4"]) == 0
    assert "no checked net reads blob 'Xx'" in capsys.readouterr().err


# ---------------------------------------------------------------- InferShapesAndTypes

@pytest.fixture
def clean_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def _fc_net():
    net = core.Net("fc")
    net.FC(["X", "W", "b"], "Y")
    net.Relu("Y", "Z")
    return net


def test_infer_shapes_and_types_from_a_map(clean_workspace):
    shapes, types = workspace.InferShapesAndTypes(
        [_fc_net()], {"X": [2, 4], "W": [3, 4], "b": [3]})
    assert shapes == {"X": [2, 4], "W": [3, 4], "b": [3], "Y": [2, 3], "Z": [2, 3]}
    assert types == {name: caffe2_pb2.TensorProto.FLOAT for name in shapes}


def test_infer_shapes_and_types_takes_blob_types_and_protos(clean_workspace):
    net = caffe2_pb2.NetDef()
    net.op.extend([core.CreateOperator("Cast", ["L"], ["F"], to=caffe2_pb2.TensorProto.FLOAT)])
    shapes, types = workspace.InferShapesAndTypes(
        [net], {"L": [5]}, nets_proto=True, blob_types={"L": caffe2_pb2.TensorProto.INT32})
    assert shapes == {"L": [5], "F": [5]}
    assert types == {"L": caffe2_pb2.TensorProto.INT32, "F": caffe2_pb2.TensorProto.FLOAT}


def test_infer_shapes_and_types_from_the_workspace(clean_workspace):
    workspace.FeedBlob("X", np.zeros((2, 4), np.float32))
    workspace.FeedBlob("W", np.zeros((3, 4), np.float32))
    workspace.FeedBlob("b", np.zeros(3, np.float32))
    shapes, _ = workspace.InferShapesAndTypes([_fc_net()])
    assert shapes["Z"] == [2, 3]
    # a map replaces the workspace, as in Caffe2: only what it says is known
    shapes, _ = workspace.InferShapesAndTypes([_fc_net()], {"X": [2, 4]})
    assert shapes == {"X": [2, 4]}


def test_infer_shapes_and_types_gives_nothing_when_shapes_conflict(clean_workspace, caplog):
    """Caffe2 logs the error and returns empty results."""
    shapes, types = workspace.InferShapesAndTypes([_fc_net()], {"X": [2, 4], "W": [3, 5], "b": [3]})
    assert (shapes, types) == ({}, {})
    assert "FC" in caplog.text


def test_infer_shapes_and_types_forgets_a_blob_an_unknown_op_rewrites(clean_workspace):
    net = core.Net("n")
    net.Relu("X", "Y")
    net.Proto().op.extend([core.CreateOperator("NoSuchOp", ["Y"], ["Y"])])
    shapes, _ = workspace.InferShapesAndTypes([net], {"X": [2]})
    assert shapes == {"X": [2]}


def test_init_gives_a_lone_predict_net_its_init_net(tmp_path, capsys):
    """`validate PREDICT --init INIT`, as `run --init`: a predict net that reads the init net's
    blobs without declaring them is valid with its init net, and the init net's shapes count."""
    folder = _pair(tmp_path / "m", (3, 4))
    predict = netfile.load_net(folder / "predict_net.pb")
    del predict.external_input[1:]  # W and b come from the init net only (Glow's nets do this)
    netfile.save_net(predict, tmp_path / "lone.pb")
    assert main(["validate", str(tmp_path / "lone.pb")]) == 1
    assert main(["validate", str(tmp_path / "lone.pb"), "--init", str(folder / "init_net.pb")]) == 0
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "lone.pb"), "--init", str(folder / "init_net.pb"),
                 "--input-shape", "X=2,5"]) == 1  # X's 5 against W's 4
    assert main(["validate", str(tmp_path / "lone.pb"), "--init", str(tmp_path / "missing.pb")]) == 2
    assert "missing.pb" in capsys.readouterr().out
