"""The Workspace and the workspace module: Caffe2's API and behaviour."""
import numpy as np
import pytest

from pycaffe2 import workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op


def net_of(name, *ops, net_type="simple", external_input=()):
    net = caffe2_pb2.NetDef(name=name, type=net_type, external_input=list(external_input))
    net.op.extend(ops)
    return net


@pytest.fixture(autouse=True)
def fresh_module_workspace():
    workspace.SwitchWorkspace("default")
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def test_feed_fetch_copies():
    x = np.arange(4, dtype=np.float32)
    assert workspace.FeedBlob("X", x) is True
    x[0] = 100
    fetched = workspace.FetchBlob("X")
    assert fetched[0] == 0
    fetched[1] = 100
    assert workspace.FetchBlob("X")[1] == 1
    assert workspace.HasBlob("X") and workspace.Blobs() == ["X"]
    with pytest.raises(RuntimeError, match="Can't find blob: nope"):
        workspace.FetchBlob("nope")


def test_create_and_run_net():
    workspace.FeedBlob("X", np.array([-1.0, 2.0], np.float32))
    net = net_of("n", make_op("Relu", ["X"], ["Y"]), make_op("HardSigmoid", ["Y"], ["Z"], {"alpha": 0.5}))
    assert workspace.CreateNet(net)
    assert workspace.RunNet("n", num_iter=2)
    np.testing.assert_allclose(workspace.FetchBlob("Z"), [0.5, 1.0])
    with pytest.raises(RuntimeError, match="refuse to overwrite"):
        workspace.CreateNet(net)
    assert workspace.CreateNet(net, overwrite=True)
    with pytest.raises(RuntimeError, match="Can't find net other"):
        workspace.RunNet("other")


def test_external_inputs_are_created_empty():
    net = net_of("n", make_op("Relu", ["X"], ["Y"]), external_input=["X"])
    workspace.CreateNet(net)
    assert workspace.HasBlob("X")
    with pytest.raises(OpFailure, match="input blob 'X' has no value"):
        workspace.RunNet("n")
    assert workspace.RunNet("n", allow_fail=True) is False
    workspace.FeedBlob("X", np.ones(2, np.float32))
    assert workspace.RunNet("n")


def test_external_inputs_no_op_reads_are_not_made_blobs():
    """As in Caffe2 (its recurrent_net_executor_test lists Blobs() after CreateNet): only the
    blobs ops read, here or in a nested net, and input_blobs= become blobs."""
    inner = net_of("inner", make_op("Relu", ["Z"], ["W"]))
    outer = make_op("If", ["cond"], ["W"], {"then_net": inner})
    net = net_of("n", make_op("Relu", ["X"], ["Y"]), outer, external_input=["X", "cond", "unused", "Z"])
    workspace.CreateNet(net, input_blobs=["asked"])
    assert workspace.Blobs() == ["X", "Z", "asked", "cond"]


def test_failing_op_leaves_every_earlier_blob_untouched():
    ws = Workspace()
    ws.FeedBlob("X", np.array([1.0, -2.0], np.float32))
    ws.FeedBlob("Y", np.array([7.0], np.float32))
    ws.FeedBlob("bad_slope", np.ones(5, np.float32))
    net = net_of("n", make_op("Relu", ["X"], ["X"]),                    # in place, succeeds
                 make_op("PRelu", ["X", "bad_slope"], ["Y"]),           # fails: slope shape
                 make_op("Relu", ["X"], ["never"]))
    ws.CreateNet(net)
    before_y = ws.FetchBlob("Y")
    with pytest.raises(OpFailure) as info:
        ws.RunNet("n")
    error = info.value
    assert (error.net_name, error.op_index, error.op_type) == ("n", 1, "PRelu")
    assert "X [2] float32" in str(error) and "bad_slope [5] float32" in str(error)
    np.testing.assert_array_equal(ws.FetchBlob("X"), [1.0, 0.0])  # op 0 ran
    np.testing.assert_array_equal(ws.FetchBlob("Y"), before_y)
    assert not ws.HasBlob("never")
    ws.FeedBlob("bad_slope", np.ones(1, np.float32))
    assert ws.RunNet("n")  # still usable


def test_create_net_reports_every_schema_problem():
    net = net_of("broken", make_op("Relu", ["X", "Z"], ["Y"]), make_op("Relux", ["Y"], ["W"]))
    with pytest.raises(NetError) as info:
        workspace.CreateNet(net)
    text = str(info.value)
    assert "cannot create net broken" in text and "takes 1 input" in text and "Relux" in text
    assert "broken" not in workspace.C().nets


def test_net_must_have_a_name():
    with pytest.raises(RuntimeError, match="must have a name"):
        workspace.CreateNet(net_of("", make_op("Relu", ["X"], ["Y"])))


def test_run_net_once_and_operators_once():
    workspace.FeedBlob("X", np.array([-1.0, 1.0], np.float32))
    workspace.RunOperatorOnce(make_op("Relu", ["X"], ["Y"]))
    workspace.RunOperatorsOnce([make_op("Sigmoid", ["Y"], ["Z"]), make_op("Tanh", ["Z"], ["T"])])
    workspace.RunNetOnce(net_of("tmp", make_op("Relu", ["T"], ["U"])))
    assert workspace.HasBlob("U") and "tmp" not in workspace.C().nets


def test_switch_and_reset_workspaces():
    workspace.FeedBlob("A", np.zeros(1))
    workspace.SwitchWorkspace("other", create_if_missing=True)
    assert workspace.CurrentWorkspace() == "other" and not workspace.HasBlob("A")
    with pytest.raises(RuntimeError, match="does not exist"):
        workspace.SwitchWorkspace("missing")
    workspace.SwitchWorkspace("default")
    assert workspace.HasBlob("A")
    workspace.ResetWorkspace()
    assert workspace.Blobs() == []
    assert "other" in workspace.Workspaces()


def test_two_workspaces_side_by_side():
    a, b = Workspace("a"), Workspace("b")
    a.FeedBlob("X", np.ones(1))
    assert a.HasBlob("X") and not b.HasBlob("X")


def chain(name, net_type, branches=2, length=6):
    ops = []
    for branch in range(branches):
        blob = "X"
        for step in range(length):
            out = f"b{branch}_{step}"
            ops.append(make_op("Tanh" if step % 2 else "Sigmoid", [blob], [out]))
            blob = out
    ops.append(make_op("Relu", [f"b0_{length - 1}"], ["end"]))
    net = net_of(name, *ops, net_type=net_type)
    net.num_workers = 2
    return net


def test_dag_and_simple_give_the_same_results():
    results = []
    for net_type in ("simple", "dag"):
        ws = Workspace()
        ws.FeedBlob("X", np.linspace(-3, 3, 50).astype(np.float32))
        ws.CreateNet(chain("c", net_type))
        ws.RunNet("c", num_iter=3)
        results.append({name: ws.FetchBlob(name) for name in ws.Blobs()})
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_dag_failure_names_the_op_and_keeps_blobs():
    ws = Workspace()
    ws.FeedBlob("X", np.ones(3, np.float32))
    ws.FeedBlob("S", np.ones(2, np.float32))
    net = net_of("d", make_op("Relu", ["X"], ["A"]), make_op("PRelu", ["X", "S"], ["B"]), net_type="dag")
    net.num_workers = 2
    ws.CreateNet(net)
    with pytest.raises(OpFailure) as info:
        ws.RunNet("d")
    assert info.value.op_index == 1 and not ws.HasBlob("B")


def test_tensor_proto_feed():
    from pycaffe2.tensor_proto import array_to_tensor
    for array in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array([1.5], np.float16),
                  np.array([True, False]), np.array([[1.0, 2.0]], np.float64)):
        workspace.FeedBlob("T", array_to_tensor(array))
        got = workspace.FetchBlob("T")
        assert got.dtype == array.dtype and np.array_equal(got, array)


def test_unknown_device_is_refused_clearly():
    op = make_op("Relu", ["X"], ["Y"])
    op.device_option.device_type = 2  # MKLDNN
    with pytest.raises(NetError, match="device type 2 is not available"):
        workspace.CreateNet(net_of("gpu", op))
    assert isinstance(NetError("x"), PyCaffe2Error)


def test_caffe2_workspace_extras():
    workspace.FeedBlob("a", np.arange(5, dtype=np.float32))
    workspace.DeserializeBlob("b", workspace.SerializeBlob("a"))
    np.testing.assert_array_equal(workspace.FetchBlob("b"), np.arange(5))
    assert "a" in workspace.blobs and len(workspace.blobs) == 2 and list(workspace.blobs) == ["a", "b"]
    workspace.blobs["c"] = np.ones(2)
    assert workspace.blobs["c"].tolist() == [1.0, 1.0]
    with workspace.WorkspaceGuard("guarded"):
        assert workspace.CurrentWorkspace() == "guarded" and workspace.Blobs() == []
    assert workspace.CurrentWorkspace() == "default"
    assert {"HardSigmoid", "SpatialBN", "StopGradient"} <= set(workspace.RegisteredOperators())
    assert workspace.GlobalInit(["caffe2", "--caffe2_log_level=0"])


def test_c_binding_gives_the_current_workspace_and_private_ones():
    """workspace.C, Caffe2's C++ module: C() is the current Workspace; C.Workspace() a
    private one spelled like the binding (create_blob/feed, blobs[...].fetch, run)."""
    workspace.FeedBlob("X", np.ones(2, np.float32))
    assert workspace.C().HasBlob("X") and workspace.C.has_mkldnn is False
    ws = workspace.C.Workspace()
    assert "X" not in ws.blobs
    ws.create_blob("X").feed(np.arange(3, dtype=np.float32))
    ws.run(make_op("Scale", ["X"], ["Y"], {"scale": 2.0}))
    np.testing.assert_array_equal(ws.blobs["Y"].fetch(), [0, 2, 4])
    np.testing.assert_array_equal(workspace.FetchBlob("X"), [1, 1])  # the current one untouched
    with pytest.raises(KeyError):
        ws.blobs["missing"]


@pytest.mark.parametrize("value", [b"some text", np.arange(6, dtype=np.int64).reshape(2, 3)],
                         ids=["bytes", "array"])
def test_c_binding_blobs_serialize_and_deserialize(value):
    ws = workspace.C.Workspace()
    ws.create_blob("a").feed(value)
    serialized = ws.blobs["a"].serialize("a")
    assert isinstance(serialized, bytes)
    assert ws.create_blob("b").deserialize(serialized) is True
    np.testing.assert_array_equal(ws.blobs["b"].fetch(), value)
