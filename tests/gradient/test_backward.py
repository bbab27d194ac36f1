"""Backward passes: Caffe2's naming, fan-out sums, in-place versions, stop-gradient, errors."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.executor import Workspace
from pycaffe2.gradient import GetBackwardPass, GradientError
from pycaffe2.proto import caffe2_pb2
from tests.gradient.marks import assert_backward_ops_marked


def signature(ops):
    return [(op.type, list(op.input), list(op.output)) for op in ops]


def test_chain_names_inherits_args_and_device_and_marks_gradient_ops():
    net = core.Net("chain")
    device = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CPU, random_seed=7)
    net.HardSigmoid("X", "h", alpha=0.3, device_option=device, engine="FAST")
    net.Relu("h", "y")
    grad_map = net.AddGradientOperators(["y"])
    assert grad_map == {"y": "y_autogen_grad", "h": "h_grad", "X": "X_grad"}
    grad_ops = net.Proto().op[2:]
    assert signature(grad_ops) == [
        ("ConstantFill", ["y"], ["y_autogen_grad"]),
        ("ReluGradient", ["y", "y_autogen_grad"], ["h_grad"]),
        ("HardSigmoidGradient", ["h", "h_grad"], ["X_grad"])]
    assert_backward_ops_marked(grad_ops)
    assert not grad_ops[0].is_gradient_op and all(op.is_gradient_op for op in grad_ops[1:])
    hard_sigmoid_grad = grad_ops[2]
    assert [(a.name, a.f) for a in hard_sigmoid_grad.arg] == [("alpha", pytest.approx(0.3))]
    assert hard_sigmoid_grad.device_option.random_seed == 7 and hard_sigmoid_grad.engine == "FAST"


def test_given_gradient_blob_is_used_instead_of_ones():
    net = core.Net("given")
    net.Sigmoid("X", "y")
    assert net.AddGradientOperators({"y": "dy"}) == {"y": "dy", "X": "X_grad"}
    assert signature(net.Proto().op[1:]) == [("SigmoidGradient", ["y", "dy"], ["X_grad"])]


def test_fan_out_is_summed_over_uniquely_named_parts():
    net = core.Net("fan")
    net.Sigmoid("X", "a")
    net.Tanh("X", "b")
    net.Relu("X", "c")
    grad_map = net.AddGradientOperators(["a", "b", "c"])
    assert grad_map["X"] == "X_grad"
    assert signature(net.Proto().op[6:]) == [
        ("ReluGradient", ["c", "c_autogen_grad"], ["X_grad"]),
        ("TanhGradient", ["b", "b_autogen_grad"], ["_X_grad_autosplit_0"]),
        ("SigmoidGradient", ["a", "a_autogen_grad"], ["_X_grad_autosplit_1"]),
        ("Sum", ["X_grad", "_X_grad_autosplit_0", "_X_grad_autosplit_1"], ["X_grad"])]
    workspace = Workspace()
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(net.Proto())
    s, t = 1 / (1 + np.exp(-x)), np.tanh(x)
    np.testing.assert_allclose(workspace.FetchBlob("X_grad"), s * (1 - s) + (1 - t * t) + (x > 0), rtol=1e-6)


def test_in_place_ops_chain_their_versions():
    net = core.Net("inplace")
    net.Softsign("X", "h")  # its gradient reads X and dY only
    net.Relu("h", "h")      # in place; its gradient reads the final h
    grad_map = net.AddGradientOperators(["h"])
    assert signature(net.Proto().op[2:]) == [
        ("ConstantFill", ["h"], ["h_autogen_grad"]),
        ("ReluGradient", ["h", "h_autogen_grad"], ["h_grad"]),
        ("SoftsignGradient", ["X", "h_grad"], ["X_grad"])]
    assert grad_map == {"h": "h_grad", "X": "X_grad"}


def test_two_in_place_ops_whose_first_gradient_needs_its_output_are_refused():
    net = core.Net("chain")
    net.Sigmoid("X", "h")
    net.Relu("h", "h")
    with pytest.raises(GradientError, match=r"op 0 \(Sigmoid\).*needs output 0 'h' at version 1.*leaves version 2 "
                                            r"\(writes: v1 by op 0 \(Sigmoid\), v2 by op 1 \(Relu\)\)"):
        net.AddGradientOperators(["h"])


def test_gradient_reading_an_overwritten_version_is_refused():
    net = core.Net("bad")
    net.Softsign("X", "y")  # its gradient reads X ...
    net.Relu("X", "X")      # ... which this overwrites in place
    net.Sigmoid(["X"], "z")
    with pytest.raises(GradientError, match=r"op 0 \(Softsign\).*needs input 0 'X' at version 0.*version 1"):
        net.AddGradientOperators(["y", "z"])


def test_stop_gradient_blocks_and_its_branch_gets_no_ops():
    net = core.Net("stop")
    net.Tanh("X", "h")
    net.StopGradient("h", "h_stopped")
    net.Sigmoid("h_stopped", "y")
    grad_map = net.AddGradientOperators(["y"])
    assert set(grad_map) == {"y", "h_stopped"}
    assert [op.type for op in net.Proto().op[3:]] == ["ConstantFill", "SigmoidGradient"]


def test_a_blob_also_read_past_the_stop_gradient_still_gets_that_gradient():
    net = core.Net("stop2")
    net.Tanh("X", "h")
    net.StopGradient("h", "h_stopped")
    net.Sigmoid("h_stopped", "y")
    net.Relu("h", "z")
    grad_map = net.AddGradientOperators(["y", "z"])
    assert grad_map["h"] == "h_grad" and grad_map["X"] == "X_grad"
    assert "Sum" not in [op.type for op in net.Proto().op]


def test_in_place_stop_gradient_ends_the_flow():
    ops = core.Net("s")
    ops.Tanh("X", "h")
    ops.StopGradient("h", "h")
    ops.Sigmoid("h", "y")
    grad_ops, grad_map = GetBackwardPass(ops.Proto().op, ["y"])
    assert "X" not in grad_map and [op.type for op in grad_ops] == ["ConstantFill", "SigmoidGradient"]


def test_ops_no_y_depends_on_get_no_gradient_ops():
    net = core.Net("unused")
    net.Sigmoid("X", "y")
    net.Tanh("X", "unrelated")
    net.AddGradientOperators(["y"])
    assert [op.type for op in net.Proto().op[2:]] == ["ConstantFill", "SigmoidGradient"]


def test_should_not_do_gradient_raises_only_when_reached():
    net = core.Net("stats")
    net.ChannelStats("X", ["sum", "sumsq"])
    net.Sigmoid("sum", "y")
    net.Relu("X", "z")
    net.Clone("ok").AddGradientOperators(["z"])  # ChannelStats not reached: fine
    with pytest.raises(GradientError, match=r"op 0 \(ChannelStats\): one should not call gradient"):
        net.AddGradientOperators(["y"])


def test_missing_maker_is_reported_with_the_op():
    net = core.Net("missing")
    net.SumReduceLike(["A", "B"], "C")
    net.Sigmoid("C", "y")
    with pytest.raises(GradientError, match=r"op 0 \(SumReduceLike\): gradient not implemented for SumReduceLike"):
        net.AddGradientOperators(["y"])


def test_backward_pass_leaves_the_forward_ops_alone():
    net = core.Net("pure")
    net.Sigmoid("X", "y")
    before = net.Proto().SerializeToString()
    GetBackwardPass(net.Proto().op, ["y"])
    assert net.Proto().SerializeToString() == before


def test_in_place_op_whose_gradient_needs_its_overwritten_input_is_refused():
    net = core.Net("mul")
    net.Mul(["X", "W"], "X")  # MulGradient reads A = X before the write
    with pytest.raises(GradientError, match=r"op 0 \(Mul\).*needs input 0 'X' at version 0.*leaves version 1"):
        net.AddGradientOperators(["X"])


def test_an_empty_backward_runs():
    workspace = Workspace()
    assert workspace.RunOperatorsOnce([])


def test_device_scope_with_a_node_name_reaches_the_gradient_ops_and_sums():
    net = core.Net("node")
    with core.DeviceScope(None, node_name="node:0"):
        net.Sigmoid("X", "a")
        net.Tanh("X", "b")
    net.Sum(["a", "b"], "y")
    net.AddGradientOperators(["y"])
    by_type = {op.type: op for op in net.Proto().op[3:]}
    assert by_type["SigmoidGradient"].device_option.node_name == "node:0"
    assert net.Proto().op[-1].type == "Sum" and net.Proto().op[-1].device_option.node_name == "node:0"


def test_a_print_tap_on_a_fanned_out_blob_adds_no_gradient_part():
    net = core.Net("tap")
    net.Relu("X", "h")
    net.Print("h", [])
    net.Softmax("h", "s")
    net.DotProduct(["h", "s"], "y")
    grad_map = net.AddGradientOperators(["y"])
    total = net.Proto().op[-2]
    assert signature([total]) == [("Sum", ["h_grad", "_h_grad_autosplit_0"], ["h_grad"])]
    assert grad_map["X"] == "X_grad"


def test_zero_gradient_gives_an_unreached_output_the_zeros_its_maker_needs():
    net = core.Net("zero")
    net.DotProduct(["a", "b"], "d")
    net.Sigmoid("d", "y")
    net.Tanh("d", "unused")
    net.ZeroGradient("unused", [])
    grad_map = net.AddGradientOperators(["y"])
    fill = net.Proto().op[5]
    assert signature([fill]) == [("ConstantFill", ["unused"], ["unused_grad"])]
    assert fill.arg[0].name == "value" and fill.arg[0].f == 0.0 and fill.is_gradient_op
    assert grad_map["unused"] == "unused_grad" and grad_map["a"] == "a_grad"
