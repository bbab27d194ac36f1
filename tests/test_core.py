"""core's Caffe2 behaviours: CreateOperator's arg values (MakeArgument's rules for
NumPy values, ranges, None, random_seed), Net names unique per process, and
execution_step's keyword args."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
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
