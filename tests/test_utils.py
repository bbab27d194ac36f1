"""pycaffe2.utils: Caffe2's utils names, each against what Caffe2's does."""
import sys
import types

import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe2 import core, utils, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2

T = caffe2_pb2.TensorProto


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


@pytest.mark.parametrize("array, data_type", [
    (np.arange(6, dtype=np.float32).reshape(2, 3), T.FLOAT),
    (np.array([1.5, -2.0]), T.DOUBLE),
    (np.array([[1, 2], [3, 4]], dtype=np.int32), T.INT32),
    (np.array([1, -2], dtype=np.int16), T.INT16),
    (np.array([7, 255], dtype=np.uint8), T.UINT8),
])
def test_tensor_round_trip(array, data_type):
    tensor = utils.NumpyArrayToCaffe2Tensor(array, "x")
    assert tensor.data_type == data_type and tensor.name == "x" and list(tensor.dims) == list(array.shape)
    back = utils.Caffe2TensorToNumpyArray(tensor)
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_int64_is_stored_as_int32_like_caffe2():
    tensor = utils.NumpyArrayToCaffe2Tensor(np.int64(2))  # a label, as the dataset tutorial writes it
    assert tensor.data_type == T.INT32 and list(tensor.int32_data) == [2] and list(tensor.dims) == []
    with pytest.raises(PyCaffe2Error, match="outside int32"):
        utils.NumpyArrayToCaffe2Tensor(np.array([2 ** 40]))


def test_caffe_blob_to_numpy():
    old = types.SimpleNamespace(num=1, channels=2, height=1, width=2, data=[1, 2, 3, 4], shape=None)
    assert utils.CaffeBlobToNumpyArray(old).shape == (1, 2, 1, 2)
    new = types.SimpleNamespace(num=0, data=[1.0, 2.0, 3.0], shape=types.SimpleNamespace(dim=[3, 1]))
    out = utils.CaffeBlobToNumpyArray(new)
    assert out.dtype == np.float32 and out.shape == (3, 1)
    new.shape.dim = [2, 2]
    with pytest.raises(PyCaffe2Error, match="do not fill"):
        utils.CaffeBlobToNumpyArray(new)


def test_make_argument_and_args_to_dict():
    args = [utils.MakeArgument("k", 3), utils.MakeArgument("pads", [1, 2]), utils.MakeArgument("s", "abc"),
            utils.MakeArgument("f", 0.5), caffe2_pb2.Argument(name="unset"), caffe2_pb2.Argument()]
    assert args[0].i == 3 and list(args[1].ints) == [1, 2]
    assert utils.ArgsToDict(args) == {"k": 3, "pads": [1, 2], "s": "abc", "f": 0.5, "unset": None}


def test_op_almost_equal():
    a = core.CreateOperator("Relu", ["x"], ["y"], name="first")
    b = core.CreateOperator("Relu", ["x"], ["y"], name="second")
    assert not utils.OpAlmostEqual(a, b)
    assert utils.OpAlmostEqual(a, b, "name") and utils.OpAlmostEqual(a, b, ["name"])


def test_read_proto_text_or_binary(tmp_path):
    net = caffe2_pb2.NetDef(name="n")
    net.op.add(type="Relu", input=["x"], output=["y"])
    text, binary = text_format.MessageToString(net), net.SerializeToString()
    assert utils.TryReadProtoWithClass(caffe2_pb2.NetDef, text) == net
    assert utils.TryReadProtoWithClass(caffe2_pb2.NetDef, binary) == net
    assert utils.GetContentFromProtoString(binary, {caffe2_pb2.NetDef: lambda x: x.name}) == "n"
    assert utils.GetContentFromProto(net, {caffe2_pb2.PlanDef: len, caffe2_pb2.NetDef: lambda x: x.op[0].type}) \
        == "Relu"
    assert utils.GetContentFromProto(net, {caffe2_pb2.PlanDef: len}) is None
    with pytest.raises(PyCaffe2Error, match="as text or binary"):
        utils.TryReadProtoWithClass(caffe2_pb2.NetDef, b"\xff\xff\xff not a proto {")
    with pytest.raises(PyCaffe2Error, match="none of NetDef"):
        utils.GetContentFromProtoString(b"\xff\xff\xff not a proto {", {caffe2_pb2.NetDef: len})
    (tmp_path / "n.pbtxt").write_text(text)
    utils.ConvertProtoToBinary(caffe2_pb2.NetDef, tmp_path / "n.pbtxt", tmp_path / "n.pb")
    assert (tmp_path / "n.pb").read_bytes() == binary
    with pytest.raises(PyCaffe2Error, match="No such file"):
        utils.ConvertProtoToBinary(caffe2_pb2.NetDef, tmp_path / "missing", tmp_path / "out.pb")


def test_build_unique_mutex_iter_counts():
    init, net = core.Net("init"), core.Net("train")
    it = utils.BuildUniqueMutexIter(init, net, iter_val=5)
    assert str(it) == utils.OPTIMIZER_ITERATION_NAME
    again = utils.BuildUniqueMutexIter(init, net)
    assert str(again) == str(it) and len(init.Proto().op) == 2 and len(net.Proto().op) == 1
    workspace.RunNetOnce(init)
    workspace.CreateNet(net)
    workspace.RunNet(net.Name(), 3)
    value = workspace.FetchBlob(utils.OPTIMIZER_ITERATION_NAME)
    assert value.dtype == np.int64 and value.tolist() == [8]


def test_reset_blobs():
    workspace.FeedBlob("a", np.ones(2, np.float32))
    utils.ResetBlobs(["a"])
    assert workspace.HasBlob("a")
    with pytest.raises(PyCaffe2Error, match="never given a value"):
        workspace.FetchBlob("a")
    with pytest.raises(PyCaffe2Error, match="no blob named nope"):
        utils.ResetBlobs(["nope"])


def test_enum_class_key_vals():
    class Kinds:
        DENSE = "dense"
        SPARSE = "sparse"
        lower = "ignored"
        COUNT = 2

    assert utils.EnumClassKeyVals(Kinds) == {"DENSE": "dense", "SPARSE": "sparse"}

    class Twice:
        A = "x"
        B = "x"

    with pytest.raises(PyCaffe2Error, match="both 'x'"):
        utils.EnumClassKeyVals(Twice)
    with pytest.raises(PyCaffe2Error, match="expected a class"):
        utils.EnumClassKeyVals(Kinds())


def test_raise_if_not_equal():
    utils.raiseIfNotEqual(1, 1, "same")
    with pytest.raises(PyCaffe2Error, match="sizes differ. 1 != 2"):
        utils.raiseIfNotEqual(1, 2, "sizes differ")


def test_debug_mode(monkeypatch):
    assert utils.DebugMode.run(lambda: 4) == 4
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: False))
    with pytest.raises(ValueError):
        utils.DebugMode.run(lambda: int("x"))
    seen = []
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr("pdb.post_mortem", lambda tb: seen.append(tb))
    with pytest.raises(SystemExit) as exit_info:
        utils.DebugMode.run(lambda: int("x"))
    assert exit_info.value.code == 1 and seen and seen[0] is not None
    assert utils.debug(len) is len


def test_layout_transposes():
    x = np.arange(24).reshape(1, 2, 3, 4)
    assert utils.NCHW2NHWC(x).shape == (1, 3, 4, 2)
    assert np.array_equal(utils.NHWC2NCHW(utils.NCHW2NHWC(x)), x)
