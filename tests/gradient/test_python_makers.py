"""Caffe2's rules for backward passes built from makers registered in Python
(GradientRegistry.RegisterGradient), and the naming and refusals Caffe2 users
rely on: autosplit numbering, unmarked seeds and sums, StopGradient misuse,
gradients that would be taken for another version of a blob."""
import pytest

from pycaffe2 import core
from pycaffe2.errors import GradientError, OrphanStopGradient
from pycaffe2.gradient import PYTHON_GRADIENT_MAKERS, GetBackwardPass, GradientRegistry
from pycaffe2.proto import caffe2_pb2


def signature(ops):
    return [(op.type, list(op.input), list(op.output)) for op in ops]


@pytest.fixture(autouse=True)
def makers():
    """Two op types no schema knows: Pass (dy -> dx) and Opaque (no gradient)."""
    saved = dict(PYTHON_GRADIENT_MAKERS)

    @GradientRegistry.RegisterGradient("Pass")
    def pass_gradient(op, g_output):
        grads = [f"{name}_grad" for name in op.input]
        return core.CreateOperator("PassGrad", list(g_output), grads), grads

    @GradientRegistry.RegisterGradient("Opaque")
    def opaque_gradient(op, g_output):
        return [], [None] * len(op.input)
    yield
    PYTHON_GRADIENT_MAKERS.clear()
    PYTHON_GRADIENT_MAKERS.update(saved)


def op(op_type, inputs, outputs):
    return core.CreateOperator(op_type, inputs, outputs)


def test_ops_without_schema_take_part_through_their_python_maker_and_are_kept_as_made():
    ops = [op("Pass", "x", "h"), op("Pass", "h", "y")]
    grad_ops, grad_map = GetBackwardPass(ops, {"y": "dy"})
    assert signature(grad_ops) == [("PassGrad", ["dy"], ["h_grad"]), ("PassGrad", ["h_grad"], ["x_grad"])]
    assert not any(g.is_gradient_op or g.HasField("device_option") for g in grad_ops)
    assert grad_map == {"y": "dy", "h": "h_grad", "x": "x_grad"}


def test_registering_again_replaces_the_maker():
    @GradientRegistry.RegisterGradient("Pass")
    def other(op, g_output):
        return [core.CreateOperator("Other", list(g_output), ["x_grad"])], ["x_grad"]
    grad_ops, _ = GetBackwardPass([op("Pass", "x", "y")], {"y": "dy"})
    assert [g.type for g in grad_ops] == ["Other"]


def test_a_maker_giving_no_input_gradients_adds_nothing_to_the_fan_in():
    ops = [op("Pass", "x", "a"), op("Opaque", "x", "b"), op("Pass", ["a", "b"], "y")]
    grad_ops, _ = GetBackwardPass(ops, {"y": "dy"})
    assert signature(grad_ops) == [("PassGrad", ["dy"], ["a_grad", "b_grad"]), ("PassGrad", ["a_grad"], ["x_grad"])]


def test_seeds_and_sums_are_plain_ops_and_sums_take_the_device_of_the_gradient_ops():
    @GradientRegistry.RegisterGradient("Pass")
    def on_device(op, g_output):
        grads = [f"{name}_grad" for name in op.input]
        grad_op = core.CreateOperator("PassGrad", list(g_output), grads, device_option=op.device_option)
        return grad_op, grads
    gpu = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.CUDA, device_id=1)
    ops = [op("Pass", "x", "a"), op("Pass", "x", "b"), op("Pass", ["a", "b"], "y")]
    for forward in ops:
        forward.device_option.CopyFrom(gpu)
    grad_ops, _ = GetBackwardPass(ops, ["y"])
    assert grad_ops[0] == core.CreateOperator("ConstantFill", ["y"], ["y_autogen_grad"], value=1.0)
    total = grad_ops[-1]
    assert signature([total]) == [("Sum", ["x_grad", "_x_grad_autosplit_0"], ["x_grad"])]
    assert not total.is_gradient_op and total.device_option == gpu


def test_autosplit_numbers_start_afresh_for_each_version_of_a_blob():
    ops = [op("Pass", "x", "a"), op("Pass", "x", "b"), op("Pass", ["a", "b"], "x"),
           op("Pass", "x", "c"), op("Pass", "x", "d"), op("Pass", ["c", "d"], "y")]
    grad_ops, _ = GetBackwardPass(ops, {"y": "dy"})
    sums = [list(g.input) for g in grad_ops if g.type == "Sum"]
    assert sums == [["x_grad", "_x_grad_autosplit_0"], ["x_grad", "_x_grad_autosplit_0"]]


def test_in_place_stop_gradient_takes_the_blob_out_of_the_gradient_map():
    ops = [op("Pass", "x", "h"), op("StopGradient", "h", "h"), op("Pass", "h", "y")]
    grad_ops, grad_map = GetBackwardPass(ops, {"y": "dy"})
    assert signature(grad_ops) == [("PassGrad", ["dy"], ["h_grad"])]
    assert grad_map == {"y": "dy"}


def test_a_stop_gradient_whose_output_nothing_reads_is_refused_as_a_value_error():
    ops = [op("Pass", "x", "h"), op("StopGradient", "h", "stopped"), op("Pass", "h", "y")]
    with pytest.raises(OrphanStopGradient, match=r"op 1 \(StopGradient\): its output 'stopped' is read by no op"):
        GetBackwardPass(ops, {"y": "dy"})
    assert issubclass(OrphanStopGradient, ValueError) and issubclass(OrphanStopGradient, GradientError)


def test_a_gradient_that_belongs_to_another_version_of_the_output_is_refused():
    # x is written by op 0, overwritten unread by op 1; y's gradient reaches x version 2 only
    ops = [op("Pass", "x", "x"), op("Pass", "y", "x"), op("Pass", "x", "y")]
    with pytest.raises(GradientError, match=r"op 0 \(Pass\): output 0 'x' \(version 1\) gets no gradient, but the "
                                            r"gradient under its name belongs to version 2"):
        GetBackwardPass(ops, {"y": "dy"})


def test_a_python_maker_reading_an_overwritten_output_is_refused():
    @GradientRegistry.RegisterGradient("KeepOut")
    def keep_out(op, g_output):
        return core.CreateOperator("KeepOutGrad", [op.output[0], g_output[0]], ["x_grad"]), ["x_grad"]
    ops = [op("KeepOut", "x", "h"), op("Pass", "h", "h"), op("Pass", "h", "y")]
    with pytest.raises(GradientError, match=r"op 0 \(KeepOut\).*needs output 0 'h' at version 1.*leaves version 2"):
        GetBackwardPass(ops, {"y": "dy"})


def test_a_python_maker_reading_a_blob_out_of_its_scope_is_refused():
    @GradientRegistry.RegisterGradient("Stray")
    def stray(op, g_output):
        return core.CreateOperator("StrayGrad", ["elsewhere", g_output[0]], ["x_grad"]), ["x_grad"]
    with pytest.raises(GradientError, match=r"op 0 \(Stray\): gradient op StrayGrad reads 'elsewhere'"):
        GetBackwardPass([op("Stray", "x", "y")], {"y": "dy"})


def test_a_python_maker_must_give_one_gradient_per_input():
    @GradientRegistry.RegisterGradient("Short")
    def short(op, g_output):
        return [], []
    with pytest.raises(GradientError, match=r"gave 0 input gradient\(s\) for 2 input\(s\)"):
        GetBackwardPass([op("Short", ["a", "b"], "y")], {"y": "dy"})


def test_an_op_its_schema_refuses_is_reported_before_its_maker_runs():
    net = core.Net("miscounted")
    net.Mul(["a"], ["m"])  # Mul takes two inputs
    net.Relu("m", "y")
    with pytest.raises(GradientError, match=r"op 0 \(Mul\): does not pass its schema check: takes 2 input\(s\), got 1"):
        net.AddGradientOperators(["y"])
