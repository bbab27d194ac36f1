"""map family: CreateMap, KeyValueToMap and MapToKeyValue against a plain dict,
Save/Load of a map (Caffe2's BlobProto), inference, and errors."""
import itertools

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.objects import Map
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import make_op
from tests.schema import infer

TYPES = [np.int32, np.int64]
T = caffe2_pb2.TensorProto


def run(workspace, op_type, inputs, outputs, **args):
    workspace.RunOperatorOnce(make_op(op_type, inputs, outputs, args))
    return [workspace.FetchBlob(name) for name in outputs]


@pytest.mark.parametrize("key_type, value_type", list(itertools.product(TYPES, TYPES)))
def test_key_value_round_trip_through_save_and_load(key_type, value_type, tmp_path):
    workspace, path = Workspace(), str(tmp_path / "m.minidb")
    keys = np.array([[3, 1], [3, 7]], key_type)
    values = np.array([[5, 6], [9, -2]], value_type)
    workspace.FeedBlob("k", keys)
    workspace.FeedBlob("v", values)
    run(workspace, "KeyValueToMap", ["k", "v"], ["m"])
    expected = {}
    for key, value in zip(keys.ravel().tolist(), values.ravel().tolist()):
        expected.setdefault(key, value)
    run(workspace, "Save", ["m"], [], db=path, db_type="minidb", absolute_path=1)
    workspace.FeedBlob("m", np.zeros(1))
    run(workspace, "Load", [], ["m"], db=path, db_type="minidb", absolute_path=1, load_all=1)
    got_keys, got_values = run(workspace, "MapToKeyValue", ["m"], ["k2", "v2"])
    assert got_keys.dtype == key_type and got_values.dtype == value_type
    assert dict(zip(got_keys.tolist(), got_values.tolist())) == expected
    assert workspace.FetchBlob("m").endswith(
        f"(std::unordered_map<{np.dtype(key_type).name}_t, {np.dtype(value_type).name}_t>).".encode())


@pytest.mark.parametrize("key_dtype, value_dtype", list(itertools.product([T.INT32, T.INT64], repeat=2)))
def test_create_map_is_empty(key_dtype, value_dtype):
    workspace = Workspace()
    run(workspace, "CreateMap", [], ["m"], key_dtype=key_dtype, value_dtype=value_dtype)
    assert isinstance(workspace.blobs["m"], Map)
    keys, values = run(workspace, "MapToKeyValue", ["m"], ["k", "v"])
    assert keys.shape == values.shape == (0,)
    assert keys.dtype == (np.int32 if key_dtype == T.INT32 else np.int64)


def test_inference():
    assert infer("CreateMap", [], key_dtype=T.INT64) == [None]
    assert infer("KeyValueToMap", [TensorInfo((3,), "int32"), TensorInfo((3,), "int64")]) == [None]
    assert infer("MapToKeyValue", [None], 2) == [None, None]
    with pytest.raises(ShapeError, match="value_dtype must be INT32 or INT64, got FLOAT"):
        infer("CreateMap", [], value_dtype=T.FLOAT)
    with pytest.raises(ShapeError, match=r"as many elements, got \[3\] and \[2\]"):
        infer("KeyValueToMap", [TensorInfo((3,), "int32"), TensorInfo((2,), "int32")])


@pytest.mark.parametrize("op_type, feeds, args, message", [
    ("KeyValueToMap", [np.zeros(2, np.float32), np.zeros(2, np.int32)], {}, "keys must be int32 or int64, got float32"),
    ("KeyValueToMap", [np.zeros(2, np.int32), np.zeros(3, np.int32)], {}, "as many elements"),
    ("MapToKeyValue", [np.zeros(2, np.int32)], {}, r"input 'in0' must be a map made by CreateMap .*got a \[2\] int32"),
    ("CreateMap", [], {"key_dtype": T.STRING}, "key_dtype must be INT32 or INT64, got STRING"),
])
def test_errors(op_type, feeds, args, message):
    workspace = Workspace()
    names = [f"in{i}" for i in range(len(feeds))]
    for name, value in zip(names, feeds):
        workspace.FeedBlob(name, value)
    outputs = ["k", "v"] if op_type == "MapToKeyValue" else ["m"]
    with pytest.raises((OpFailure, NetError), match=message):
        run(workspace, op_type, names, outputs, **args)
