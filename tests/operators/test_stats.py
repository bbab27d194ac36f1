"""stats family: StatRegistryCreate/Update/Export on a registry blob and on the
process-wide registry, the Put ops against Caffe2's event rule written here
(magnitude_expand, bound, default_value, StdDevPut's offsets), AtomicIter's stat,
inference, and errors that leave the stats as they were."""
import math

import numpy as np
import pytest

from pycaffe2.executor import OpFailure, Workspace
from pycaffe2.objects import GLOBAL_STATS
from pycaffe2.operators import stats as stats_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import make_op
from tests.schema import infer

INT64_MAX, INT64_MIN = 2 ** 63 - 1, -2 ** 63


def run(workspace, op_type, inputs, outputs, **args):
    workspace.RunOperatorOnce(make_op(op_type, inputs, outputs, args))
    return [workspace.FetchBlob(name) for name in outputs]


def exported(workspace, reset=0):
    keys, values, stamps = run(workspace, "StatRegistryExport", [], ["k", "v", "t"], reset=reset)
    assert keys.dtype == object and values.dtype == np.int64 and stamps.dtype == np.int64
    assert len(keys) == len(values) == len(stamps)
    return dict(zip(keys.tolist(), values.tolist()))


def test_registry_blob_update_and_export(monkeypatch):
    workspace = Workspace()
    monkeypatch.setattr(stats_kernels.time, "time_ns", lambda: 1_700_000_000_123_456_789)  # the export's clock
    run(workspace, "StatRegistryCreate", [], ["reg"])
    workspace.FeedBlob("k", np.array([b"b", b"a", b"b"], dtype=object))
    workspace.FeedBlob("v", np.array([3, 4, 5], np.int64))
    run(workspace, "StatRegistryUpdate", ["k", "v", "reg"], [])
    run(workspace, "StatRegistryUpdate", ["k", "v", "reg"], [])
    keys, values, stamps = run(workspace, "StatRegistryExport", ["reg"], ["k2", "v2", "t2"], reset=0)
    assert keys.tolist() == [b"a", b"b"] and values.tolist() == [8, 16]
    assert stamps.tolist() == [1_700_000_000_123_456_789] * 2  # each row stamped with the export's wall clock
    run(workspace, "StatRegistryExport", ["reg"], ["k2", "v2", "t2"])  # reset=1 by default
    assert run(workspace, "StatRegistryExport", ["reg"], ["k2", "v2", "t2"])[1].tolist() == [0, 0]
    assert workspace.FetchBlob("reg") == b"reg, a C++ native class of type std::unique_ptr<caffe2::StatRegistry>."


def reference_event(x, magnitude_expand=1, bound=False):
    limit = INT64_MAX // magnitude_expand
    if bound:
        if math.isnan(x):
            return 0
        return INT64_MIN if x <= -limit else INT64_MAX if x >= limit else math.trunc(x * magnitude_expand)
    return math.trunc(x * magnitude_expand)


@pytest.mark.parametrize("value, args", [
    (np.array([15.1111]), {"magnitude_expand": 10000}),
    (np.array([2.5], np.float32), {}),
    (np.array([-7], np.int32), {"magnitude_expand": 3}),
    (np.array([10.0]), {"magnitude_expand": 10 ** 18, "bound": 1}),
    (np.array([-1e20]), {"magnitude_expand": 10 ** 12, "bound": 1}),
    (np.array([np.nan]), {"bound": 1}),
    (np.zeros(0), {"default_value": 16.0, "magnitude_expand": 10 ** 12}),
])
def test_put_ops_against_the_event_rule(value, args):
    workspace = Workspace()
    x = float(value[0]) if value.size else args["default_value"]
    expected = reference_event(x, args.get("magnitude_expand", 1), bool(args.get("bound")))
    workspace.FeedBlob("x", value)
    for op_type in ["AveragePut", "IncrementPut", "StdDevPut"]:
        exported(workspace, reset=1)  # every stat back to 0
        run(workspace, op_type, ["x"], [], stat_name=f"test/{op_type}", **args)
        after = exported(workspace)
        group = f"test/{op_type}/stat_value".encode()
        if op_type == "IncrementPut":
            assert after[group] == expected
            continue
        assert after[group + b"/sum"] == expected
        assert after[group + b"/count"] == 1


def test_stddev_put_offsets_from_the_first_value():
    workspace = Workspace()
    net = caffe2_pb2.NetDef(name="puts")
    net.op.append(make_op("StdDevPut", ["x"], [], {"stat_name": "test/offsets"}))
    workspace.FeedBlob("x", np.array([0], np.int64))
    workspace.CreateNet(net)
    exported(workspace, reset=1)
    for v in [5, 8, 2]:
        workspace.FeedBlob("x", np.array([v], np.int64))
        workspace.RunNet("puts")
    stats = exported(workspace)
    key = b"test/offsets/stat_value/"
    assert stats[key + b"sum"] == 15 and stats[key + b"count"] == 3
    assert stats[key + b"sumoffset"] == 0 + 3 - 3 and stats[key + b"sumsqoffset"] == 0 + 9 + 9


def test_stat_name_defaults_to_the_input_name():
    workspace = Workspace()
    workspace.FeedBlob("test_default_name", np.array([2], np.int64))
    run(workspace, "IncrementPut", ["test_default_name"], [])
    assert exported(workspace)[b"test_default_name/stat_value"] >= 2


def test_atomic_iter_counts_its_runs():
    workspace = Workspace()
    run(workspace, "CreateMutex", [], ["m"])
    workspace.FeedBlob("test_iter", np.zeros(1, np.int64))
    before = exported(workspace).get(b"atomic_iter/stats/test_iter/num_iter", 0)
    for _ in range(3):
        run(workspace, "AtomicIter", ["m", "test_iter"], ["test_iter"])
    assert exported(workspace)[b"atomic_iter/stats/test_iter/num_iter"] - before == 3


def test_inference():
    assert infer("StatRegistryExport", [], 3) == [None, None, None]
    assert infer("StatRegistryUpdate", [TensorInfo((2,), "object"), TensorInfo((2,), "int64")], 0) == []
    with pytest.raises(ShapeError, match="values must be int64, got int32"):
        infer("StatRegistryUpdate", [TensorInfo((2,), "object"), TensorInfo((2,), "int32")], 0)
    with pytest.raises(ShapeError, match=r"as many elements, got \[2\] and \[3\]"):
        infer("StatRegistryUpdate", [TensorInfo((2,), "object"), TensorInfo((3,), "int64")], 0)
    with pytest.raises(ShapeError, match="value must be a numeric tensor, got bool"):
        infer("AveragePut", [TensorInfo((1,), "bool")], 0)


@pytest.mark.parametrize("op_type, value, args, message", [
    ("AveragePut", np.zeros(0), {}, "default_value must be given for the empty tensor of stat 'x'"),
    ("AveragePut", np.array([np.nan]), {}, "value of stat 'x' cannot be NaN"),
    ("IncrementPut", np.array([1e20]), {"magnitude_expand": 10 ** 12}, "is too large for magnitude_expand"),
    ("StdDevPut", np.array([True]), {}, "must be a numeric tensor, got bool"),
])
def test_put_errors_leave_the_stats(op_type, value, args, message):
    workspace = Workspace()
    workspace.FeedBlob("x", value)
    before = exported(workspace)
    with pytest.raises(OpFailure, match=message):
        run(workspace, op_type, ["x"], [], **args)
    assert exported(workspace) == before


def test_update_errors_leave_the_registry():
    workspace = Workspace()
    run(workspace, "StatRegistryCreate", [], ["reg"])
    workspace.FeedBlob("k", np.array([b"a", b"b"], dtype=object))
    workspace.FeedBlob("v", np.array([1, 2, 3], np.int64))
    with pytest.raises(OpFailure, match="keys and values must hold as many elements, got 2 and 3"):
        run(workspace, "StatRegistryUpdate", ["k", "v", "reg"], [])
    workspace.FeedBlob("v", np.array([1, 2], np.int64))
    with pytest.raises(OpFailure, match=r"input 'v' must be a stat registry made by StatRegistryCreate, "
                                        r"got a \[2\] int64 tensor"):
        run(workspace, "StatRegistryUpdate", ["k", "v", "v"], [])
    assert run(workspace, "StatRegistryExport", ["reg"], ["k2", "v2", "t2"])[0].tolist() == []
    assert GLOBAL_STATS is not workspace.blobs["reg"]


def test_timers():
    workspace = Workspace()
    exported(workspace, reset=1)
    run(workspace, "TimerBegin", [], ["timer"], counter_name="test/timer")
    assert workspace.FetchBlob("timer") == b"timer, a C++ native class of type caffe2::TimerInstance*."
    (nanos,) = run(workspace, "TimerGet", ["timer"], ["nanos"])
    assert nanos.shape == () and nanos.dtype == np.int64 and nanos >= 0
    run(workspace, "TimerEnd", ["timer"], [])
    run(workspace, "TimerBegin", [], ["timer"], counter_name="test/timer")
    (total,) = run(workspace, "TimerGetAndEnd", ["timer"], ["nanos"])
    assert total.shape == (1,) and total.dtype == np.int64 and total[0] >= 0
    stats = exported(workspace)
    assert stats[b"test/timer/time_ns/count"] == 2 and stats[b"test/timer/time_ns/sum"] >= total[0]
    assert infer("TimerGet", [None]) == [TensorInfo((), "int64")]
    assert infer("TimerGetAndEnd", [None]) == [TensorInfo((1,), "int64")]


def test_timer_errors():
    workspace = Workspace()
    net = caffe2_pb2.NetDef(name="begin")
    net.op.append(make_op("TimerBegin", [], ["timer"]))
    workspace.CreateNet(net)
    workspace.RunNet("begin")
    with pytest.raises(OpFailure, match="TimerBegin on timer 'timer', which is already running"):
        workspace.RunNet("begin")
    run(workspace, "TimerEnd", ["timer"], [])
    for op_type, outputs in [("TimerEnd", []), ("TimerGet", ["n"]), ("TimerGetAndEnd", ["n"])]:
        with pytest.raises(OpFailure, match="timer 'timer' is stopped"):
            run(workspace, op_type, ["timer"], outputs)
    workspace.FeedBlob("x", np.zeros(1))
    with pytest.raises(OpFailure, match=r"input 'x' must be a timer made by TimerBegin, got a \[1\] float64 tensor"):
        run(workspace, "TimerGet", ["x"], ["n"])
