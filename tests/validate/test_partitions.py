"""Pre-partitioned nets (Glow's): ops name their partition in device_option.node_name,
the net lists its partitions in partition_info. validate accepts a name the net lists and
says which names it lists when an op names another; running ignores the placement."""
import numpy as np
import pytest

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.checker import check_net


def partitioned(*node_names, partitions=("p0", "p1")) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="parts", external_input=["X"], external_output=["Y"])
    blob = "X"
    for index, node in enumerate(node_names):
        out = "Y" if index == len(node_names) - 1 else f"h{index}"
        op = net.op.add(type="Relu", input=[blob], output=[out])
        if node:
            op.device_option.node_name = node
        blob = out
    for name in partitions:
        net.partition_info.add(name=name, device_id=[0])
    return net


def test_node_names_of_listed_partitions_are_accepted():
    assert check_net(partitioned("p0", "p1", "")) == []


def test_a_node_name_of_no_partition_names_the_partitions():
    (problem,) = check_net(partitioned("p0", "p7"))
    assert (problem.kind, problem.op_index) == ("partition", 1)
    assert "node_name 'p7' names no partition_info entry of the net (partitions: p0, p1)" in problem.message


def test_a_node_name_without_partition_info_says_so():
    (problem,) = check_net(partitioned("node:0", partitions=()))
    assert problem.kind == "partition" and "the net has no partition_info" in problem.message


@pytest.mark.parametrize("names, text", [
    (("p0", ""), "partition_info[1] has no name"),
    (("p0", "p0"), "partition_info[1]: partition 'p0' is listed twice"),
])
def test_bad_partition_lists(names, text):
    problems = check_net(partitioned("p0", partitions=names))
    assert [p.kind for p in problems] == ["partition"] and text in problems[0].message


def test_net_level_node_name_is_checked_too():
    net = partitioned("p0")
    net.device_option.node_name = "elsewhere"
    (problem,) = check_net(net)
    assert "the net's device_option.node_name 'elsewhere'" in problem.message


def test_control_op_nets_may_use_the_outer_partitions():
    net = partitioned("p0")
    inner = caffe2_pb2.NetDef(name="then", op=[caffe2_pb2.OperatorDef(
        type="Relu", input=["X"], output=["Z"], device_option=caffe2_pb2.DeviceOption(node_name="p1"))])
    net.op.add(type="If", input=["cond"], output=["Z"], arg=[caffe2_pb2.Argument(name="then_net", n=inner)])
    net.external_input.append("cond")
    assert [p for p in check_net(net) if p.kind == "partition"] == []


@pytest.mark.parametrize("nodes", [("p0", "p1"), ("p0", "nowhere")])
def test_running_ignores_the_placement(nodes):
    workspace = Workspace("parts")
    x = np.array([-1.0, 2.0], np.float32)
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(partitioned(*nodes))
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), np.maximum(x, 0))
