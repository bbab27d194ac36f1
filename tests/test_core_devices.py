"""core.InjectCrossDeviceCopies and friends: copy ops where an op reads a blob of another
device (nets on CUDA device options are built, not run)."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.errors import NetError
from pycaffe2.proto import caffe2_pb2

CPU = core.DeviceOption(caffe2_pb2.CPU)
GPU0 = core.DeviceOption(caffe2_pb2.CUDA, 0)
GPU1 = core.DeviceOption(caffe2_pb2.CUDA, 1)


def _ops(net):
    return [(op.type, list(op.input), list(op.output), op.device_option.device_type, op.device_option.device_id)
            for op in net.Proto().op]


def test_gpu_op_reading_cpu_blob_gets_a_copy_named_after_the_gpu():
    net = core.Net("mixed")
    net.AddExternalInput("x")
    with core.DeviceScope(CPU):
        net.Relu("x", "r")
    with core.DeviceScope(GPU1):
        net.Sigmoid("r", "s")
        net.Tanh("r", "t")  # reuses the copy
    new_net, devices = core.InjectCrossDeviceCopies(net)
    assert new_net.Proto().name.startswith("mixed_cross_device")
    assert _ops(new_net) == [
        ("Relu", ["x"], ["r"], caffe2_pb2.CPU, 0),
        ("CopyCPUToGPU", ["r"], ["r_cuda_1"], caffe2_pb2.CUDA, 1),
        ("Sigmoid", ["r_cuda_1"], ["s"], caffe2_pb2.CUDA, 1),
        ("Tanh", ["r_cuda_1"], ["t"], caffe2_pb2.CUDA, 1),
    ]
    assert devices["r_cuda_1"] == GPU1 and devices["s"] == GPU1 and devices["x"].device_type == caffe2_pb2.CPU
    assert len(net.Proto().op) == 3  # the given net is left as it was


def test_cpu_op_reading_gpu_blob_and_gpu_to_gpu():
    net = core.Net("back")
    net.AddExternalInput("x")
    with core.DeviceScope(GPU0):
        net.Relu("x", "r")
    with core.DeviceScope(GPU1):
        net.Relu("r", "r1")
    with core.DeviceScope(CPU):
        net.Relu("r1", "c")
    new_net, _ = core.InjectCrossDeviceCopies(net, blob_to_device={"x": GPU0})
    assert _ops(new_net) == [
        ("Relu", ["x"], ["r"], caffe2_pb2.CUDA, 0),
        ("Copy", ["r"], ["r_cuda_1"], caffe2_pb2.CUDA, 1),
        ("Relu", ["r_cuda_1"], ["r1"], caffe2_pb2.CUDA, 1),
        ("CopyGPUToCPU", ["r1"], ["r1_cpu"], caffe2_pb2.CUDA, 1),
        ("Relu", ["r1_cpu"], ["c"], caffe2_pb2.CPU, 0),
    ]


def test_in_place_op_stays_in_place_on_the_copy():
    net = core.Net("inplace")
    net.AddExternalInput("x")
    with core.DeviceScope(GPU0):
        net.Relu("x", "x")
    new_net, devices = core.InjectCrossDeviceCopies(net)
    assert _ops(new_net)[1] == ("Relu", ["x_cuda_0"], ["x_cuda_0"], caffe2_pb2.CUDA, 0)
    assert devices["x_cuda_0"] == GPU0


def test_device_rules_of_copy_and_learning_rate_ops():
    op = core.CreateOperator("CopyCPUToGPU", ["a"], ["b"], device_option=GPU0)
    ins, outs = core.InferOpBlobDevices(op)
    assert ins[0].device_type == caffe2_pb2.CPU and outs[0] == GPU0
    ins, outs = core.InferOpBlobDevices(core.CreateOperator("CopyGPUToCPU", ["a"], ["b"], device_option=GPU1))
    assert ins[0] == GPU1 and outs[0].device_type == caffe2_pb2.CPU
    ins, outs = core.InferOpBlobDevices(core.CreateOperator("Concat", ["a", "b"], ["c", "info"], device_option=GPU0))
    assert [d.device_type for d in ins + outs] == [caffe2_pb2.CUDA] * 3 + [caffe2_pb2.CPU]
    ins, outs = core.InferOpDeviceAsBlobDevices(core.CreateOperator("Relu", ["a"], ["b"], device_option=GPU1))
    assert ins == [GPU1] and outs == [GPU1]
    with pytest.raises(ValueError):
        core.InferOpBlobDevices(core.CreateOperator("CopyCPUToGPU", ["a"], ["b"]))

    # LearningRate reads its iteration counter on the CPU: no copy for it
    net = core.Net("lr")
    with core.DeviceScope(CPU):
        it = net.ConstantFill([], "iter", shape=[1], value=0, dtype=core.DataType.INT64)
    with core.DeviceScope(GPU0):
        net.LearningRate(it, "lr", base_lr=0.1, policy="fixed")
    new_net, devices = core.InjectCrossDeviceCopies(net)
    assert [op.type for op in new_net.Proto().op] == ["ConstantFill", "LearningRate"]
    assert devices["lr"] == GPU0


def test_among_nets_reuses_copies_made_by_earlier_nets():
    init = core.Net("init")
    with core.DeviceScope(CPU):
        init.ConstantFill([], "w", shape=[2], value=1.0)
    train = core.Net("train")
    train.AddExternalInput("w")
    with core.DeviceScope(GPU0):
        train.Relu("w", "a")
        train.Sigmoid("w", "b")
    (new_init, new_train), devices = core.InjectDeviceCopiesAmongNets([init, train])
    assert [op.type for op in new_init.Proto().op] == ["ConstantFill"]
    assert _ops(new_train)[0] == ("CopyCPUToGPU", ["w"], ["w_cuda_0"], caffe2_pb2.CUDA, 0)
    assert [op.type for op in new_train.Proto().op].count("CopyCPUToGPU") == 1
    # a third net reading w on the same GPU finds the copy as an external input
    third = core.Net("third")
    third.AddExternalInput("w")
    with core.DeviceScope(GPU0):
        third.Tanh("w", "c")
    nets = core.InjectDeviceCopiesAmongNetsWithoutB2D([init, train, third])
    assert [op.type for op in nets[2].Proto().op] == ["Tanh"]
    assert list(nets[2].Proto().op[0].input) == ["w_cuda_0"]
    assert "w_cuda_0" in nets[2].Proto().external_input
    assert devices["w"].device_type == caffe2_pb2.CPU
    with pytest.raises(TypeError):
        core.InjectDeviceCopiesAmongNets(init)


def test_cpu_only_net_is_unchanged_and_runs():
    net = core.Net("cpu")
    net.AddExternalInput("x")
    net.Relu("x", "y")
    net.Scale("y", "z", scale=2.0)
    new_net, _ = core.InjectCrossDeviceCopies(net)
    assert [op.type for op in new_net.Proto().op] == ["Relu", "Scale"]
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.array([-1.0, 2.0], np.float32))
    workspace.RunNetOnce(new_net)
    np.testing.assert_array_equal(workspace.FetchBlob("z"), [0.0, 4.0])


def test_errors_name_the_blob():
    net = core.Net("bad")
    with core.DeviceScope(GPU0):
        net.Relu("undefined", "y")
    with pytest.raises(NetError, match="undefined"):
        core.InjectCrossDeviceCopies(net)
    net = core.Net("two_devices")
    net.AddExternalInput("x")
    with core.DeviceScope(GPU0):
        net.Relu("x", "y")
    with core.DeviceScope(GPU1):
        net.Sigmoid("x", "y")
    with pytest.raises(NetError, match="y"):
        core.InjectCrossDeviceCopies(net)


def test_copy_func_and_placeholder_outputs():
    assert core.copy_func_between_devices(CPU, CPU) is None
    assert core.copy_func_between_devices(GPU0, GPU0) is None
    net = core.Net("copies")
    core.copy_func_between_devices(CPU, GPU1)(net, "a", "a_gpu")
    op = net.Proto().op[0]
    assert op.type == "CopyCPUToGPU" and op.device_option == GPU1
    with pytest.raises(ValueError):
        core.copy_func_between_devices(CPU, core.DeviceOption(caffe2_pb2.MKLDNN))
    op = core.CreateOperator("Recv", [], ["a", "b"])
    core.update_placeholder_op_output(op, {"a": GPU0, "b": CPU})
    assert list(op.output) == ["a_cpu", "b"]
    assert core.RemapEntry("a", GPU0) == core.RemapEntry("a", core.DeviceOption(caffe2_pb2.CUDA, 0))
    assert len({core.RemapEntry("a", GPU0), core.RemapEntry("a", GPU0)}) == 1
