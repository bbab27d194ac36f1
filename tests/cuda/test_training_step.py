"""A whole training step on CUDA equals the same step on the CPU (marked gpu):
a small conv net (Conv, SpatialBN, Relu, MaxPool, FC, SoftmaxWithLoss), its
gradient pass and momentum SGD, every op on the GPU, from the same weights."""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, optimizer
from pycaffe2.devices import cuda
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

CPU = core.DeviceOption(caffe2_pb2.PROTO_CPU)
CUDA = core.DeviceOption(caffe2_pb2.PROTO_CUDA)


def small_convnet(device):
    model = model_helper.ModelHelper(name="step")
    with core.DeviceScope(device):
        conv = brew.conv(model, "data", "conv", dim_in=2, dim_out=4, kernel=3, pad=1)
        bn = brew.spatial_bn(model, conv, "bn", 4, is_test=False)
        pool = brew.max_pool(model, brew.relu(model, bn, "relu"), "pool", kernel=2, stride=2)
        pred = brew.fc(model, pool, "pred", dim_in=4 * 3 * 3, dim_out=5)
        _, loss = model.net.SoftmaxWithLoss([pred, "label"], ["softmax", "loss"])
        model.AddGradientOperators([loss])
        optimizer.build_sgd(model, base_learning_rate=0.1, policy="step", stepsize=1, gamma=0.5,
                            momentum=0.9)
    return model


def is_gpu_blob(workspace, name):
    return cuda.is_gpu_array(workspace.blobs[name])


@pytest.mark.gpu
def test_a_training_step_on_cuda_equals_the_cpu_step():
    rng = np.random.default_rng(0)
    feeds = {"data": rng.standard_normal((3, 2, 6, 6)).astype(np.float32),
             "label": rng.integers(0, 5, 3).astype(np.int32)}
    workspaces, nets = {}, {}
    for name, device in (("cpu", CPU), ("cuda", CUDA)):
        model = small_convnet(device)
        workspace = Workspace(name)
        workspace.RunNetOnce(model.param_init_net.Proto())
        for blob, value in feeds.items():
            workspace.FeedBlob(blob, value, device_option=device)
        workspace.CreateNet(model.net.Proto())
        workspaces[name], nets[name] = workspace, model.net.Name()  # step, then step_1
    cpu, gpu = workspaces["cpu"], workspaces["cuda"]
    shared = sorted(set(cpu.Blobs()) & set(gpu.Blobs()))  # not the constants named by device
    assert {"conv_w", "bn_s", "bn_rm", "pred_b", "conv_w_momentum", "optimizer_iteration"} <= set(shared)
    for blob in shared:  # the CPU's random weights on both (the GPU's fills draw others)
        value = cpu.FetchBlob(blob)
        gpu.FeedBlob(blob, value, device_option=CUDA if is_gpu_blob(gpu, blob) else None)
    for _ in range(2):  # the second step uses the momentum and the halved rate
        cpu.RunNet(nets["cpu"])
        gpu.RunNet(nets["cuda"])
    assert is_gpu_blob(gpu, "conv_w") and is_gpu_blob(gpu, "pred_w_grad")
    for blob in shared:
        np.testing.assert_allclose(gpu.FetchBlob(blob), cpu.FetchBlob(blob), rtol=2e-4, atol=2e-5,
                                   err_msg=blob)
    (cpu_lr,), (gpu_lr,) = ([b for b in w.Blobs() if "_lr" in b] for w in (cpu, gpu))  # named by device
    np.testing.assert_array_equal(gpu.FetchBlob(gpu_lr), cpu.FetchBlob(cpu_lr))
