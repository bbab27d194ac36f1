"""LastNWindowCollector against a reference ring buffer written here, over
several batches (fewer rows than the window, more, none), with NUM_VISITED and
a mutex; inference and errors (which leave every blob as it was)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op
from tests.schema import infer


def reference(batches, limit):
    """(buffer, cursor, seen) after the batches, by Caffe2's rule, row by row."""
    buffer, cursor, seen = None, 0, 0
    for batch in batches:
        seen += len(batch)
        if len(batch) == 0:
            buffer = batch.copy() if buffer is None or buffer.size == 0 else buffer
            continue
        if len(batch) > limit:
            buffer, cursor = batch[-limit:].copy(), 0
            continue
        rows = [] if buffer is None or buffer.size == 0 else list(buffer)
        for row in batch:
            if cursor < len(rows):
                rows[cursor] = row
            else:
                rows.append(row)
            cursor = (cursor + 1) % limit
        buffer = np.array(rows)
    return buffer, cursor, seen


BATCHES = [
    [np.arange(6.0).reshape(3, 2), np.arange(10.0, 18.0).reshape(4, 2), np.zeros((0, 2)), np.ones((2, 2))],
    [np.arange(9, dtype=np.int32).reshape(9, 1), np.arange(2, dtype=np.int32).reshape(2, 1)],
    [np.zeros((0, 3), np.float32), np.arange(3, dtype=np.float32).reshape(1, 3)],
    [np.arange(5, dtype=np.int64)] * 3,
]


@pytest.mark.parametrize("batches", BATCHES)
@pytest.mark.parametrize("limit", [1, 4, 7])
def test_collects_the_last_rows(batches, limit):
    workspace = Workspace()
    workspace.FeedBlob("buffer", np.zeros(0, np.float32))
    workspace.FeedBlob("next", np.array(0, np.int32))
    workspace.FeedBlob("seen", np.zeros(1, np.int64))
    workspace.RunOperatorOnce(make_op("CreateMutex", [], ["mutex"]))
    op = make_op("LastNWindowCollector", ["buffer", "next", "data", "mutex", "seen"], ["buffer", "next", "seen"],
                 {"num_to_collect": limit})
    for batch in batches:
        workspace.FeedBlob("data", batch)
        workspace.RunOperatorOnce(op)
    buffer, cursor, seen = reference(batches, limit)
    np.testing.assert_array_equal(workspace.FetchBlob("buffer"), buffer)
    assert workspace.FetchBlob("buffer").dtype == batches[0].dtype
    assert workspace.FetchBlob("next").shape == () and workspace.FetchBlob("next") == cursor
    assert workspace.FetchBlob("seen").tolist() == [seen]


def test_one_batch_against_the_reference():
    data = np.arange(12.0, dtype=np.float32).reshape(6, 2)

    def ref(buffer, cursor, rows, num_to_collect):
        got, next_cursor, _ = reference([rows], num_to_collect)
        return got, np.array(next_cursor, np.int32)
    check_reference("LastNWindowCollector", [np.zeros(0, np.float32), np.array(0, np.int32), data], ref,
                    {"num_to_collect": 4}, num_outputs=2)


def test_inference():
    infos = [None, TensorInfo((), "int32"), TensorInfo((3, 2), "float32")]
    assert infer("LastNWindowCollector", infos, 2, num_to_collect=2) == [None, TensorInfo((), "int32")]
    with pytest.raises(ShapeError, match=r"next cursor must be an int32 scalar \[\], got \[1\] int32"):
        infer("LastNWindowCollector", [None, TensorInfo((1,), "int32"), (3,)], 2, num_to_collect=2)
    with pytest.raises(ShapeError, match="output NUM_VISITED needs input NUM_VISITED"):
        infer("LastNWindowCollector", [None, None, (3,)], 3, num_to_collect=2)


@pytest.mark.parametrize("buffer, cursor, data, message", [
    (np.zeros((2, 3)), 0, np.zeros((1, 2)), r"the buffer \[2, 3\] float64 does not hold rows of DATA \[1, 2\]"),
    (np.zeros((2, 2), np.float32), 0, np.zeros((1, 2)), "does not hold rows of DATA"),
    (np.zeros((3, 2)), 5, np.zeros((1, 2)), "next cursor 5 is outside the buffer's 4 rows"),
    (np.zeros((9, 2)), 0, np.zeros((1, 2)), "holds 9 rows, more than num_to_collect=4"),
    (np.zeros(0), 0, np.array(1.0), "DATA must have rank >= 1"),
])
def test_errors_leave_the_blobs(buffer, cursor, data, message):
    workspace = Workspace()
    feeds = {"buffer": buffer, "next": np.array(cursor, np.int32), "data": data}
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    op = make_op("LastNWindowCollector", ["buffer", "next", "data"], ["buffer", "next"], {"num_to_collect": 4})
    with pytest.raises((OpFailure, NetError), match=message):
        workspace.RunOperatorOnce(op)
    for name, value in feeds.items():
        np.testing.assert_array_equal(workspace.FetchBlob(name), value)
