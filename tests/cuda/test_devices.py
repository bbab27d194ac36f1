"""CUDA kernels against their CPU twins (marked gpu: skipped without a GPU and PyCUDA),
and the clear error when CUDA is asked for where it is not available."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2.executor import NetError, Workspace
from pycaffe2.devices.cuda import unavailable_reason
from pycaffe2.operators import CUDA_KERNELS, load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, make_op

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


def forward_then_gradient(forward, reads_x=False):
    """Inputs of a gradient op: (Y or X, dY) made by running `forward` on the CPU."""
    def make(shape):
        from pycaffe2.testing import run_op
        x = away_from_kinks(shape)
        y = run_op(forward, [x])[0]
        return [x if reads_x else y, rng.standard_normal(shape).astype(np.float32)]
    return make


# op type -> (inputs for a shape, args)
CASES = {
    "Relu": (lambda s: [away_from_kinks(s)], {}),
    "LeakyRelu": (lambda s: [away_from_kinks(s)], {"alpha": 0.3}),
    "Sigmoid": (lambda s: [away_from_kinks(s)], {}),
    "Tanh": (lambda s: [away_from_kinks(s)], {}),
    "Elu": (lambda s: [away_from_kinks(s)], {"alpha": 0.7}),
    "Softsign": (lambda s: [away_from_kinks(s)], {}),
    "HardSigmoid": (lambda s: [away_from_kinks(s)], {"alpha": 0.3, "beta": 0.4}),
    "ReluGradient": (forward_then_gradient("Relu"), {}),
    "LeakyReluGradient": (forward_then_gradient("LeakyRelu"), {}),
    "SigmoidGradient": (forward_then_gradient("Sigmoid"), {}),
    "TanhGradient": (forward_then_gradient("Tanh"), {}),
    "EluGradient": (forward_then_gradient("Elu"), {}),
    "SoftsignGradient": (forward_then_gradient("Softsign", reads_x=True), {}),
    "HardSigmoidGradient": (forward_then_gradient("HardSigmoid"), {}),
    "StopGradient": (lambda s: [away_from_kinks(s)], {}),
    "Alias": (lambda s: [away_from_kinks(s)], {}),
}
DEVICE_COPIES = {"CopyCPUToGPU", "CopyGPUToCPU"}


DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(DEVICE_COPIES)  # test_feed_fetch_and_explicit_copies below


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
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (1 << 20,)])
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args)


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
