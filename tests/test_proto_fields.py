"""caffe2.proto holds every message and field of Caffe2's last proto (partitions, backend
options, bound shapes, serialization options, the 2018-2021 TensorProto fields), and fields
it does not declare survive every conversion that can hold them."""
import pytest

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.errors import NetFileError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import unknown_field_path
from tests.conftest import SHARED

GLOW_NETS = SHARED / "glow_caffe2_nets"
PARTITIONED = GLOW_NETS / "pre_partitioned_multi_op_predict_net.pbtxt"

# (message, field) -> number in Caffe2's caffe2.proto (PyTorch tree, last version)
CAFFE2_NUMBERS = {
    ("PartitionInfo", "name"): 1, ("PartitionInfo", "device_id"): 2, ("PartitionInfo", "extra_info"): 3,
    ("PartitionInfo", "backend_options"): 4, ("BackendOptions", "backend_name"): 1,
    ("BackendOptions", "option"): 2, ("MapFieldEntry", "key"): 1, ("MapFieldEntry", "val"): 2,
    ("NetDef", "partition_info"): 9, ("OperatorDef", "debug_info"): 10, ("OperatorDef", "domain"): 11,
    ("OperatorDef", "op_version"): 12, ("DeviceOption", "node_name"): 4, ("DeviceOption", "numa_node_id"): 5,
    ("DeviceOption", "extra_info"): 6, ("TensorProto", "storage_type"): 12, ("TensorProto", "raw_data"): 13,
    ("TensorProto", "external_data"): 14, ("TensorProto", "data_format"): 15,
    ("QTensorProto", "data_type"): 8, ("QTensorProto", "scales"): 9, ("QTensorProto", "biases"): 10,
    ("QTensorProto", "axis"): 11, ("QTensorProto", "is_multiparam"): 12,
    ("TensorBoundShape", "shape"): 1, ("TensorBoundShape", "dim_type"): 2,
    ("TensorBoundShape", "shape_is_final"): 4, ("TensorBoundShapes", "max_feature_len"): 3,
    ("AOTConfig", "onnxifi_min_ops"): 5, ("BlobProto", "qtensor"): 5, ("BlobProto", "content_chunk_id"): 7,
    ("DBReaderProto", "key"): 4, ("BlobSerializationOptions", "float_format"): 3,
    ("SerializationOptions", "options"): 1, ("ExternalDataProto", "record_size"): 5,
}


@pytest.mark.parametrize("message, field", sorted(CAFFE2_NUMBERS))
def test_fields_have_caffe2_numbers(message, field):
    descriptor = getattr(caffe2_pb2, message).DESCRIPTOR
    assert descriptor.fields_by_name[field].number == CAFFE2_NUMBERS[(message, field)]


def test_enums_of_the_late_messages():
    assert caffe2_pb2.TensorBoundShape.FEATURE_MAX_DEFAULT == 6
    assert caffe2_pb2.BlobSerializationOptions.FLOAT_BFLOAT16 == 2
    assert caffe2_pb2.TensorProto.EXTERNAL == 3 and caffe2_pb2.TensorProto.REBATCHING_BUFFER == 15


def test_old_tensor_fields_parse_from_text():
    text = 'dims: 2 data_type: FLOAT storage_type: EXTERNAL external_data { record_id: "w" offset: 8 }'
    from google.protobuf import text_format
    tensor = text_format.Parse(text, caffe2_pb2.TensorProto())
    assert tensor.storage_type == caffe2_pb2.TensorProto.EXTERNAL and tensor.external_data.offset == 8


@pytest.mark.skipif(not PARTITIONED.exists(), reason=f"needs {GLOW_NETS} (Glow's Caffe2 test nets)")
@pytest.mark.parametrize("suffix", [".pb", ".pbtxt", ".yaml", ".json"])
def test_glow_partitioned_net_parses_and_round_trips(tmp_path, suffix):
    net = netfile.load_net(PARTITIONED)
    p2 = net.partition_info[2]
    assert (p2.name, list(p2.device_id)) == ("p2", [2])
    assert [(o.backend_name, [(e.key, e.val) for e in o.option]) for o in p2.backend_options] == [
        ("BackendA", [("opt1", "val1"), ("opt2", "val2")]), ("BackendB", [("opt3", "val3")])]
    netfile.save_net(net, tmp_path / f"net{suffix}")
    assert netfile.load_net(tmp_path / f"net{suffix}") == net


def with_unknown_fields() -> caffe2_pb2.NetDef:
    """A net holding fields no caffe2.proto declares, at the top, in an op and in an arg."""
    op = caffe2_pb2.OperatorDef(type="Relu", input=["X"], output=["Y"])
    arg = caffe2_pb2.Argument(name="alpha", f=0.5).SerializeToString() + b"\xa0\x06\x07"  # field 100 = 7
    op.arg.add().MergeFromString(arg)
    op_bytes = op.SerializeToString() + b"\xfa\x06\x03abc"  # field 111, length-delimited
    net = caffe2_pb2.NetDef(name="n", external_input=["X"], external_output=["Y"])
    net.op.add().MergeFromString(op_bytes)
    return caffe2_pb2.NetDef.FromString(net.SerializeToString() + b"\xf8\x06\x05")  # field 111 = 5


@pytest.mark.parametrize("suffix", [".pb", ".yaml", ".json"])
def test_unknown_fields_survive_a_round_trip(tmp_path, suffix):
    net = with_unknown_fields()
    netfile.save_net(net, tmp_path / f"net{suffix}")
    back = netfile.load_net(tmp_path / f"net{suffix}")
    assert back.SerializeToString() == net.SerializeToString()


def test_unknown_fields_survive_convert_pb_yaml_pb(tmp_path):
    net = with_unknown_fields()
    (tmp_path / "a.pb").write_bytes(net.SerializeToString())
    assert main(["convert", str(tmp_path / "a.pb"), str(tmp_path / "b.yaml")]) == 0
    assert "unknown_fields" in (tmp_path / "b.yaml").read_text()
    assert main(["convert", str(tmp_path / "b.yaml"), str(tmp_path / "c.pb")]) == 0
    assert (tmp_path / "c.pb").read_bytes() == net.SerializeToString()


def test_pbtxt_refuses_to_drop_unknown_fields(tmp_path):
    with pytest.raises(NetFileError, match=r"cannot write \.pbtxt.*op\[0\]|cannot write \.pbtxt.*top level"):
        netfile.save_net(with_unknown_fields(), tmp_path / "net.pbtxt")
    assert not (tmp_path / "net.pbtxt").exists()


def test_unknown_field_path_names_the_message():
    op = caffe2_pb2.OperatorDef(type="Relu")
    op.arg.add().MergeFromString(caffe2_pb2.Argument(name="a", i=1).SerializeToString() + b"\xa0\x06\x07")
    net = caffe2_pb2.NetDef()
    net.op.append(op)
    assert unknown_field_path(net) == "op[0].arg[0] (field number 100)"
    assert unknown_field_path(caffe2_pb2.NetDef(name="clean")) is None


@pytest.mark.parametrize("bad, message", [
    ("unknown_fields: 3", "expected {base64"),
    ("unknown_fields: {base64: '!!'}", "invalid base64"),
    ("unknown_fields: {base64: '/w=='}", "not valid protobuf wire bytes"),
])
def test_bad_unknown_fields_are_clear_errors(tmp_path, bad, message):
    (tmp_path / "net.yaml").write_text(f"name: n\n{bad}\n")
    with pytest.raises(NetFileError, match=message):
        netfile.load_net(tmp_path / "net.yaml")


@pytest.mark.parametrize("name", ["cuda_gpu_id", "hip_gpu_id", "device_id"])
def test_old_device_id_names_in_text(tmp_path, name):
    (tmp_path / "net.pbtxt").write_text(f'op {{ type: "Relu" input: "X" output: "Y" '
                                        f'device_option {{ device_type: 6 {name}: 1 }} }}')
    assert netfile.load_net(tmp_path / "net.pbtxt").op[0].device_option.device_id == 1
