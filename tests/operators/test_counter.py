"""counter family: CreateCounter, ResetCounter, CountDown, CheckCounterDone, CountUp
and RetrieveCount against a plain-Python counter, Save/Load of a counter (Caffe2's
BlobProto), FetchBlob of a counter, inference, and errors (a blob that is not a
counter, overflow) that leave the counter as it was."""
import numpy as np
import pytest

from pycaffe2.db import describe_db
from pycaffe2.executor import OpFailure, Workspace
from pycaffe2.objects import Counter
from pycaffe2.schema.bind import TensorInfo
from pycaffe2.testing import make_op
from tests.schema import infer


def run(workspace, op_type, inputs, outputs, **args):
    workspace.RunOperatorOnce(make_op(op_type, inputs, outputs, args))
    return [workspace.FetchBlob(name) for name in outputs]


# (op, args, reference: count -> (output, new count))
STEPS = [
    ("CountDown", {}, lambda c: (c <= 0, c - 1)),
    ("CheckCounterDone", {}, lambda c: (c <= 0, c)),
    ("CountUp", {}, lambda c: (c, c + 1)),
    ("RetrieveCount", {}, lambda c: (c, c)),
    ("ResetCounter", {"init_count": 7}, lambda c: (c, 7)),
    ("ResetCounter", {}, lambda c: (c, 0)),
]


@pytest.mark.parametrize("init", [-2, 0, 1, 5])
def test_counter_ops_against_a_reference(init):
    workspace = Workspace()
    run(workspace, "CreateCounter", [], ["c"], init_count=init)
    count = init
    for op_type, args, reference in STEPS * 2:
        (got,) = run(workspace, op_type, ["c"], ["out"], **args)
        expected, count = reference(count)
        assert got.shape == () and got.item() == expected, op_type
        assert got.dtype == (np.bool_ if op_type in ("CountDown", "CheckCounterDone") else np.int64)
        assert run(workspace, "RetrieveCount", ["c"], ["n"])[0].item() == count


def test_reset_counter_without_output():
    workspace = Workspace()
    run(workspace, "CreateCounter", [], ["c"], init_count=3)
    assert run(workspace, "ResetCounter", ["c"], [], init_count=9) == []
    assert run(workspace, "RetrieveCount", ["c"], ["n"])[0] == 9


def test_fetching_a_counter_describes_it():
    workspace = Workspace()
    run(workspace, "CreateCounter", [], ["c"])
    assert workspace.FetchBlob("c") == b"c, a C++ native class of type std::unique_ptr<Counter<int64_t>>."


def test_save_and_load_keep_the_count(tmp_path):
    workspace = Workspace()
    path = str(tmp_path / "c.minidb")
    run(workspace, "CreateCounter", [], ["c"], init_count=22)
    run(workspace, "Save", ["c"], [], db=path, db_type="minidb", absolute_path=1)
    assert "c: std::unique_ptr<Counter<int64_t>> Counter(22)" in describe_db(path)
    run(workspace, "CountDown", ["c"], ["t"])
    run(workspace, "Load", [], ["c"], db=path, db_type="minidb", absolute_path=1)
    assert run(workspace, "RetrieveCount", ["c"], ["n"])[0] == 22
    assert isinstance(workspace.blobs["c"], Counter)


def test_inference():
    assert infer("RetrieveCount", [None]) == [TensorInfo((), "int64")]
    assert infer("CountUp", [None]) == [TensorInfo((), "int64")]
    assert infer("CountDown", [None]) == [TensorInfo((), "bool")]
    assert infer("CheckCounterDone", [None]) == [TensorInfo((), "bool")]
    assert infer("ResetCounter", [None], 0) == []


@pytest.mark.parametrize("op_type", ["CountDown", "CountUp", "RetrieveCount", "ResetCounter", "CheckCounterDone"])
def test_a_blob_that_is_not_a_counter(op_type):
    workspace = Workspace()
    workspace.FeedBlob("x", np.zeros(2, np.int64))
    with pytest.raises(OpFailure, match=r"input 'x' must be a counter made by CreateCounter, "
                                        r"got a \[2\] int64 tensor"):
        run(workspace, op_type, ["x"], ["out"])


@pytest.mark.parametrize("op_type, init", [("CountUp", np.iinfo(np.int64).max),
                                           ("CountDown", np.iinfo(np.int64).min)])
def test_overflow_leaves_the_counter(op_type, init):
    workspace = Workspace()
    run(workspace, "CreateCounter", [], ["c"], init_count=int(init))
    with pytest.raises(OpFailure, match="would overflow"):
        run(workspace, op_type, ["c"], ["out"])
    assert run(workspace, "RetrieveCount", ["c"], ["n"])[0] == init
