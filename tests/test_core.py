"""core's Caffe2 behaviours: CreateOperator's arg values (MakeArgument's rules for
NumPy values, ranges, None, random_seed), Net names unique per process, and
execution_step's keyword args, Net.Const."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import arg_value, set_fields


def fields(op):
    """{arg name: (the Argument field that carries it, its value)}."""
    return {a.name: (set_fields(a)[0] if set_fields(a) else None, arg_value(a)) for a in op.arg}


@pytest.mark.parametrize("value, field, stored", [
    (np.array([[1, 2], [3, 4]], np.int64), "ints", [1, 2, 3, 4]),  # flattened, as MakeArgument
    (np.array([0.5, 1.5], np.float32), "floats", [0.5, 1.5]),
    (np.array([True, False]), "ints", [1, 0]),
    (np.int32(7), "i", 7),
    (np.float64(0.25), "f", 0.25),
    (np.bool_(True), "i", 1),
    (range(3), "ints", [0, 1, 2]),
    ([np.int64(2), np.int64(5)], "ints", [2, 5]),
    ((x * 0.5 for x in range(2)), "floats", [0.0, 0.5]),
])
def test_numpy_values_and_ranges_are_plain_args(value, field, stored):
    """An arg the schema does not know is stored by the value's kind."""
    op = core.CreateOperator("Relu", ["X"], ["Y"], made_up=value)
    assert fields(op) == {"made_up": (field, stored)}


def test_numpy_values_follow_the_schema_type():
    op = core.CreateOperator("ConstantFill", [], ["Y"], shape=np.array([2, 3]), value=np.float32(1.5))
    assert fields(op) == {"shape": ("ints", [2, 3]), "value": ("f", 1.5)}
    net = core.Net("numpy_args")
    net.Reshape(["X"], ["Y", "old"], shape=np.array([4, -1], np.int32))
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.arange(8, dtype=np.float32))
    workspace.RunNetOnce(net)
    assert workspace.FetchBlob("Y").shape == (4, 2)


def test_none_args_are_left_out_and_random_seed_goes_to_the_device_option():
    op = core.CreateOperator("GaussianFill", [], ["Y"], shape=[2], std=None, random_seed=5)
    assert [a.name for a in op.arg] == ["shape"]
    assert op.device_option.random_seed == 5


def test_ready_arguments_control_inputs_and_a_netdef_arg():
    ready = caffe2_pb2.Argument(name="alpha", f=0.5)
    body = caffe2_pb2.NetDef(name="body")
    op = core.CreateOperator("Elu", ["X"], ["Y"], arg=[ready], control_input=["c"], step_net=body)
    assert op.arg[0] == ready and list(op.control_input) == ["c"]
    assert op.arg[1].n == body


def test_an_arg_without_argument_form_is_refused():
    with pytest.raises(ValueError, match="has no Argument form"):
        core.CreateOperator("Relu", ["X"], ["Y"], made_up={"a": 1})


def test_net_names_are_unique_in_the_process():
    names = [core.Net("train").Name() for _ in range(3)]
    assert names == ["train", "train_1", "train_2"]
    assert core.Net(core.Net("eval").Proto()).Name() == "eval_1"  # from a NetDef too
    net = core.Net("model")
    assert net.Clone("model").Name() == "model_1"
    assert net.Clone("copy").Name() == "copy"


def counter_net(name, stop_at=None):
    """Adds 1 to `count`; with stop_at, sets `stop` once count reaches it."""
    net = core.Net(name)
    net.Add(["count", "one"], "count")
    if stop_at is not None:
        net.GE(["count", "limit"], "stop")
    return net


def run_plan(plan, limit=0):
    workspace.ResetWorkspace()
    for name, value in {"count": 0, "one": 1, "limit": limit}.items():
        workspace.FeedBlob(name, np.array([value], np.int64))
    workspace.RunPlan(plan.Proto())
    return int(workspace.FetchBlob("count")[0])


def test_execution_step_should_stop_blob():
    step = core.execution_step("loop", counter_net("count", stop_at=4), should_stop_blob="stop")
    assert step.Proto().should_stop_blob == "stop" and not step.Proto().HasField("num_iter")
    assert run_plan(core.Plan(step), limit=4) == 4


def test_execution_step_keywords_and_defaults():
    once = core.execution_step("once", counter_net("a"))
    assert once.Proto().num_iter == 1  # neither num_iter nor a stop blob: once
    step = core.execution_step("outer", [once, core.execution_step("every", counter_net("b"))],
                               num_iter=3, concurrent_substeps=False, only_once=False,
                               num_concurrent_instances=1, run_every_ms=5, create_workspace=True)
    proto = step.Proto()
    assert [s.name for s in proto.substep] == ["once", "every"]
    assert (proto.num_iter, proto.only_once, proto.num_concurrent_instances, proto.run_every_ms,
            proto.create_workspace) == (3, False, 1, 5, True)
    once_only = core.execution_step("first", counter_net("c"), only_once=True)
    plan = core.Plan("p")
    plan.AddStep(core.execution_step("outer", [once_only, core.execution_step("each", counter_net("d"))],
                                     num_iter=3))
    assert [n.name for n in plan.Proto().network] == ["c", "d"]
    assert run_plan(plan) == 1 + 3


def test_execution_step_refusals():
    net = counter_net("n")
    with pytest.raises(ValueError, match="Cannot set both should_stop_blob and num_iter"):
        core.execution_step("s", net, num_iter=2, should_stop_blob="stop")
    with pytest.raises(ValueError, match="must be a step, a net, or a list"):
        core.execution_step("s", "not a net")
    with pytest.raises(ValueError, match="Cannot have both network and substeps"):
        core.execution_step("s", net).AddSubstep(core.execution_step("t", net))
    assert not core.execution_step("empty", None).HasNets()
    plan = core.Plan("p")
    plan.AddStep(core.execution_step("empty", None))  # left out, as in Caffe2
    assert len(plan.Proto().execution_step) == 0


@pytest.mark.parametrize("value, dtype, fill, expected_dtype", [
    (np.arange(6).reshape(2, 3), np.int32, "GivenTensorIntFill", np.int32),
    ([3, 4], np.int64, "GivenTensorInt64Fill", np.int64),
    ([1.5, 2.5], None, "GivenTensorFill", np.float32),
    (np.array([True, False]), None, "GivenTensorBoolFill", np.bool_),
    (["ab", "c"], None, "GivenTensorStringFill", object),
])
def test_const_makes_the_given_tensor_fill_of_its_type(value, dtype, fill, expected_dtype):
    net = core.Net("const")
    blob = net.Const(value, dtype=dtype)
    assert net.Proto().op[-1].type == fill
    workspace = Workspace("const")
    workspace.RunNetOnce(net.Proto())
    got = workspace.FetchBlob(str(blob))
    expected = np.asarray(value, dtype=dtype)
    assert got.dtype == expected_dtype and got.shape == expected.shape
    if expected.dtype.kind in "US":
        assert got.tolist() == [v.encode() for v in expected.ravel().tolist()]
    else:
        np.testing.assert_array_equal(got, expected)


def test_const_of_a_python_bool_is_a_bool_scalar():
    net = core.Net("const_bool")
    blob = net.Const(True, blob_out="flag")
    assert str(blob) == "flag" and net.Proto().op[-1].type == "ConstantFill"
    workspace = Workspace("const_bool")
    workspace.RunNetOnce(net.Proto())
    assert workspace.FetchBlob("flag").dtype == np.bool_ and workspace.FetchBlob("flag").item() is True
