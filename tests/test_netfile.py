"""Net files: the four formats, friendly args, model files, located errors."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycaffe2 import netfile
from pycaffe2.errors import NetFileError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import make_argument
from tests.conftest import real_pb_files

FORMATS = (".pb", ".pbtxt", ".yaml", ".json")


def rich_net() -> caffe2_pb2.NetDef:
    """A NetDef using most of what the formats must carry."""
    net = caffe2_pb2.NetDef(name="rich", type="dag", num_workers=2,
                            external_input=["X", "W"], external_output=["Y"])
    net.device_option.device_type = 1
    net.device_option.device_id = 3
    op = net.op.add(type="HardSigmoid", input=["X"], output=["H"], name="hs", engine="CUDNN",
                    control_input=["W"], is_gradient_op=False, debug_info="line 1")
    op.arg.extend([make_argument("alpha", 0.1), make_argument("beta", 0.7)])
    odd = net.op.add(type="MadeUpOp", input=["H", "W"], output=["Y"])
    odd.arg.extend([make_argument("ints", [1, -2, 3]), make_argument("floats", [0.5, 1e-7]),
                    make_argument("strings", ["a", "b"]), make_argument("text", "NCHW"),
                    caffe2_pb2.Argument(name="blob", s=b"\xff\x00\xfe")])
    nested = caffe2_pb2.Argument(name="body")
    nested.n.name = "inner"
    nested.n.op.add(type="Relu", input=["a"], output=["b"])
    tensor = caffe2_pb2.Argument(name="t")
    tensor.t.dims.extend([2])
    tensor.t.data_type = caffe2_pb2.TensorProto.INT64
    tensor.t.int64_data.extend([5, 6])
    odd.arg.extend([nested, tensor])
    return net


@pytest.mark.parametrize("first", FORMATS)
@pytest.mark.parametrize("second", FORMATS)
def test_round_trip_between_all_formats(tmp_path, first, second):
    net = rich_net()
    netfile.save_net(net, tmp_path / f"a{first}")
    again = netfile.load_net(tmp_path / f"a{first}")
    netfile.save_net(again, tmp_path / f"b{second}")
    assert netfile.load_net(tmp_path / f"b{second}") == net


@pytest.mark.slow
@pytest.mark.parametrize("path", real_pb_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_real_files_round_trip_pb_yaml_pb(tmp_path, path):
    net = netfile.load_net(path)
    netfile.save_net(net, tmp_path / "net.yaml")
    netfile.save_net(netfile.load_net(tmp_path / "net.yaml"), tmp_path / "net.pb")
    assert (tmp_path / "net.pb").read_bytes() == path.read_bytes()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_friendly_args_are_typed_by_schema(tmp_path):
    path = write(tmp_path, "n.yaml", """
op:
  - {type: HardSigmoid, input: [X], output: [Y], arg: {alpha: 1, beta: 0}}
  - {type: NoSuchOp, input: [Y], output: [Z], arg: {k: 1, f: 1.5, s: abc, l: [1, 2]}}
""")
    hard_sigmoid, unknown = netfile.load_net(path).op
    assert [(a.name, a.HasField("f"), a.f) for a in hard_sigmoid.arg] == [("alpha", True, 1.0),
                                                                           ("beta", True, 0.0)]
    assert [a.ListFields()[1][0].name for a in unknown.arg] == ["i", "f", "s", "ints"]


def test_friendly_arg_written_back_as_mapping_only_when_lossless(tmp_path):
    net = caffe2_pb2.NetDef(name="n")
    good = net.op.add(type="HardSigmoid", input=["X"], output=["Y"])
    good.arg.append(make_argument("alpha", 0.3, ("float",)))
    odd = net.op.add(type="HardSigmoid", input=["Y"], output=["Z"])
    odd.arg.append(make_argument("alpha", 3))  # stored as int: not what the schema types
    tree = netfile.net_to_tree(net)
    assert tree["op"][0]["arg"] == {"alpha": 0.3}
    assert tree["op"][1]["arg"] == [{"name": "alpha", "i": 3}]
    netfile.save_net(net, tmp_path / "n.yaml")
    assert netfile.load_net(tmp_path / "n.yaml") == net


def test_explicit_argument_form_and_base64_bytes(tmp_path):
    path = write(tmp_path, "n.json", json.dumps({"op": [{"type": "X", "arg": [
        {"name": "raw", "s": {"base64": "/wD+"}}, {"name": "f", "floats": [1, 2]}]}]}))
    op = netfile.load_net(path).op[0]
    assert op.arg[0].s == b"\xff\x00\xfe" and list(op.arg[1].floats) == [1.0, 2.0]


def test_pbtxt_accepts_old_cuda_gpu_id(tmp_path):
    path = write(tmp_path, "n.pbtxt", 'name: "n"\ndevice_option { device_type: 1 cuda_gpu_id: 2 }\n'
                 'op { type: "Relu" input: "X" output: "Y" }\n')
    net = netfile.load_net(path)
    assert net.device_option.device_id == 2 and net.op[0].type == "Relu"


def test_model_file_bundles_nets_plan_and_shapes(tmp_path):
    init = caffe2_pb2.NetDef(name="init")
    init.op.add(type="ConstantFill", output=["W"])
    netfile.save_net(init, tmp_path / "init.pb")
    path = write(tmp_path, "model.yaml", """
init_net: init.pb
predict_net:
  name: predict
  external_input: [X, W]
  op: [{type: HardSigmoid, input: [X], output: [Y]}]
plan:
  name: train
  execution_step: [{name: step, network: [predict], num_iter: 10}]
input_shapes:
  X: [2, 3]
  L: {shape: [2], dtype: int32}
""")
    model = netfile.load_model(path)
    assert model.init_net == init and model.predict_net.name == "predict"
    assert model.plan.execution_step[0].num_iter == 10
    assert model.input_shapes == {"X": ((2, 3), "float32"), "L": ((2,), "int32")}
    assert model.files["init_net"].endswith("init.pb") and model.op_lines["predict_net"] == {0: 6}
    netfile.save_model(model, tmp_path / "again.json")
    again = netfile.load_model(tmp_path / "again.json")
    assert (again.init_net, again.predict_net, again.plan, again.input_shapes) == (
        model.init_net, model.predict_net, model.plan, model.input_shapes)
    with pytest.raises(NetFileError, match="use load_model"):
        netfile.load_net(path)
    with pytest.raises(NetFileError, match="needs .yaml"):
        netfile.save_model(model, tmp_path / "model.pb")


def test_model_folder(caffe2_models):
    model = netfile.load_model(caffe2_models / "hungmingwu_pytorch_export")
    assert len(model.init_net.op) == 8 and len(model.predict_net.op) == 11


BAD_FILES = [
    ("bad.yaml", "op:\n  - type: Relu\n    input: [X\n", 4, None, "bad YAML"),
    ("bad.yaml", "name: n\nops: []\n", 1, None, "unknown NetDef field 'ops' (did you mean 'op'?)"),
    ("bad.yaml", "op:\n  - type: Relu\n  - type: Relu\n    inputs: [X]\n", 3, 1,
     "unknown OperatorDef field 'inputs' (did you mean 'input'?)"),
    ("bad.yaml", "op:\n  - {type: Relu, input: X}\n", 2, 0, "op[0].input: expected a list, got text"),
    ("bad.yaml", "op:\n  - {type: Relu, arg: {alpha: {z: 1}}}\n", 2, 0, "unknown Argument field 'z'"),
    ("bad.yaml", "op:\n  - {type: Relu, arg: {alpha: {x: 1}}}\n", 2, 0, "Argument field 'x'"),
    ("bad.yaml", "op:\n  - {type: HardSigmoid, arg: {alpha: [[1]]}}\n", 2, 0, "arg 'alpha' has no Argument form"),
    ("bad.yaml", "device_option: {device_type: cuda}\n", 1, None, "expected an integer"),
    ("bad.yaml", "- just\n- a list\n", 1, None, "expected a NetDef mapping"),
    ("bad.yaml", "op:\n  - {type: X, arg: [{name: s, s: {base64: '%%%'}}]}\n", 2, 0, "invalid base64"),
    ("bad.json", '{"op": [}', 1, None, "bad JSON"),
    ("bad.pbtxt", 'op { type: "Relu" \n nosuch: 1 }', 2, None, "bad protobuf text"),
    ("bad.pb", b"\x12\xff\xff\xff", None, None, "not a valid NetDef protobuf"),
    ("bad.pb", b"\x00\x00\x00\x00", None, None, "NetDef protobuf"),
    ("bad.txt", "", None, None, "unknown net file extension"),
    ("model.yaml", "predict_net: {}\nweights: {}\n", 1, None, "unknown model key(s) weights"),
    ("model.yaml", "predict_net: {}\ninput_shapes: {X: [a]}\n", 2, None, "input_shapes: X"),
]


@pytest.mark.parametrize("name, content, line, op_index, message", BAD_FILES)
def test_bad_files_give_located_errors(tmp_path, name, content, line, op_index, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(NetFileError) as info:
        netfile.load_model(path)
    error = info.value
    assert message in str(error)
    assert error.file == str(path) and str(path) in str(error)
    assert (error.line, error.op_index) == (line, op_index)


def test_missing_file(tmp_path):
    with pytest.raises(NetFileError, match="cannot read"):
        netfile.load_net(tmp_path / "absent.yaml")


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_as_pb_give_netdef_or_our_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.pb"
    path.write_bytes(data)
    try:
        assert isinstance(netfile.load_net(path), caffe2_pb2.NetDef)
    except NetFileError:
        pass


@FUZZ
@given(prefix=st.binary(min_size=1, max_size=64))
def test_truncated_real_pb_gives_our_error_or_a_prefix(tmp_path_factory, prefix):
    data = rich_net().SerializeToString()
    path = tmp_path_factory.mktemp("fuzz") / "x.pb"
    path.write_bytes(data[:len(prefix) % len(data)])
    try:
        netfile.load_net(path)
    except NetFileError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["name", "op", "type", "arg", "input", "output", "i", "f",
                                       "s", "ints", "device_option", "device_id", "alpha", "n",
                                       "external_input", "dims", "t", "data_type", "zzz"]),
                      children, max_size=5),
    max_leaves=20)


@FUZZ
@given(tree=json_values)
def test_random_trees_give_netdef_or_our_error(tmp_path_factory, tree):
    folder = tmp_path_factory.mktemp("fuzz")
    for suffix, text in ((".json", json.dumps(tree)), (".yaml", json.dumps(tree))):
        path = folder / f"x{suffix}"
        path.write_text(text)
        try:
            netfile.load_model(path)
        except NetFileError:
            pass


@FUZZ
@given(text=st.text(max_size=120))
def test_random_text_as_yaml_and_pbtxt(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    for suffix in (".yaml", ".pbtxt"):
        path = folder / f"x{suffix}"
        path.write_bytes(text.encode("utf-8", "replace"))
        try:
            netfile.load_model(path)
        except NetFileError:
            pass


@pytest.mark.slow
def test_huge_repeated_field_is_read_or_refused_cleanly(tmp_path):
    net = caffe2_pb2.NetDef(name="big", external_input=[f"b{i}" for i in range(200_000)])
    for suffix in (".pb", ".yaml"):
        netfile.save_net(net, tmp_path / f"big{suffix}")
        assert len(netfile.load_net(tmp_path / f"big{suffix}").external_input) == 200_000
    (tmp_path / "lie.pb").write_bytes(b"\x3a\xff\xff\xff\xff\x0f" + b"x" * 10)
    with pytest.raises(NetFileError):
        netfile.load_net(tmp_path / "lie.pb")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("depth", [3_000, 100_000])
def test_deep_nesting_is_refused_cleanly(tmp_path, suffix, depth):
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(NetFileError):
        netfile.load_net(path)
    # Nets nested in args (Argument.n), valid JSON and YAML flow text.
    opening = '{"op": [{"type": "If", "arg": [{"name": "then", "n": '
    path.write_text(opening * (depth // 4) + '{"name": "x"}' + "}]}]}" * (depth // 4))
    with pytest.raises(NetFileError):
        netfile.load_net(path)
