"""index family: IntIndexCreate, LongIndexCreate, StringIndexCreate, IndexGet,
IndexLoad, IndexStore, IndexFreeze and IndexSize against a plain dict, Save/Load
of an index (Caffe2's BlobProto), inference, and errors (wrong key type, a full
index, repeated items, a blob that is not an index) that leave the index as it was."""
import numpy as np
import pytest

from pycaffe2.executor import OpFailure, Workspace
from pycaffe2.minidb import MiniDB, Mode
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.tensor_proto import array_to_tensor
from pycaffe2.testing import make_op
from tests.schema import infer

KINDS = {"IntIndexCreate": np.int32, "LongIndexCreate": np.int64, "StringIndexCreate": object}


def run(workspace, op_type, inputs, outputs, **args):
    workspace.RunOperatorOnce(make_op(op_type, inputs, outputs, args))
    return [workspace.FetchBlob(name) for name in outputs]


def keys(create, values):
    if KINDS[create] is object:
        return np.array([f"k{v}".encode() for v in values], dtype=object)
    return np.array(values, KINDS[create])


def reference_get(ids, frozen, values):
    out = []
    for v in values:
        if v not in ids and not frozen:
            ids[v] = len(ids) + 1
        out.append(ids.get(v, 0))
    return np.array(out, np.int64)


@pytest.mark.parametrize("create", sorted(KINDS))
def test_index_ops_against_a_dict(create):
    workspace, ids = Workspace(), {}
    run(workspace, create, [], ["index"], max_elements=20)
    workspace.FeedBlob("items", keys(create, [4, 2, 9]))
    run(workspace, "IndexLoad", ["index", "items"], ["index"])
    reference_get(ids, False, keys(create, [4, 2, 9]).tolist())
    for frozen, batch in [(False, [[2, 5], [5, 3]]), (False, [7, 4, 7]), (True, [1, 9, 8]), (True, [])]:
        if frozen:
            run(workspace, "IndexFreeze", ["index"], ["index"])
        workspace.FeedBlob("q", keys(create, np.ravel(batch).tolist()).reshape(np.shape(batch)))
        (got,) = run(workspace, "IndexGet", ["index", "q"], ["ids"])
        expected = reference_get(ids, frozen, keys(create, np.ravel(batch).tolist()).tolist())
        np.testing.assert_array_equal(got, expected.reshape(np.shape(batch)))
        assert got.dtype == np.int64
    assert run(workspace, "IndexSize", ["index"], ["n"])[0] == len(ids) + 1
    (stored,) = run(workspace, "IndexStore", ["index"], ["stored"])
    np.testing.assert_array_equal(stored, np.array(sorted(ids, key=ids.get), dtype=KINDS[create]))
    run(workspace, create, [], ["index2"])
    run(workspace, "IndexLoad", ["index2", "stored"], ["index2"], skip_first_entry=1)
    assert run(workspace, "IndexSize", ["index2"], ["n"])[0] == len(ids)


def test_save_and_load_keep_keys_limit_and_frozen(tmp_path):
    workspace, path = Workspace(), str(tmp_path / "i.minidb")
    run(workspace, "StringIndexCreate", [], ["index"], max_elements=4)
    workspace.FeedBlob("q", np.array([b"a", b"b"], dtype=object))
    run(workspace, "IndexGet", ["index", "q"], ["ids"])
    run(workspace, "IndexFreeze", ["index"], ["index"])
    run(workspace, "Save", ["index"], [], db=path, db_type="minidb", absolute_path=1)
    workspace.FeedBlob("index", np.zeros(0))
    run(workspace, "Load", [], ["index"], db=path, db_type="minidb", absolute_path=1)
    workspace.FeedBlob("q", np.array([b"b", b"c", b"a"], dtype=object))
    np.testing.assert_array_equal(run(workspace, "IndexGet", ["index", "q"], ["ids"])[0], [2, 0, 1])
    assert workspace.FetchBlob("index") == b"index, a C++ native class of type std::unique_ptr<caffe2::IndexBase>."


def test_inference():
    assert infer("IndexGet", [None, TensorInfo((2, 3), "int32")]) == [TensorInfo((2, 3), "int64")]
    assert infer("IndexGet", [None, None]) == [None]
    assert infer("IndexSize", [None]) == [TensorInfo((), "int64")]
    with pytest.raises(ShapeError, match="keys must be int32, int64 or string keys, got float32"):
        infer("IndexGet", [None, (3,)])
    with pytest.raises(ShapeError, match=r"items must be 1-D, got shape \[2, 2\]"):
        infer("IndexLoad", [None, TensorInfo((2, 2), "int64")])


@pytest.mark.parametrize("op_type, feed, message", [
    ("IndexGet", np.array([1, 2], np.int32), r"keys must be int64 for an int64 index .*got int32"),
    ("IndexGet", np.array([1, 2, 3, 4], np.int64), "the index is full"),
    ("IndexLoad", np.array([5, 6, 5], np.int64), "items repeat the key 5"),
    ("IndexLoad", np.array([1, 7], np.int64), "items repeat the key 1"),
    ("IndexLoad", np.array([[5]], np.int64), r"items must be 1-D, got shape \[1, 1\]"),
])
def test_errors_leave_the_index(op_type, feed, message):
    workspace = Workspace()
    run(workspace, "LongIndexCreate", [], ["index"], max_elements=4)
    workspace.FeedBlob("first", np.array([1], np.int64))
    run(workspace, "IndexGet", ["index", "first"], ["ids"])
    workspace.FeedBlob("x", feed)
    with pytest.raises(OpFailure, match=message):
        run(workspace, op_type, ["index", "x"], ["index" if op_type == "IndexLoad" else "out"])
    np.testing.assert_array_equal(run(workspace, "IndexStore", ["index"], ["s"])[0], [1])


def test_skip_first_entry_needs_an_item():
    workspace = Workspace()
    run(workspace, "IntIndexCreate", [], ["index"])
    workspace.FeedBlob("x", np.zeros(0, np.int32))
    with pytest.raises(OpFailure, match="with skip_first_entry=1 items must be 1-D and non-empty"):
        run(workspace, "IndexLoad", ["index", "x"], ["index"], skip_first_entry=1)


@pytest.mark.parametrize("op_type", ["IndexSize", "IndexStore", "IndexFreeze"])
def test_a_blob_that_is_not_an_index(op_type):
    workspace = Workspace()
    run(workspace, "CreateCounter", [], ["c"])
    with pytest.raises(OpFailure, match="input 'c' must be an index made by IntIndexCreate.*got a Counter"):
        run(workspace, op_type, ["c"], ["c" if op_type == "IndexFreeze" else "out"])


@pytest.mark.parametrize("proto, message", [
    (caffe2_pb2.BlobProto(name="b", type="std::unique_ptr<caffe2::IndexBase>", content=b"x",
                          tensor=array_to_tensor(np.array([1], np.int64))), "needs 'max_elements frozen'"),
    (caffe2_pb2.BlobProto(name="b", type="std::unique_ptr<caffe2::IndexBase>", content=b"2 0",
                          tensor=array_to_tensor(np.array([1, 2, 3], np.int64))), "the index is full"),
    (caffe2_pb2.BlobProto(name="b", type="std::unique_ptr<caffe2::IndexBase>", content=b"9 0",
                          tensor=array_to_tensor(np.array([1.0]))), "holds float64 keys"),
    (caffe2_pb2.BlobProto(name="b", type="std::unique_ptr<Counter<int64_t>>",
                          tensor=array_to_tensor(np.array([1, 2], np.int64))), "must be one int64 value"),
    (caffe2_pb2.BlobProto(name="b", type="(std::unordered_map<int32_t, int64_t>)", content=b"\xff\xff"),
     "a saved map"),
])
def test_bad_saved_objects_give_clear_errors(proto, message, tmp_path):
    path = str(tmp_path / "bad.minidb")
    with MiniDB(path, Mode.new) as db:
        txn = db.new_transaction()
        txn.put("b", proto.SerializeToString())
        txn.commit()
    workspace = Workspace()
    with pytest.raises(OpFailure, match=message):
        run(workspace, "Load", [], ["b"], db=path, db_type="minidb", absolute_path=1)
    assert not workspace.HasBlob("b")
