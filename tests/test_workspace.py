"""pycaffe2.workspace takes what Caffe2's workspace passed through StringifyProto: a
core object, its proto, or the proto's serialized bytes (Caffe2's python_op_test runs
`workspace.RunPlan(plan.Proto().SerializeToString())`)."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def scale_net(name, scale):
    net = core.Net(name)
    net.Scale("X", "Y", scale=scale)
    return net


@pytest.mark.parametrize("form", ["object", "proto", "bytes"])
def test_nets_plans_and_ops_in_every_form(form):
    def given(obj):
        proto = obj.Proto() if hasattr(obj, "Proto") else obj
        return {"object": obj, "proto": proto, "bytes": proto.SerializeToString()}[form]

    workspace.FeedBlob("X", np.array([1.0, -2.0], np.float32))
    assert workspace.RunNetOnce(given(scale_net("once", 2.0)))
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), [2.0, -4.0])
    assert workspace.CreateNet(given(scale_net("made", 3.0)))
    assert workspace.RunNet("made")
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), [3.0, -6.0])
    plan = core.Plan("plan")
    plan.AddStep(core.ExecutionStep("step", scale_net("stepped", 4.0), 2))
    assert workspace.RunPlan(given(plan))
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), [4.0, -8.0])
    op = make_op("Negative", ["X"], ["N"])
    assert workspace.RunOperatorOnce(given(op)) and workspace.RunOperatorsOnce([given(op)])
    np.testing.assert_array_equal(workspace.FetchBlob("N"), [-1.0, 2.0])
    shapes, types = workspace.InferShapesAndTypes([given(scale_net("inferred", 1.0))])
    assert shapes["Y"] == [2] and types["Y"] == caffe2_pb2.TensorProto.FLOAT


def test_run_operator_multiple_and_a_bare_execution_step():
    workspace.FeedBlob("C", np.array([0], np.int64))
    increment = make_op("Add", ["C", "One"], ["C"])
    workspace.FeedBlob("One", np.array([1], np.int64))
    assert workspace.RunOperatorMultiple(increment.SerializeToString(), 3)
    assert workspace.FetchBlob("C").tolist() == [3]
    net = core.Net("inc")
    net.Add(["C", "One"], "C")
    assert workspace.RunPlan(core.ExecutionStep("bare", net, 2))  # a step alone, as Caffe2 wraps it
    assert workspace.FetchBlob("C").tolist() == [5]


def test_bad_bytes_and_wrong_protos_say_what_was_expected():
    with pytest.raises(PyCaffe2Error, match="cannot parse a PlanDef"):
        workspace.RunPlan(b"\xff\xff")
    with pytest.raises(PyCaffe2Error, match="expected a NetDef"):
        workspace.RunNetOnce(make_op("Relu", ["X"], ["Y"]))
    with pytest.raises(PyCaffe2Error, match="expected a OperatorDef"):
        workspace.RunOperatorOnce("Relu")
