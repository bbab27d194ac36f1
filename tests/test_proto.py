"""The Caffe2 protobuf model: field numbers, sync with caffe2.proto, real files."""
import re
import struct
from pathlib import Path

import pytest

from pycaffe2.proto import caffe2_pb2
from tests.conftest import real_pb_files
from tests.wire import key, ld, varint

PROTO_FILE = Path(caffe2_pb2.__file__).with_name("caffe2.proto")


def test_netdef_decodes_from_bytes_encoded_by_field_number():
    arg = ld(1, b"alpha") + key(2, 5) + struct.pack("<f", 0.5)   # Argument.name=1, f=2
    ints_arg = ld(1, b"axes") + key(6, 0) + varint(3) + key(6, 0) + varint(1)  # ints=6 unpacked
    op = (ld(1, b"X") + ld(2, b"Y") + ld(3, b"hs") + ld(4, b"HardSigmoid")
          + ld(5, arg) + ld(5, ints_arg) + ld(7, b"CUDNN") + key(9, 0) + varint(1))
    device = key(1, 0) + varint(1) + key(2, 0) + varint(2)  # device_type=1, device_id=2
    data = (ld(1, b"toy") + ld(2, op) + ld(3, b"dag") + key(4, 0) + varint(4) + ld(5, device)
            + ld(7, b"X") + ld(8, b"Y"))
    net = caffe2_pb2.NetDef.FromString(data)
    assert (net.name, net.type, net.num_workers) == ("toy", "dag", 4)
    assert (net.device_option.device_type, net.device_option.device_id) == (1, 2)
    assert list(net.external_input) == ["X"] and list(net.external_output) == ["Y"]
    (parsed_op,) = net.op
    assert (parsed_op.type, parsed_op.name, parsed_op.engine) == ("HardSigmoid", "hs", "CUDNN")
    assert list(parsed_op.input) == ["X"] and list(parsed_op.output) == ["Y"]
    assert parsed_op.is_gradient_op
    assert parsed_op.arg[0].name == "alpha" and parsed_op.arg[0].f == 0.5
    assert list(parsed_op.arg[1].ints) == [3, 1]


def test_tensor_and_plan_fields_by_number():
    floats = struct.pack("<3f", 1.0, 2.0, 3.0)
    tensor = (key(1, 0) + varint(3) + key(2, 0) + varint(1) + ld(3, floats) + ld(7, b"w")
              + ld(11, key(1, 0) + varint(0) + key(2, 0) + varint(3)) + ld(13, b"\x00\x01"))
    parsed = caffe2_pb2.TensorProto.FromString(tensor)
    assert list(parsed.dims) == [3] and parsed.data_type == caffe2_pb2.TensorProto.FLOAT
    assert list(parsed.float_data) == [1.0, 2.0, 3.0] and parsed.name == "w"
    assert (parsed.segment.begin, parsed.segment.end) == (0, 3) and parsed.raw_data == b"\x00\x01"
    step = ld(1, b"train") + ld(3, b"net") + key(4, 0) + varint(100) + ld(9, b"stop")
    plan = caffe2_pb2.PlanDef.FromString(ld(1, b"p") + ld(2, ld(1, b"net")) + ld(3, step))
    assert plan.network[0].name == "net"
    assert (plan.execution_step[0].num_iter, plan.execution_step[0].should_stop_blob) == (100, "stop")


def test_data_type_enum_values():
    expected = {"UNDEFINED": 0, "FLOAT": 1, "INT32": 2, "BYTE": 3, "STRING": 4, "BOOL": 5, "UINT8": 6,
                "INT8": 7, "UINT16": 8, "INT16": 9, "INT64": 10, "FLOAT16": 12, "DOUBLE": 13}
    for name, number in expected.items():
        assert caffe2_pb2.TensorProto.DataType.Value(name) == number


def _proto_fields():
    """(message, field) -> number, read from caffe2.proto's text."""
    fields, stack = {}, []
    for line in PROTO_FILE.read_text().splitlines():
        line = line.split("//")[0].strip()
        if m := re.match(r"(message|enum) (\w+) \{", line):
            stack.append((m.group(1), m.group(2)))
        elif line == "}":
            stack.pop()
        elif stack and stack[-1][0] == "message" and (
                m := re.match(r"(?:optional|repeated|required) [\w.]+ (\w+) = (\d+)", line)):
            fields[(".".join(name for _, name in stack), m.group(1))] = int(m.group(2))
    return fields


def _module_fields():
    fields = {}

    def walk(descriptor, prefix):
        name = prefix + descriptor.name
        for field in descriptor.fields:
            fields[(name, field.name)] = field.number
        for nested in descriptor.nested_types:
            walk(nested, name + ".")

    for descriptor in caffe2_pb2.DESCRIPTOR.message_types_by_name.values():
        walk(descriptor, "")
    return fields


def test_generated_module_is_in_sync_with_proto_file():
    from_text = _proto_fields()
    assert len(from_text) > 100
    assert from_text == _module_fields()


@pytest.mark.parametrize("path", real_pb_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_real_caffe2_files_parse_and_reserialize_byte_for_byte(path):
    net = caffe2_pb2.NetDef.FromString(path.read_bytes())
    assert len(net.op) > 0
    assert net.SerializeToString() == path.read_bytes()
