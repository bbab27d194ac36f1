"""Regression tests for hostile input (issue 14, part 1): each finding of the
fuzzing, reproduced. Every loader ends every bad input in a PyCaffe2Error
naming the file; on the command line that is one line and exit 2."""
import os
import struct
import zipfile

import numpy as np
import pytest

from pycaffe2 import db, netfile, workspace
from pycaffe2.cli import main
from pycaffe2.errors import DBError, NetError, NetFileError, PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.feeds import parse_feed
from pycaffe2.run.model import RunError
from tests.fuzz.harness import REPO

MLP = str(REPO / "nets" / "mlp.yaml")
DEEP = "# " + "[" * 10_001 + "\n"  # sends a YAML file to the pure-Python parser (see _yaml.py)


def one_line_error(capsys, argv, *expected) -> str:
    """Run the CLI: exit 2, one line on stderr naming each of `expected`."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in expected:
        assert str(part) in err, err
    return err


def relu_net(op_type: str = "Relu") -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="n", external_input=["X"], external_output=["Y"])
    net.op.add(type=op_type, input=["X"], output=["Y"])
    return net


def non_utf8_pb(tmp_path):
    """A .pb whose op type is the bytes R\\xffeu: protobuf decodes it as bytes, not str."""
    data = relu_net().SerializeToString().replace(b"\x04Relu", b"\x04R\xffeu")
    (tmp_path / "bad.pb").write_bytes(data)
    return tmp_path / "bad.pb"


# ---------------------------------------------------------------- .pb and .pbtxt

def test_a_pb_string_that_is_not_utf8_is_refused_by_every_command(tmp_path, capsys):
    path = non_utf8_pb(tmp_path)
    with pytest.raises(NetFileError, match=r"bad\.pb: op\[0\]\.type is not UTF-8 text"):
        netfile.load_model(path)
    assert main(["validate", str(path)]) == 2
    assert "op[0].type is not UTF-8 text" in capsys.readouterr().out
    one_line_error(capsys, ["convert", path, tmp_path / "out.json"], "bad.pb", "not UTF-8")
    assert not (tmp_path / "out.json").exists()
    one_line_error(capsys, ["run", path], "not UTF-8")
    one_line_error(capsys, ["graph", path, "-o", tmp_path / "g.dot"], "not UTF-8")


def test_create_net_of_a_net_parsed_by_hand_with_non_utf8_type_is_a_net_error(tmp_path):
    net = caffe2_pb2.NetDef()
    net.ParseFromString(non_utf8_pb(tmp_path).read_bytes())
    with pytest.raises(NetError):
        workspace.CreateNet(net)


def test_a_pb_missing_required_fields_is_refused(tmp_path):
    net = relu_net()
    net.op[0].arg.add(name="q").qtensors.add()  # QTensorProto has required fields
    (tmp_path / "q.pb").write_bytes(net.SerializePartialToString())
    with pytest.raises(NetFileError, match=r"q\.pb: required field op\[0\]\.arg\[0\]\.qtensors\[0\]"):
        netfile.load_model(tmp_path / "q.pb")


def test_a_deeply_nested_pbtxt_is_refused_not_a_recursion_error(tmp_path, capsys):
    (tmp_path / "deep.pbtxt").write_text("op { arg { name: 'a' n { " * 400 + "} } }" * 400)
    with pytest.raises(NetFileError, match=r"deep\.pbtxt: bad protobuf text: nested too deeply"):
        netfile.load_model(tmp_path / "deep.pbtxt")
    one_line_error(capsys, ["convert", tmp_path / "deep.pbtxt", tmp_path / "x.pb"], "nested too deeply")


def nested_net(levels: int) -> caffe2_pb2.NetDef:
    """Nets inside args inside nets: 2 messages per level."""
    net = relu_net()
    for _ in range(levels):
        outer = relu_net()
        outer.arg.add(name="sub").n.CopyFrom(net)
        net = outer
    return net


def test_nesting_that_pb_could_not_read_back_is_refused_in_every_format(tmp_path, capsys):
    # 40 levels parse as text; binary protobuf reads at most 100 nested messages.
    text = str(nested_net(40))
    (tmp_path / "nested.pbtxt").write_text(text)
    with pytest.raises(NetFileError, match="nested more than 64 deep"):
        netfile.load_model(tmp_path / "nested.pbtxt")
    one_line_error(capsys, ["convert", tmp_path / "nested.pbtxt", tmp_path / "n.pb"], "nested more than 64")
    assert not (tmp_path / "n.pb").exists()
    for suffix in (".pb", ".json", ".yaml"):
        with pytest.raises(NetFileError, match="cannot write messages nested more than 64"):
            netfile.save_net(nested_net(40), tmp_path / f"n{suffix}")
    netfile.save_net(nested_net(30), tmp_path / "ok.pb")  # 61 deep: written and read back
    assert netfile.load_net(tmp_path / "ok.pb") == nested_net(30)


# ---------------------------------------------------------------- JSON and YAML

@pytest.mark.parametrize("name, text, message", [
    ("sur.json", '{"external_input": ["X", "\\ud800"]}', "not valid Unicode (a lone surrogate)"),
    # libyaml refuses surrogates; the pure-Python parser, used for deep files, makes them
    ("sur.yaml", 'external_input: [X, "\\U0000D800"]\n' + DEEP, "not valid Unicode (a lone surrogate)"),
    ("key.json", '{"op": [{"ty\\udc80pe": "Relu"}]}', "not valid Unicode"),
    ("arg.yaml", 'op: [{type: Relu, arg: {"\\U0000DFFF": 1}}]\n' + DEEP, "not valid Unicode"),
    ("ints.json", '{"arg": [{"name": "a", "ints": [1, 99999999999999999999999]}]}', "arg[0].ints[1]"),
    ("enum.json", '{"device_option": {"device_type": 99999999999999999999}}', "device_type"),
    ("null.yaml", "predict_net: null\ninit_net: null\n", "predict_net is empty"),
    ("long.yaml", "predict_net: " + "a" * 5000 + ".pb\n", "predict_net: /"),
    ("nul.yaml", 'predict_net: "a\\0b.pb"\n', "embedded null byte"),
    ("cycle.yaml", "external_input: &a [*a]\n", "bad YAML"),
    ("self.yaml", "predict_net: self.yaml\n", "is a model file"),
    ("dtype.yaml", "predict_net: {name: n}\ninput_shapes: {X: {shape: [1], dtype: {a: 1}}}\n",
     "input_shapes: X"),
])
def test_json_and_yaml_faults_are_net_file_errors(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(NetFileError, match=name.replace(".", r"\.")) as caught:
        netfile.load_model(tmp_path / name)
    assert message in str(caught.value)
    one_line_error(capsys, ["convert", tmp_path / name, tmp_path / "out.pb"], name, message)


def test_yaml_aliases_that_expand_past_the_cap_are_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    (tmp_path / "laughs.yaml").write_text("\n".join(lines) + "\nexternal_input: *a7\n")
    with pytest.raises(NetFileError, match="more than 1,000,000 values once aliases are expanded"):
        netfile.load_model(tmp_path / "laughs.yaml")


def test_a_model_file_naming_another_model_file_is_refused(tmp_path):
    (tmp_path / "inner.yaml").write_text("predict_net: {name: n}\ninit_net: {name: i}\n")
    (tmp_path / "outer.yaml").write_text("predict_net: inner.yaml\n")
    with pytest.raises(NetFileError, match=r"outer\.yaml:1: predict_net: .*inner\.yaml is a model file"):
        netfile.load_model(tmp_path / "outer.yaml")


def test_arguments_with_two_value_fields_or_a_net_convert_field_by_field(tmp_path):
    net = relu_net()
    net.op[0].arg.add(name="order", f=1.5, s=b"NCHW")
    net.op[0].arg.add(name="sub").n.CopyFrom(relu_net())
    for suffix in (".json", ".yaml"):
        netfile.save_net(net, tmp_path / f"two{suffix}")
        assert netfile.load_net(tmp_path / f"two{suffix}") == net


# ---------------------------------------------------------------- special files

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_as_a_net_db_or_feed_is_refused_without_hanging(tmp_path, capsys):
    for name in ("net.pb", "model/predict_net.pb", "x.minidb", "x.npy", "x.npz"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        os.mkfifo(tmp_path / name)
    assert main(["validate", str(tmp_path / "net.pb")]) == 2
    assert "is not a regular file" in capsys.readouterr().out
    one_line_error(capsys, ["run", tmp_path / "net.pb"], "is not a regular file")
    one_line_error(capsys, ["run", tmp_path / "model"], "predict_net.pb: is not a regular file")
    one_line_error(capsys, ["db", "info", tmp_path / "x.minidb"], "x.minidb", "not a regular file")
    for feed in ("x.npy", "x.npz"):
        one_line_error(capsys, ["run", MLP, "--feed", f"data={tmp_path / feed}"], feed,
                       "not a regular file")
    one_line_error(capsys, ["db", "write", tmp_path / "x.npz", tmp_path / "o.minidb"], "not a regular")


def test_a_symlink_to_dev_zero_is_refused(tmp_path, capsys):
    if not os.path.exists("/dev/zero"):
        pytest.skip("needs /dev/zero")
    for name in ("zero.pb", "zero.yaml", "zero.minidb", "zero.npy"):
        os.symlink("/dev/zero", tmp_path / name)
    for name in ("zero.pb", "zero.yaml"):
        with pytest.raises(NetFileError, match="not a regular file"):
            netfile.load_model(tmp_path / name)
    with pytest.raises(DBError, match="not a regular file"):
        db.load_blobs(str(tmp_path / "zero.minidb"))
    with pytest.raises(RunError, match="not a regular file"):
        parse_feed(f"X={tmp_path / 'zero.npy'}")


# ---------------------------------------------------------------- minidb

def minidb(path, value: bytes, key: bytes = b"w#%0"):
    path.write_bytes(struct.pack("<ii", len(key), len(value)) + key + value)
    return path


def blob_record(**tensor) -> bytes:
    tensor = caffe2_pb2.TensorProto(name="w", data_type=caffe2_pb2.TensorProto.FLOAT, **tensor)
    return caffe2_pb2.BlobProto(name="w", type="Tensor", tensor=tensor).SerializeToString()


@pytest.mark.parametrize("tensor, message", [
    ({"dims": [3], "raw_data": b"12345"}, "raw_data of 5 bytes is not a whole number of float32 values"),
    ({"dims": [2**40, 2**40]}, "claim 1,208,925,819,614,629,174,706,176 elements"),
    ({"dims": [2**32, 2**32]}, "claim"),  # the product wraps to 0 in int64
    ({"dims": [-3]}, "negative size in dims [-3]"),
    ({"dims": [2**31, 16], "float_data": [1.0], "segment": {"begin": 0, "end": 1}}, "claim"),
])
def test_bad_tensor_dims_and_data_in_a_minidb_are_db_errors(tmp_path, capsys, tensor, message):
    if "segment" in tensor:
        tensor["segment"] = caffe2_pb2.TensorProto.Segment(**tensor["segment"])
    path = minidb(tmp_path / "bad.minidb", blob_record(**tensor))
    with pytest.raises(DBError, match="bad.minidb: record 'w#%0'") as caught:
        db.load_blobs(str(path))
    assert message in str(caught.value)
    one_line_error(capsys, ["db", "info", path], "bad.minidb", message)


def test_a_data_file_record_with_bad_dims_names_the_file(tmp_path, capsys):
    protos = caffe2_pb2.TensorProtos(protos=[caffe2_pb2.TensorProto(dims=[-1], data_type=1)])
    path = minidb(tmp_path / "data.minidb", protos.SerializeToString(), b"00000000")
    one_line_error(capsys, ["db", "info", path], "data.minidb: record '00000000'", "negative size")


# found by fuzzing: no elements, yet sizes NumPy cannot index; or more dims than NumPy takes
NOT_NUMPY_SHAPES = [([2**40, 2**40, 0], []), ([1] * 70, [1.0])]


@pytest.mark.parametrize("dims, values", NOT_NUMPY_SHAPES)
def test_a_saved_blob_numpy_cannot_shape_is_a_db_error(tmp_path, capsys, dims, values):
    path = minidb(tmp_path / "bad.minidb", blob_record(dims=dims, float_data=values))
    with pytest.raises(DBError, match=r"bad\.minidb: blob 'w': dims .* are not a NumPy shape"):
        db.load_blobs(str(path))
    one_line_error(capsys, ["db", "info", path], "bad.minidb", "not a NumPy shape")


@pytest.mark.parametrize("dims, values", NOT_NUMPY_SHAPES)
def test_a_data_file_tensor_numpy_cannot_shape_names_the_file(tmp_path, capsys, dims, values):
    protos = caffe2_pb2.TensorProtos(protos=[caffe2_pb2.TensorProto(dims=dims, data_type=1,
                                                                    float_data=values)])
    path = minidb(tmp_path / "data.minidb", protos.SerializeToString(), b"00000000")
    one_line_error(capsys, ["db", "info", path], "data.minidb: record '00000000'", "not a NumPy shape")


def test_int32_data_out_of_a_narrow_type_wraps_as_caffe2_did():
    from pycaffe2.tensor_proto import tensor_to_array
    tensor = caffe2_pb2.TensorProto(dims=[2], data_type=caffe2_pb2.TensorProto.UINT8, int32_data=[300, -1])
    assert tensor_to_array(tensor).tolist() == [44, 255]


def test_db_info_shows_keys_that_are_not_utf8_escaped(tmp_path, capsys):
    path = minidb(tmp_path / "k.minidb", blob_record(dims=[1], float_data=[2.0]), b"w\xff#%0")
    assert main(["db", "info", str(path)]) == 0
    assert "w\\xff#%0" in capsys.readouterr().out


def test_a_string_field_in_a_record_that_is_not_utf8_is_a_db_error(tmp_path):
    value = blob_record(dims=[1], float_data=[2.0]).replace(b"\n\x01w", b"\n\x01\xff", 1)
    path = minidb(tmp_path / "s.minidb", value)
    with pytest.raises(DBError, match=r"s\.minidb: record 'w#%0': name is not UTF-8 text"):
        db.load_blobs(str(path))


# ---------------------------------------------------------------- feeds

def npy_header(shape, descr="<f4") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_an_npy_header_claiming_terabytes_is_refused_before_allocating(tmp_path, capsys):
    (tmp_path / "big.npy").write_bytes(npy_header((1000000, 1000000)) + b"\0" * 16)
    one_line_error(capsys, ["run", MLP, "--feed", f"data={tmp_path / 'big.npy'}"],
                   "--feed data", "big.npy", "4,000,000,000,000 bytes, over the", "feed cap")


def test_an_npy_header_claiming_more_than_the_file_holds_is_refused(tmp_path):
    (tmp_path / "short.npy").write_bytes(npy_header((100,)) + b"\0" * 16)
    with pytest.raises(RunError, match="needs 400 bytes of data and the file holds 16"):
        parse_feed(f"X={tmp_path / 'short.npy'}")


@pytest.mark.parametrize("header, message", [
    (npy_header((3,), "|O"), "holds Python objects"),
    (npy_header((-1,)), "negative size"),
    (b"\x93NUMPY\x07\x00", "not supported"),
    (b"not numpy at all", "not a readable .npy file"),
    # no closing bracket: NumPy retries the header through tokenize, which raises TokenError
    (b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (1,   \n", "not a readable .npy file"),
])
def test_odd_npy_headers_are_run_errors(tmp_path, header, message):
    (tmp_path / "odd.npy").write_bytes(header + b"\0" * 64)
    with pytest.raises(RunError, match=message):
        parse_feed(f"X={tmp_path / 'odd.npy'}")


def test_an_npz_expanding_past_the_feed_cap_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    np.savez_compressed(tmp_path / "bomb.npz", data=np.zeros((1000, 1000), np.float32))
    assert (tmp_path / "bomb.npz").stat().st_size < 10_000  # 4 MB of zeros, compressed
    monkeypatch.setenv("PYCAFFE2_MAX_FEED_BYTES", "1000000")
    one_line_error(capsys, ["run", MLP, "--feed", f"data={tmp_path / 'bomb.npz'}"],
                   "bomb.npz:data", "4,000,000 bytes, over the 1,000,000-byte feed cap")
    one_line_error(capsys, ["db", "write", tmp_path / "bomb.npz", tmp_path / "o.minidb"], "feed cap")


def test_npz_members_together_stay_under_the_cap(tmp_path, monkeypatch):
    np.savez(tmp_path / "two.npz", a=np.zeros(100, np.float32), b=np.zeros(100, np.float32))
    monkeypatch.setenv("PYCAFFE2_MAX_FEED_BYTES", "600")
    with pytest.raises(DBError, match="over the 600-byte feed cap"):
        db.write_npz_to_minidb(str(tmp_path / "two.npz"), str(tmp_path / "o.minidb"))


def test_a_damaged_npz_is_a_run_error(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.arange(4.0))
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(RunError, match=r"cut\.npz: not a readable \.npz file"):
        parse_feed(f"X={tmp_path / 'cut.npz'}")
    with zipfile.ZipFile(tmp_path / "crc.npz", "w") as archive:
        archive.writestr("X.npy", data)  # an npz inside an npz: not an array
    with pytest.raises(RunError, match=r"crc\.npz:X: not a readable array"):
        parse_feed(f"X={tmp_path / 'crc.npz'}")


def test_an_npy_from_python_2_is_read(tmp_path):
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    (tmp_path / "py2.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
                                       + np.arange(2, dtype="<i8").tobytes())
    with pytest.warns(UserWarning):
        assert parse_feed(f"X={tmp_path / 'py2.npy'}")[1].tolist() == [0, 1]


def test_every_error_here_is_a_project_error():
    assert all(issubclass(e, PyCaffe2Error) for e in (NetFileError, DBError, RunError, NetError))


def test_a_bad_record_read_by_tensor_protos_db_input_names_the_db(tmp_path):
    from pycaffe2.executor import OpFailure, Workspace
    from pycaffe2.testing import make_op
    protos = caffe2_pb2.TensorProtos(protos=[caffe2_pb2.TensorProto(dims=[2], data_type=1, raw_data=b"abc")])
    path = str(minidb(tmp_path / "data.minidb", protos.SerializeToString(), b"00000000"))
    workspace = Workspace()
    workspace.RunNetOnce(caffe2_pb2.NetDef(name="init", op=[
        make_op("CreateDB", [], ["reader"], {"db": path, "db_type": "minidb"})]))
    read = caffe2_pb2.NetDef(name="read", op=[make_op("TensorProtosDBInput", ["reader"], ["data"])])
    with pytest.raises(OpFailure, match=r"data\.minidb: record '00000000': tensor '': raw_data of 3 bytes"):
        workspace.RunNetOnce(read)


def test_db_write_of_an_array_tensor_proto_cannot_hold_names_the_file(tmp_path, capsys):
    np.savez(tmp_path / "v.npz", X=np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]))
    one_line_error(capsys, ["db", "write", tmp_path / "v.npz", tmp_path / "o.minidb"],
                   "v.npz: array 'X': no TensorProto data type")
    assert not (tmp_path / "o.minidb").exists()


def test_validate_of_a_name_too_long_reports_it(tmp_path, capsys):
    assert main(["validate", str(tmp_path / ("a" * 5000 + ".pb"))]) == 2
    assert "cannot read" in capsys.readouterr().out


# -- args that ask for more memory than anyone has ------------------------------------------

def huge_fill_model(tmp_path):
    from pycaffe2 import core
    init, predict = core.Net("init"), core.Net("predict")
    init.ConstantFill([], "W", shape=[10 ** 6, 10 ** 6], value=1.0)
    predict.Relu("W", "Y")
    predict.AddExternalOutput("Y")
    path = tmp_path / "model.yaml"
    netfile.save_model(netfile.Model(predict.Proto(), init.Proto()), path)
    return path


def test_a_fill_too_large_to_allocate_is_refused_before_the_net_runs(tmp_path, capsys):
    path = huge_fill_model(tmp_path)
    assert main(["run", str(path)]) == 1  # the init net cannot be created: nothing ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4,000,000,000,000 bytes, over the" in err and "PYCAFFE2_MAX_BLOB_BYTES" in err
    assert main(["validate", str(path)]) == 1
    assert "ConstantFill" in capsys.readouterr().out


def test_the_blob_cap_is_set_by_the_environment(monkeypatch):
    from pycaffe2 import core
    from pycaffe2.executor import Workspace
    net = core.Net("fill")
    net.ConstantFill([], "x", shape=[4, 8], value=1.0, dtype=core.DataType.DOUBLE)
    monkeypatch.setenv("PYCAFFE2_MAX_BLOB_BYTES", "255")
    with pytest.raises(NetError, match=r"\[4, 8\] float64, 256 bytes, over the 255-byte cap"):
        Workspace().RunNetOnce(net.Proto())
    monkeypatch.setenv("PYCAFFE2_MAX_BLOB_BYTES", "256")
    workspace_ = Workspace()
    workspace_.RunNetOnce(net.Proto())
    assert workspace_.FetchBlob("x").shape == (4, 8)
