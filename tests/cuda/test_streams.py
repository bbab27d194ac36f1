"""Each net queues its kernels on a stream of its own (marked gpu)."""
import numpy as np
import pytest

from pycaffe2.devices import cuda
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)


def cuda_net(name, net_type=""):
    net = caffe2_pb2.NetDef(name=name, type=net_type, external_input=["X"])
    for inputs, output in ((["X"], "A"), (["X"], "B"), (["A", "B"], "Y")):
        op = make_op("Add" if len(inputs) == 2 else "Relu", inputs, [output])
        op.device_option.CopyFrom(CUDA)
        net.op.append(op)
    if net_type:
        net.num_workers = 2
    return net


@pytest.fixture
def launches():
    """The stream of every kernel launch the test makes, in order (on the backend in use)."""
    seen, in_use = [], cuda.backend()

    class Recording(cuda.Backend):
        def compile(self, *args):
            module = in_use.compile(*args)

            class RecordingModule:
                def get_function(self, kernel):
                    compiled = module.get_function(kernel)

                    def launch(*args, stream=None, **kwargs):
                        seen.append(stream)
                        return compiled(*args, stream=stream, **kwargs)
                    return launch
            return RecordingModule()

    previous = cuda.use_backend(Recording(in_use.driver, in_use.gpuarray, in_use.SourceModule,
                                          in_use.max_blocks))
    yield seen
    cuda.use_backend(previous)


@pytest.mark.gpu
@pytest.mark.parametrize("net_type", ["", "dag"])
def test_kernels_of_a_net_run_on_its_stream(launches, net_type):
    seen = launches
    workspace = Workspace()
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    workspace.FeedBlob("X", x, device_option=CUDA)
    workspace.CreateNet(cuda_net("first", net_type))
    workspace.CreateNet(cuda_net("second", net_type))
    workspace.RunNet("first")
    workspace.RunNet("second")
    first, second = workspace.nets["first"].stream, workspace.nets["second"].stream
    assert first is not None and second is not None and first is not second
    assert seen == [first] * 3 + [second] * 3
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), 2 * np.maximum(x, 0))
    assert getattr(cuda._running, "stream", None) is None  # nothing leaks past the run


def test_cpu_nets_make_no_stream():
    workspace = Workspace()
    workspace.FeedBlob("X", np.ones(3, np.float32))
    net = caffe2_pb2.NetDef(name="cpu", external_input=["X"], op=[make_op("Relu", ["X"], ["Y"])])
    workspace.CreateNet(net)
    workspace.RunNet("cpu")
    assert workspace.nets["cpu"].stream is None
