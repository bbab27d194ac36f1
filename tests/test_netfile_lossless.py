"""Net files read whatever protobuf spelling they hold (binary in a .pbtxt, text in a
.pb, as Caffe2's ReadProtoFromFile does), and `convert` .pb -> .yaml -> .pb gives back
the same bytes, enum-valued args included (Cast's `to: 2` stays the int 2)."""
import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.errors import NetFileError
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from tests.conftest import SHARED, real_pb_files

INT32, INT64, FLOAT = (caffe2_pb2.TensorProto.INT32, caffe2_pb2.TensorProto.INT64,
                       caffe2_pb2.TensorProto.FLOAT)
GLOW_NETS = SHARED / "glow_caffe2_nets"


def enum_net() -> caffe2_pb2.NetDef:
    """Ops whose args hold TensorProto data types: as ints, and Cast's `to` also as text."""
    net = caffe2_pb2.NetDef(name="enums", external_input=["X"], external_output=["Y", "Z", "F"])
    net.op.add(type="Cast", input=["X"], output=["Y"], arg=[
        caffe2_pb2.Argument(name="to", i=INT32), caffe2_pb2.Argument(name="from_type", i=FLOAT)])
    net.op.add(type="Cast", input=["X"], output=["Z"], arg=[caffe2_pb2.Argument(name="to", s=b"INT64")])
    net.op.add(type="ConstantFill", output=["F"], arg=[
        caffe2_pb2.Argument(name="shape", ints=[2]), caffe2_pb2.Argument(name="dtype", i=INT64),
        caffe2_pb2.Argument(name="value", f=3.0)])
    return net


# ------------------------------------------------------------ binary or text, whatever the name

def test_binary_net_named_pbtxt_is_read(tmp_path):
    net = enum_net()
    (tmp_path / "net.pbtxt").write_bytes(net.SerializeToString())
    assert netfile.load_net(tmp_path / "net.pbtxt") == net


def test_text_net_named_pb_is_read_with_op_lines(tmp_path):
    net = enum_net()
    (tmp_path / "net.pb").write_text("# written by hand\n" + text_format.MessageToString(net))
    model = netfile.load_model(tmp_path / "net.pb")
    assert model.predict_net == net
    assert model.op_lines["predict_net"][0] == 3  # name, then the first op block


def test_real_binary_net_renamed_pbtxt_runs_as_the_pb(tmp_path, caffe2_models):
    real = caffe2_models / "squeezenet_predict_only" / "squeeze_predict_net.pb"
    (tmp_path / "squeeze.pbtxt").write_bytes(real.read_bytes())
    assert netfile.load_net(tmp_path / "squeeze.pbtxt") == netfile.load_net(real)


@pytest.mark.parametrize("name, data, first, second, line", [
    ("bad.pbtxt", b'op { type: "Relu"\n nosuch: 1 }', "bad protobuf text",
     "read as binary protobuf instead: not a valid NetDef protobuf", 2),
    ("bad.pb", b"\x12\xff\xff\xff", "not a valid NetDef protobuf",
     "read as text protobuf instead: not UTF-8 text", None),
    ("bad.pb", b"op { type: 'Relu' ", "not a valid NetDef protobuf",
     "read as text protobuf instead: bad protobuf text", None),
])
def test_neither_spelling_parses_names_the_file_and_both_reasons(tmp_path, name, data, first, second, line):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(NetFileError) as info:
        netfile.load_net(tmp_path / name)
    message = str(info.value)
    assert message.startswith(str(tmp_path / name)) and info.value.line == line
    assert first in message and second in message and message.index(first) < message.index(second)


def test_convert_reads_a_misnamed_file(tmp_path):
    (tmp_path / "in.pbtxt").write_bytes(enum_net().SerializeToString())
    assert main(["convert", str(tmp_path / "in.pbtxt"), str(tmp_path / "out.pb")]) == 0
    assert (tmp_path / "out.pb").read_bytes() == enum_net().SerializeToString()


# ------------------------------------------------------------ enum-valued args keep their field

def pb_yaml_pb(tmp_path, source) -> bytes:
    """`pycaffe2 convert` source -> .yaml -> .pb; the bytes written last."""
    assert main(["convert", str(source), str(tmp_path / "net.yaml")]) == 0
    assert main(["convert", str(tmp_path / "net.yaml"), str(tmp_path / "back.pb")]) == 0
    return (tmp_path / "back.pb").read_bytes()


def test_enum_args_round_trip_byte_for_byte(tmp_path):
    netfile.save_net(enum_net(), tmp_path / "net.pb")
    assert pb_yaml_pb(tmp_path, tmp_path / "net.pb") == (tmp_path / "net.pb").read_bytes()
    ops = netfile.load_net(tmp_path / "net.yaml").op
    assert ops[0].arg[0] == caffe2_pb2.Argument(name="to", i=INT32)
    text = (tmp_path / "net.yaml").read_text()
    assert "{to: 2, from_type: 1}" in text  # Cast takes a name as text: the number stays
    assert "to: INT64" in text and "dtype: INT64" in text  # text stays text; dtype-only args by name


def test_json_keeps_enum_args_too(tmp_path):
    netfile.save_net(enum_net(), tmp_path / "net.json")
    assert netfile.load_net(tmp_path / "net.json") == enum_net()


def test_names_written_by_hand_still_work(tmp_path):
    (tmp_path / "hand.yaml").write_text(
        "external_input: [X]\n"
        "op:\n"
        "  - {type: Cast, input: [X], output: [Y], arg: {to: INT32}}\n"
        "  - {type: Cast, input: [X], output: [Z], arg: {to: 10}}\n"
        "  - {type: ConstantFill, output: [F], arg: {shape: [2], dtype: int32, value: 1}}\n")
    ops = netfile.load_net(tmp_path / "hand.yaml").op
    assert ops[0].arg[0] == caffe2_pb2.Argument(name="to", s=b"INT32")  # as Caffe2 stores a name
    assert ops[1].arg[0] == caffe2_pb2.Argument(name="to", i=INT64)
    assert ops[2].arg[1] == caffe2_pb2.Argument(name="dtype", i=INT32)
    workspace = Workspace("hand")
    workspace.FeedBlob("X", np.array([1.5, -2.0], np.float32))
    workspace.RunNetOnce(netfile.load_net(tmp_path / "hand.yaml"))
    assert workspace.FetchBlob("Y").dtype == np.int32 and workspace.FetchBlob("Z").dtype == np.int64
    assert workspace.FetchBlob("F").dtype == np.int32


@pytest.mark.parametrize("path", real_pb_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_real_pb_files_convert_to_yaml_and_back_byte_for_byte(tmp_path, path):
    if path.stat().st_size > 2_000_000:
        pytest.skip(f"{path.name} holds weights ({path.stat().st_size} bytes): the slow test covers it")
    assert pb_yaml_pb(tmp_path, path) == path.read_bytes()


def glow_nets():
    if not GLOW_NETS.is_dir():
        return [pytest.param(None, id="glow-missing", marks=pytest.mark.skip(
            reason=f"needs {GLOW_NETS} (Glow's Caffe2 test nets)"))]
    return [pytest.param(path, id=path.name) for path in sorted(GLOW_NETS.glob("*.pbtxt"))]


@pytest.mark.parametrize("path", glow_nets())
def test_real_text_nets_round_trip(tmp_path, path):
    """Glow's Caffe2 test nets (cast_int64_to_int64 has Cast's `to` as an int)."""
    try:
        net = netfile.load_net(path)
    except NetFileError as exc:
        pytest.skip(f"not a NetDef pycaffe2 reads: {exc}")
    netfile.save_net(net, tmp_path / "net.pb")
    assert pb_yaml_pb(tmp_path, tmp_path / "net.pb") == net.SerializeToString()
