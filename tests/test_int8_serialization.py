"""Int8 blobs (Int8Tensor) through Caffe2's serialization: one BlobProto of type
"Int8TensorCPU" holding a QTensorProto (caffe2/core/int8_serialization.cc), keyed by
the blob's name, never chunked. Save/Load on every DB backend, SerializeBlob and
DeserializeBlob, the predictor exporters, `pycaffe2 db info`; the exact bytes Caffe2
writes; bad records refused by name; FeedBlob of an Int8Tensor checked and atomic."""
import struct

import numpy as np
import pytest

from pycaffe2 import core, db, workspace
from pycaffe2.cli import main
from pycaffe2.errors import DBError, PyCaffe2Error
from pycaffe2.predictor import mobile_exporter
from pycaffe2.predictor import predictor_exporter as pe
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor
from tests.wire import field, varint
from tests.wire import ld as length

CODES = Int8Tensor(np.array([[0, 7, 128], [200, 255, 1]], dtype=np.uint8), 0.25, 3)
BIAS = Int8Tensor(np.array([-5, 0, 2 ** 31 - 1], dtype=np.int32), 0.5, 0)


@pytest.fixture(autouse=True)
def _fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def same(a: Int8Tensor, b: Int8Tensor) -> bool:
    return (isinstance(a, Int8Tensor) and a.data.dtype == b.data.dtype and np.array_equal(a.data, b.data)
            and (a.scale, a.zero_point) == (b.scale, b.zero_point))


# -- the wire format, written out by hand from caffe2.proto (proto2: dims unpacked, data packed)

def caffe2_bytes(name: str, value: Int8Tensor, data_type: int) -> bytes:
    """BlobProto{name=1, type=2, qtensor=5} as Caffe2's C++ serializer emits it (fields in number order)."""
    q = b"".join(field(1, 0, varint(d)) for d in value.data.shape)  # dims
    q += field(2, 0, varint(8))  # precision
    q += field(3, 1, struct.pack("<d", float(np.float32(value.scale))))  # scale (a float, widened)
    q += field(4, 1, struct.pack("<d", float(value.zero_point)))  # bias = zero_point
    q += field(5, 0, varint(0))  # is_signed = false
    q += length(6, b"".join(varint(int(v)) for v in value.data.ravel()))  # data, packed int32
    q += length(7, name.encode())  # name
    q += field(8, 0, varint(data_type))  # data_type
    return length(1, name.encode()) + length(2, b"Int8TensorCPU") + length(5, q)


@pytest.mark.parametrize("value, data_type", [(CODES, caffe2_pb2.TensorProto.UINT8),
                                              (BIAS, caffe2_pb2.TensorProto.INT32)])
def test_bytes_are_caffe2s(value, data_type):
    workspace.FeedBlob("q", value)
    assert workspace.SerializeBlob("q") == caffe2_bytes("q", value, data_type)
    (key, record), = db.serialize_blob("q", value)
    assert key == "q" and record == caffe2_bytes("q", value, data_type)  # no "#%0": never chunked


@pytest.mark.parametrize("value, data_type", [(CODES, caffe2_pb2.TensorProto.UINT8),
                                              (BIAS, caffe2_pb2.TensorProto.INT32)])
def test_caffe2_record_deserializes(value, data_type):
    assert workspace.DeserializeBlob("w", caffe2_bytes("w", value, data_type))
    assert same(workspace.FetchInt8Blob("w"), value)


def test_scale_is_kept_as_caffe2_keeps_it():
    workspace.FeedBlob("q", Int8Tensor(np.zeros(2, np.uint8), 0.1, 0))
    proto = caffe2_pb2.BlobProto.FromString(workspace.SerializeBlob("q"))
    assert proto.qtensor.scale == float(np.float32(0.1))
    workspace.DeserializeBlob("r", workspace.SerializeBlob("q"))
    assert workspace.FetchBlob("r").scale == float(np.float32(0.1))


@pytest.mark.parametrize("db_type", ["minidb", "lmdb", "leveldb"])
def test_save_load_round_trip(db_type, tmp_path):
    if db.missing_extra(db_type):
        pytest.skip(db.missing_extra(db_type))
    path = str(tmp_path / f"q.{db_type}")
    workspace.FeedBlob("codes", CODES)
    workspace.FeedBlob("bias", BIAS)
    workspace.FeedBlob("f", np.arange(3, dtype=np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Save", ["codes", "bias", "f"], [], db=path,
                                                  db_type=db_type, absolute_path=1))
    workspace.ResetWorkspace()
    workspace.RunOperatorOnce(core.CreateOperator("Load", [], [], db=path, db_type=db_type,
                                                  absolute_path=1, load_all=1))
    assert same(workspace.FetchBlob("codes"), CODES) and same(workspace.FetchBlob("bias"), BIAS)
    np.testing.assert_array_equal(workspace.FetchBlob("f"), np.arange(3, dtype=np.float32))
    assert sorted(db.blob_names(path, db_type)) == ["bias", "codes", "f"]


def test_a_caffe2_minidb_loads(tmp_path):
    """A minidb as Caffe2's Save writes it: Int8 records keyed by the bare name."""
    path = str(tmp_path / "caffe2.minidb")
    with db.create_db("minidb", path, db.Mode.new) as out:
        transaction = out.new_transaction()
        transaction.put("conv_w", caffe2_bytes("conv_w", CODES, caffe2_pb2.TensorProto.UINT8))
        transaction.put("conv_b", caffe2_bytes("conv_b", BIAS, caffe2_pb2.TensorProto.INT32))
        transaction.commit()
    blobs = db.load_blobs(path)
    assert same(blobs["conv_w"], CODES) and same(blobs["conv_b"], BIAS)
    assert main(["db", "info", path]) == 0


def test_db_info_describes_int8(tmp_path, capsys):
    path = str(tmp_path / "q.minidb")
    db.save_blobs(path, {"codes": CODES})
    assert "codes: [2, 3] Int8 uint8 (scale 0.25, zero_point 3)" in db.describe_db(path)


def qtensor_record(**fields) -> bytes:
    q = caffe2_pb2.QTensorProto(name="w", dims=[2], precision=8, scale=1.0, bias=0.0, is_signed=False,
                                data=[1, 2], data_type=caffe2_pb2.TensorProto.UINT8)
    for key, value in fields.items():
        if isinstance(value, list):
            q.ClearField(key)
            getattr(q, key).extend(value)
        else:
            setattr(q, key, value)
    return caffe2_pb2.BlobProto(name="w", type="Int8TensorCPU", qtensor=q).SerializeToString()


@pytest.mark.parametrize("fields, message", [
    ({"data_type": caffe2_pb2.TensorProto.FLOAT}, "is not UINT8 or INT32"),
    ({"dims": [3]}, "2 values do not fill dims [3]"),
    ({"dims": [-2]}, "negative size"),
    ({"dims": [1 << 40]}, "claim"),
    ({"scale": float("nan")}, "not a finite float"),
    ({"scale": 1e300}, "not a finite float"),
    ({"bias": 0.5}, "not a finite float and an int32"),
    ({"bias": 2.0 ** 40}, "not a finite float and an int32"),
])
def test_bad_records_are_refused_by_name(fields, message, tmp_path):
    path = str(tmp_path / "bad.minidb")
    with db.create_db("minidb", path, db.Mode.new) as out:
        transaction = out.new_transaction()
        transaction.put("w", qtensor_record(**fields))
        transaction.commit()
    with pytest.raises(DBError, match="record 'w'") as info:
        db.load_blobs(path)
    assert message in str(info.value)
    with pytest.raises(PyCaffe2Error, match="record 'w'"):
        workspace.RunOperatorOnce(core.CreateOperator("Load", [], ["w"], db=path, db_type="minidb",
                                                      absolute_path=1))
    assert not workspace.HasBlob("w")


def test_a_bad_record_leaves_the_blob_as_it_was():
    workspace.FeedBlob("w", CODES)
    with pytest.raises(DBError):
        workspace.DeserializeBlob("w", qtensor_record(dims=[5]))
    assert same(workspace.FetchBlob("w"), CODES)


def test_predictor_exporter_round_trip(tmp_path):
    net = core.Net("q")
    net.Int8FC(["x", "w", "b"], ["y"], Y_scale=1.0, Y_zero_point=0, dequantize_output=1)
    workspace.FeedBlob("w", CODES)
    workspace.FeedBlob("b", Int8Tensor(np.zeros(2, np.int32), 1.0, 0))
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    workspace.FeedBlob("x", x)
    workspace.RunNetOnce(net)
    expected = workspace.FetchBlob("y")
    path = str(tmp_path / "export.minidb")
    meta = pe.PredictorExportMeta(predict_net=net.Proto(), parameters=["w", "b"], inputs=["x"], outputs=["y"])
    pe.save_to_db("minidb", path, meta)
    workspace.ResetWorkspace()
    predict_net = pe.prepare_prediction_net(path, "minidb")
    assert same(workspace.FetchBlob("w"), CODES)
    workspace.FeedBlob("x", x)
    workspace.RunNet(predict_net.Proto().name)
    np.testing.assert_array_equal(workspace.FetchBlob("y"), expected)


def test_mobile_exporter_fills_int8_blobs():
    init_net = caffe2_pb2.NetDef()
    mobile_exporter.add_tensor(init_net, "w", CODES)
    mobile_exporter.add_tensor(init_net, "b", BIAS)
    assert [op.type for op in init_net.op] == ["Int8GivenTensorFill", "Int8GivenIntTensorFill"]
    workspace.RunNetOnce(init_net)
    assert same(workspace.FetchBlob("w"), CODES) and same(workspace.FetchBlob("b"), BIAS)


def test_int8_feed_fetch_round_trip():
    workspace.FeedBlob("q", CODES)
    fetched = workspace.FetchInt8Blob("q")
    assert same(fetched, CODES)
    fetched.data[0, 0] = 99  # a copy: the workspace keeps its own
    assert workspace.FetchInt8Blob("q").data[0, 0] == 0
    np.testing.assert_array_equal(workspace.FetchInt8BlobRealVal("q"), CODES.dequantize())
    workspace.FeedBlob("f", np.ones(2, np.float32))
    with pytest.raises(PyCaffe2Error, match="not fetching an Int8Blob"):
        workspace.FetchInt8Blob("f")


@pytest.mark.parametrize("value, error, message", [
    (Int8Tensor(np.ones(3, np.float32), 1.0, 0), TypeError, "uint8 .codes. or int32"),
    (Int8Tensor(np.ones(3, np.int64), 1.0, 0), TypeError, "not a int64 array"),
    (Int8Tensor([1, 2], 1.0, 0), TypeError, "not a list"),
    (Int8Tensor(np.ones(3, np.uint8), "a", 0), TypeError, "scale must be a float"),
    (Int8Tensor(np.ones(3, np.uint8), float("nan"), 0), ValueError, "finite and positive"),
    (Int8Tensor(np.ones(3, np.uint8), 0.0, 0), ValueError, "finite and positive"),
    (Int8Tensor(np.ones(3, np.uint8), 1.0, 0.5), TypeError, "zero_point must be an int32"),
    (Int8Tensor(np.ones(3, np.uint8), 1.0, 2 ** 31), TypeError, "zero_point must be an int32"),
])
def test_bad_int8_feed_is_refused_and_changes_nothing(value, error, message):
    workspace.FeedBlob("q", CODES)
    with pytest.raises(error, match=message):
        workspace.FeedBlob("q", value)
    with pytest.raises(error):
        workspace.FeedBlob("fresh", value)
    assert same(workspace.FetchBlob("q"), CODES) and not workspace.HasBlob("fresh")


def test_int8_feed_to_cuda_is_refused():
    option = core.DeviceOption(caffe2_pb2.PROTO_CUDA, 0)
    with pytest.raises(TypeError, match="lives on the CPU"):
        workspace.FeedBlob("q", CODES, option)
    assert not workspace.HasBlob("q")


def test_saving_a_bad_int8_value_names_the_blob():
    with pytest.raises(DBError, match="Int8 blob 'q' holds int64 data"):
        db.serialize_blob("q", Int8Tensor(np.ones(2, np.int64), 1.0, 0))
