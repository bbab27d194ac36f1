"""workspace.C: Caffe2's C++ extension module in Python (pycaffe2.c_module): the
private Workspace() with its blobs and nets, and module functions over the current
workspace, as tutorials and Caffe2's tests call them."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.devices import cuda
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

C = workspace.C


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def relu_net(name="relu"):
    net = core.Net(name)
    net.Relu("X", "Y")
    return net


def test_private_workspace_blobs_and_nets():
    ws = C.Workspace()
    ws.create_blob("X").feed(np.array([-1.0, 2.0], np.float32))
    assert ws.has_blob("X") and not workspace.HasBlob("X")  # private
    net = ws.create_net(relu_net())
    assert list(ws.nets) == ["relu"] and isinstance(ws.nets["relu"], C.Net)
    net.run()
    ws.nets["relu"].run()
    assert sorted(ws.blobs) == ["X", "Y"] and isinstance(ws.blobs["Y"], C.Blob)
    np.testing.assert_array_equal(ws.blobs["Y"].fetch(), [0.0, 2.0])
    np.testing.assert_array_equal(ws.fetch_blob("Y"), [0.0, 2.0])
    assert ws.blobs["X"].is_tensor()
    with pytest.raises(KeyError):
        ws.blobs["absent"]
    assert ws.remove_blob("Y") is True and not ws.has_blob("Y") and ws.remove_blob("Y") is False


def test_run_takes_operators_nets_plans_and_their_bytes():
    ws = C.Workspace()
    ws.feed_blob("X", np.array([-3.0, 4.0], np.float32))
    ws.run(make_op("Scale", ["X"], ["S"], {"scale": 2.0}))
    ws.run(relu_net())
    plan = core.Plan("p")
    plan.AddStep(core.execution_step("twice", relu_net("again"), 2))
    ws.run(plan)
    ws._run_operator(make_op("Negative", ["S"], ["N"]).SerializeToString())
    ws._run_net(relu_net("bytes").Proto().SerializeToString())
    ws._run_plan(plan.Proto().SerializeToString())
    np.testing.assert_array_equal(ws.fetch_blob("N"), [6.0, -8.0])
    np.testing.assert_array_equal(ws.fetch_blob("Y"), [0.0, 4.0])
    with pytest.raises(PyCaffe2Error, match="takes an operator, net or plan"):
        ws.run("Relu")
    with pytest.raises(PyCaffe2Error, match="cannot parse a NetDef"):
        ws._run_net(b"\xff\xff")


def test_feed_takes_a_device_option_or_its_bytes_and_text():
    ws = C.Workspace()
    cpu = core.DeviceOption(caffe2_pb2.CPU)
    ws.create_blob("a").feed(np.ones(2, np.float32), cpu)
    ws.create_blob("b").feed(np.ones(2, np.float32), cpu.SerializeToString())
    ws.create_blob("t").feed(b"some text")
    np.testing.assert_array_equal(ws.blobs["b"].fetch(), [1.0, 1.0])
    assert ws.blobs["t"].fetch() == b"some text" and not ws.blobs["t"].is_tensor()


def test_blob_serialize_round_trip_between_workspaces():
    ws, other = C.Workspace(), C.Workspace()
    value = np.arange(6, dtype=np.int64).reshape(2, 3)
    ws.create_blob("a").feed(value)
    other.create_blob("a").deserialize(ws.blobs["a"].serialize("a"))
    np.testing.assert_array_equal(other.fetch_blob("a"), value)


def test_current_wraps_the_current_workspace():
    workspace.FeedBlob("X", np.ones(3, np.float32))
    current = C.Workspace.current
    assert "X" in current.blobs
    current.create_blob("Z").feed(np.zeros(1, np.float32))
    assert workspace.HasBlob("Z")
    assert C() is current.workspace


def test_module_functions_act_on_the_current_workspace():
    assert C.feed_blob("X", np.array([-1.0, 1.0], np.float32))
    assert C.has_blob("X") and C.blobs() == ["X"] == workspace.Blobs()
    assert C.create_net(relu_net().Proto().SerializeToString()) and C.nets() == ["relu"]
    assert C.run_net("relu", 2, False)
    np.testing.assert_array_equal(C.fetch_blob("Y"), [0.0, 1.0])
    assert C.get_blob_size_bytes("Y") == 8
    assert C.run_operator_once(make_op("Scale", ["Y"], ["Y2"], {"scale": 3.0}))
    assert C.run_operator_multiple(make_op("Scale", ["Y2"], ["Y2"], {"scale": 2.0}), 2)
    np.testing.assert_array_equal(C.fetch_blob("Y2"), [0.0, 12.0])
    assert C.run_net_once(relu_net("once")) and C.run_plan(core.Plan("empty").Proto())
    assert C.delete_net("relu") and C.nets() == []
    C.deserialize_blob("copy", C.serialize_blob("Y2"))
    np.testing.assert_array_equal(workspace.FetchBlob("copy"), [0.0, 12.0])
    assert C.create_blob("empty") and workspace.HasBlob("empty")


def test_named_workspaces_through_the_module():
    C.switch_workspace("other", True)
    assert C.current_workspace() == "other" == workspace.CurrentWorkspace()
    assert "other" in C.workspaces()
    C.feed_blob("X", np.ones(1, np.float32))
    assert C.reset_workspace() and C.blobs() == []
    C.switch_workspace("default")
    with pytest.raises(PyCaffe2Error, match="does not exist"):
        C.switch_workspace("never-made")


def test_registries_flags_and_setup():
    ops = C.registered_operators()
    assert ops == workspace.RegisteredOperators() and {"Relu", "FC", "Conv"} <= set(ops)
    assert "Relu" in C.nearby_opnames("Rleu")
    assert C.op_registry_key("Conv", "CUDNN") == "Conv_ENGINE_CUDNN" and C.op_registry_key("Conv", "") == "Conv"
    assert C.global_init(["caffe2", "--caffe2_log_level=0"]) is None
    with pytest.raises(PyCaffe2Error, match="list of strings"):
        C.global_init("caffe2")
    assert C.is_asan is False and C.has_mkldnn is False and C.use_mkldnn is False
    assert C.builtin_cpu_supports_avx2() is False and C.transform_exists("fuseConvBN") is False
    works = cuda.unavailable_reason() is None
    assert C.has_gpu_support is works and C.has_cuda_support is works and C.has_hip_support is False
    assert C.num_cuda_devices() == int(works) == workspace.NumGpuDevices()
    assert (C.get_cuda_version() > 0) is works and C.get_cudnn_version() == 0
    assert C.get_build_options()["USE_CUDA"] == ("ON" if works else "OFF")
    assert C.get_stats() == {} and C.is_numa_enabled() is False
