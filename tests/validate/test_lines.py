"""Lines in every text format: YAML duplicate keys refused naming both lines,
JSON and .pbtxt problems located, and standard protobuf JSON read."""
import json

import pytest
from google.protobuf import json_format, text_format
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2 import _json, _pbtxt, _yaml, core, netfile
from pycaffe2.errors import NetFileError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.validate import check_file

# ---------------------------------------------------------------- YAML duplicate keys

DUP_TYPE = """name: n
external_input: [X]
op:
  - type: Relu
    input: [X]
    output: [Y]
    type: Sigmoid
"""


def test_yaml_duplicate_key_is_refused_naming_both_lines(tmp_path):
    (tmp_path / "n.yaml").write_text(DUP_TYPE)
    with pytest.raises(NetFileError) as info:
        netfile.load_model(tmp_path / "n.yaml")
    assert info.value.line == 7 and "duplicate key 'type' on lines 4 and 7" in info.value.message
    (problem,) = check_file(tmp_path / "n.yaml")
    assert problem.kind == "file" and problem.line == 7


def test_yaml_duplicate_top_level_and_flow_keys():
    with pytest.raises(Exception, match="duplicate key 'name' on lines 1 and 3"):
        _yaml.load("name: a\nop: []\nname: b\n")
    with pytest.raises(Exception, match="duplicate key 'a' on lines 1 and 1"):
        _yaml.load("{a: 1, a: 2}")


def test_yaml_merge_keys_may_be_overridden():
    tree = _yaml.load("base: &b {type: Relu, input: [X]}\nop: {<<: *b, type: Sigmoid}\n")
    assert tree["op"] == {"type": "Sigmoid", "input": ["X"]}
    tree = _yaml.load("a: &a {x: 1}\nb: &b {x: 2}\nc: {<<: [*a, *b]}\n")
    assert tree["c"] == {"x": 1}


# ---------------------------------------------------------------- JSON lines

JSON_NET = """{
 "name": "n",
 "external_input": ["X"],
 "op": [
  {"type": "Relu", "input": ["X"], "output": ["Y"]},
  {
   "type": "Reluu",
   "input": ["Y"], "output": ["Z"]
  }
 ]
}
"""


def test_json_checker_problems_carry_lines(tmp_path):
    (tmp_path / "n.json").write_text(JSON_NET)
    (problem,) = check_file(tmp_path / "n.json")
    assert (problem.kind, problem.line, problem.op_index) == ("unknown-op", 6, 1)


def test_json_reader_errors_carry_lines(tmp_path):
    (tmp_path / "n.json").write_text(JSON_NET.replace('"output": ["Z"]', '"outptu": ["Z"]'))
    with pytest.raises(NetFileError) as info:
        netfile.load_model(tmp_path / "n.json")
    assert info.value.line == 6 and "outptu" in info.value.message and info.value.op_index == 1


def test_json_duplicate_key_is_refused_naming_both_lines(tmp_path):
    (tmp_path / "n.json").write_text('{"name": "a",\n "op": [],\n "name": "b"}')
    (problem,) = check_file(tmp_path / "n.json")
    assert problem.kind == "file" and problem.line == 3
    assert "duplicate key 'name' on lines 1 and 3" in problem.message


@pytest.mark.parametrize("text, line", [('{"op": [1,\n', 2), ('{\n"op": [}', 2), ('{"a" 1}', 1),
                                        ('\n\n[1, 2', 3), ("", 1), ('{"a": 1,}', 1), ("[1] x", 1)])
def test_json_syntax_errors_have_lines(text, line):
    with pytest.raises(json.JSONDecodeError) as info:
        _json.load(text)
    assert info.value.lineno == line


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES, st.sampled_from([None, 1, 2]))
def test_json_loads_what_the_standard_library_loads(value, indent):
    text = json.dumps(value, indent=indent)
    assert _json.load(text) == json.loads(text)
    assert _json.load(text.encode("utf-16")) == json.loads(text.encode("utf-16"))


def test_json_item_lines_of_lists():
    tree = _json.load('{"op": [\n {"a": 1},\n\n {"b": 2}\n], "v": [1.5,\n -2e3], "s": ["x", "y\\n"]}')
    assert tree["op"].item_lines == [2, 4] and tree["op"][1].line == 4
    assert tree["v"] == [1.5, -2000.0] and tree["s"] == ["x", "y\n"]


# ---------------------------------------------------------------- .pbtxt lines

PBTXT = """name: "n"  # an op { in a comment
external_input: "X"
op {
  type: "Relu" input: "X" output: "Y"
}
op {
  input: "Y"
  output: "Z"
  type: "Tanhh"
  arg { name: "s" s: "op {" }
}
"""


def test_pbtxt_checker_problems_carry_lines(tmp_path):
    (tmp_path / "n.pbtxt").write_text(PBTXT)
    (problem,) = check_file(tmp_path / "n.pbtxt")
    assert (problem.kind, problem.line, problem.op_index) == ("unknown-op", 6, 1)


def test_pbtxt_syntax_errors_carry_lines(tmp_path):
    (tmp_path / "n.pbtxt").write_text(PBTXT.replace('output: "Z"', 'outptu: "Z"'))
    (problem,) = check_file(tmp_path / "n.pbtxt")
    assert problem.kind == "file" and problem.line == 8


def test_pbtxt_op_lines_match_what_protobuf_parses():
    net = caffe2_pb2.NetDef()
    text_format.Parse(PBTXT, net)
    assert len(_pbtxt.op_lines(PBTXT)) == len(net.op)
    assert _pbtxt.op_lines("op: < type: 'a>' >\nop\n{\n}\n") == {0: 1, 1: 2}


# ---------------------------------------------------------------- standard protobuf JSON

def _sample_net():
    net = caffe2_pb2.NetDef(name="conv", type="dag", num_workers=2)
    net.external_input.extend(["X", "w"])
    net.external_output.append("Y")
    net.op.extend([core.CreateOperator("Conv", ["X", "w"], ["Y"], kernel=3, order="NCHW",
                                       pads=[1, 1, 1, 1])])
    net.op[0].device_option.device_type = 0
    fill = net.op.add(type="GivenTensorFill", output=["t"])
    tensor = fill.arg.add(name="values_tensor").t
    tensor.dims.extend([2, 3])
    tensor.data_type = caffe2_pb2.TensorProto.INT64
    tensor.int64_data.extend([1, 2, 3, 4, 5, 1 << 40])
    return net


@pytest.mark.parametrize("preserving", [False, True], ids=["camelCase", "field_names"])
def test_json_format_output_reads_back(tmp_path, preserving):
    net = _sample_net()
    text = json_format.MessageToJson(net, preserving_proto_field_name=preserving)
    assert '"3"' in text and ("externalInput" in text) != preserving  # int64 as strings
    (tmp_path / "n.json").write_text(text)
    assert netfile.load_net(tmp_path / "n.json") == net
    model = netfile.load_model(tmp_path / "n.json")
    assert sorted(model.op_lines["predict_net"]) == [0, 1]


def test_json_format_net_inside_a_model_file(tmp_path):
    net = _sample_net()
    tree = {"predict_net": json_format.MessageToDict(net)}
    (tmp_path / "m.json").write_text(json.dumps(tree))
    assert netfile.load_model(tmp_path / "m.json").predict_net == net


def test_own_json_keeps_bytes_as_text(tmp_path):
    """Without camelCase names or int64 strings a file is pycaffe2's JSON: 's' is text, not base64."""
    (tmp_path / "n.json").write_text('{"op": [{"type": "Conv", "arg": [{"name": "order", "s": "TkNIVw=="}]}]}')
    assert netfile.load_net(tmp_path / "n.json").op[0].arg[0].s == b"TkNIVw=="


def test_bad_json_format_names_the_file(tmp_path):
    (tmp_path / "n.json").write_text('{\n "externalInput": ["X"],\n "numWorkers": "many"\n}')
    with pytest.raises(NetFileError) as info:
        netfile.load_model(tmp_path / "n.json")
    assert info.value.file == str(tmp_path / "n.json") and "bad protobuf JSON" in info.value.message
    assert info.value.line == 1


def test_deeply_nested_json_is_a_net_file_error(tmp_path):
    (tmp_path / "deep.json").write_text('{"op": ' + "[" * 5000 + "]" * 5000 + "}")
    (problem,) = check_file(tmp_path / "deep.json")
    assert problem.kind == "file" and "bad JSON" in problem.message
