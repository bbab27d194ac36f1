"""The CUDA device as a whole: every CUDA kernel has a device check somewhere (each op
family's tests hold them), nets mixing devices get their copies, explicit copies, and the
clear error when CUDA is asked for where it is not available."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2.devices.cuda import unavailable_reason
from pycaffe2.executor import NetError, Workspace
from pycaffe2.operators import CUDA_KERNELS, load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
REASON = unavailable_reason()
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
rng = np.random.default_rng(0)


def away_from_kinks(shape):
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    x = np.where(np.abs(x) < 0.05, 0.3, x)
    return np.where(np.abs(np.abs(x) - 2.5) < 0.05, 2.0, x).astype(np.float32)


DEVICE_COPIES = {"CopyCPUToGPU", "CopyGPUToCPU"}


DEVICE_CHECKED = DEVICE_COPIES  # test_feed_fetch_and_explicit_copies below


def device_checked_op_types() -> set[str]:
    """The union of every test module's DEVICE_CHECKED: the op types whose CUDA kernels
    it checks against their CPU twins."""
    import importlib

    tests_dir = Path(__file__).resolve().parents[1]
    found: set[str] = set()
    for path in sorted(tests_dir.rglob("test_*.py")):
        name = ".".join(path.relative_to(tests_dir.parent).with_suffix("").parts)
        found |= set(getattr(importlib.import_module(name), "DEVICE_CHECKED", ()))
    return found


def test_every_cuda_kernel_has_a_device_check():
    assert sorted(set(CUDA_KERNELS) - device_checked_op_types()) == []


@pytest.mark.skipif(REASON is None, reason="CUDA is available here")
def test_asking_for_cuda_without_it_says_what_is_missing():
    op = make_op("HardSigmoid", ["X"], ["Y"])
    op.device_option.CopyFrom(CUDA)
    net = caffe2_pb2.NetDef(name="gpu", op=[op], external_input=["X"])
    workspace = Workspace()
    with pytest.raises(NetError, match=r"op\(s\) 0 ask for CUDA, which is not available here: "):
        workspace.CreateNet(net)
    workspace.FeedBlob("X", np.array([-1.0, 2.0], np.float32))  # the CPU still works
    workspace.RunOperatorOnce(make_op("Relu", ["X"], ["Y"]))
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), [0.0, 2.0])




@pytest.mark.gpu
def test_a_net_mixing_devices_gets_its_copies():
    hard_sigmoid = make_op("HardSigmoid", ["X"], ["H"], {"alpha": 0.3})
    hard_sigmoid.device_option.CopyFrom(CUDA)
    relu = make_op("Relu", ["H"], ["Y"])  # on the CPU, reading a blob left on the GPU
    net = caffe2_pb2.NetDef(name="mixed", op=[hard_sigmoid, relu], external_input=["X"])
    workspace = Workspace()
    x = away_from_kinks((4, 6))
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("Y"), np.clip(0.3 * x + 0.5, 0, 1), rtol=1e-6)


@pytest.mark.gpu
def test_feed_fetch_and_explicit_copies():
    workspace = Workspace()
    x = away_from_kinks((5,))
    workspace.FeedBlob("X", x, device_option=CUDA)
    to_cpu = make_op("CopyGPUToCPU", ["X"], ["Xc"])
    to_cpu.device_option.CopyFrom(CUDA)
    to_gpu = make_op("CopyCPUToGPU", ["Xc"], ["Xg"])
    to_gpu.device_option.CopyFrom(CUDA)
    workspace.RunOperatorsOnce([to_cpu, to_gpu])
    assert isinstance(workspace.blobs["Xc"], np.ndarray)
    np.testing.assert_array_equal(workspace.FetchBlob("Xg"), x)
