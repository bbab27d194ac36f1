"""workspace.Predictor and mobile_exporter.Export: a small CNN exported as the model
zoo's (init_net, predict_net) pair, then run by a Predictor from bytes and from NetDefs,
by list and by dict, giving what a direct run gives, without touching the global workspace."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.predictor import mobile_exporter
from pycaffe2.proto import caffe2_pb2

RNG = np.random.default_rng(9)


def test_export_pair_names_inputs_first_and_outputs(trained):
    model, _, _ = trained
    init_net, predict_net = mobile_exporter.Export(workspace, model.net, model.params)
    assert predict_net.external_input[0] == "data"
    assert set(map(str, model.params)) <= set(predict_net.external_input)
    assert list(predict_net.external_output) == ["softmax"]
    made = {op.output[0] for op in init_net.op}
    assert made == set(map(str, model.params)) | {"data"}
    assert {op.type for op in init_net.op} == {"GivenTensorFill"}


@pytest.mark.parametrize("serialized", [True, False])
def test_predictor_runs_exported_pair_like_the_direct_run(trained, serialized):
    model, data, expected = trained
    init_net, predict_net = mobile_exporter.Export(workspace, model.net, model.params)
    if serialized:
        init_net, predict_net = init_net.SerializeToString(), predict_net.SerializeToString()
    workspace.ResetWorkspace()
    predictor = workspace.Predictor(init_net, predict_net)
    by_list, = predictor.run([data])
    by_dict, = predictor.run({"data": data})
    np.testing.assert_allclose(by_list, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(by_dict, by_list)
    one, = predictor.run({"data": data[:1]})  # another batch size, the same net
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-7)
    assert workspace.Blobs() == []  # its own workspace: nothing leaks into the global one


def test_predictor_leaves_the_global_workspace_alone(trained):
    model, data, _ = trained
    init_net, predict_net = mobile_exporter.Export(workspace, model.net, model.params)
    before = {name: workspace.FetchBlob(name) for name in workspace.Blobs()}
    workspace.Predictor(init_net, predict_net).run([np.zeros_like(data)])
    for name, value in before.items():
        np.testing.assert_array_equal(workspace.FetchBlob(name), value)


def test_predictor_refuses_bad_input(trained):
    model, data, _ = trained
    init_net, predict_net = mobile_exporter.Export(workspace, model.net, model.params)
    with pytest.raises(PyCaffe2Error, match="binary mode"):
        workspace.Predictor(init_net.SerializeToString().decode("latin-1"), predict_net)
    with pytest.raises(PyCaffe2Error, match="not a serialized NetDef"):
        workspace.Predictor(b"\xff\xff\xff", predict_net)
    predictor = workspace.Predictor(init_net, predict_net)
    with pytest.raises(PyCaffe2Error, match="nodata not among"):
        predictor.run({"nodata": data})
    with pytest.raises(PyCaffe2Error, match="inputs given"):
        predictor.run([data] * (len(predict_net.external_input) + 1))


def test_export_keeps_int_params_in_their_fill():
    workspace.ResetWorkspace()
    net = caffe2_pb2.NetDef(name="gather")
    workspace.FeedBlob("table", np.arange(12, dtype=np.float32).reshape(4, 3))
    workspace.FeedBlob("idx", np.array([2, 0], dtype=np.int32))
    net.op.append(core.CreateOperator("Gather", ["table", "idx"], ["rows"]))
    init_net, predict_net = mobile_exporter.Export(workspace, net, ["idx"])
    assert [(op.type, op.output[0]) for op in init_net.op] == [("GivenTensorIntFill", "idx"),
                                                                ("GivenTensorFill", "table")]
    table = np.arange(12, dtype=np.float32).reshape(4, 3) * 2
    rows, = workspace.Predictor(init_net, predict_net).run([table])
    np.testing.assert_array_equal(rows, table[[2, 0]])
    workspace.ResetWorkspace()


def test_export_keeps_uint8_params_as_byte_strings():
    """Caffe2's mobile_exporter stores a uint8 array as one byte string."""
    net = caffe2_pb2.NetDef()
    codes = np.array([[0, 7, 255], [128, 1, 2]], np.uint8)
    mobile_exporter.add_tensor(net, "codes", codes)
    assert [op.type for op in net.op] == ["GivenTensorByteStringToUInt8Fill"]
    ws = Workspace("uint8_export")
    ws.RunNetOnce(net)
    out = ws.FetchBlob("codes")
    assert out.dtype == np.uint8 and out.tolist() == codes.tolist()


def test_predictor_runs_a_real_caffe2_pair(caffe2_models):
    """The PyTorch -> ONNX -> Caffe2 MNIST LeNet pair, read as bytes as a Caffe2 user would."""
    folder = caffe2_models / "hungmingwu_pytorch_export"
    init_bytes, predict_bytes = ((folder / f).read_bytes() for f in ("init_net.pb", "predict_net.pb"))
    predictor = workspace.Predictor(init_bytes, predict_bytes)
    assert predictor.input_names == ["1"] and predictor.output_names == ["26"]
    x = RNG.random((2, 1, 28, 28)).astype(np.float32)
    got, = predictor.run([x])
    ws = Workspace("direct")
    ws.RunNetOnce(caffe2_pb2.NetDef.FromString(init_bytes))
    ws.FeedBlob("1", x)
    ws.RunNetOnce(caffe2_pb2.NetDef.FromString(predict_bytes))
    np.testing.assert_array_equal(got, ws.FetchBlob("26"))
    assert got.shape == (2, 10)
