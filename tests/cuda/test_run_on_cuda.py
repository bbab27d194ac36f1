"""`pycaffe2 run --device cuda`: ops with a CUDA kernel go to the GPU, the rest stay
on the CPU, and the results are the CPU's (marked gpu)."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2.proto import caffe2_pb2
from pycaffe2.run import ModelRunner, PlanRun, placed

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

NETS = Path(__file__).resolve().parents[2] / "nets"
CUDA = caffe2_pb2.PROTO_CUDA


@pytest.mark.gpu
def test_a_model_run_on_cuda_gives_the_cpu_results():
    feeds = {"data": np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)}
    runs = {device: ModelRunner(NETS / "models" / "lenet", feeds=feeds, device=device)  # weights given
            for device in ("cpu", "cuda")}
    assert {op.device_option.device_type for op in runs["cuda"].predict_net.op} == {CUDA}
    outputs = {device: (run.run(), run.fetch())[1] for device, run in runs.items()}
    for name, value in outputs["cpu"].items():
        np.testing.assert_allclose(outputs["cuda"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.gpu
def test_a_training_plan_runs_on_cuda(capsys):
    plan_run = PlanRun(NETS / "examples" / "lenet_digits" / "model.yaml", iters=2, quiet=True, seed=0,
                       device="cuda")
    devices = {op.type: op.device_option.device_type for net in plan_run.plan.network for op in net.op}
    assert devices["TensorProtosDBInput"] != CUDA and devices["Iter"] != CUDA
    assert devices["Conv"] == devices["SpatialBNGradient"] == devices["MomentumSGDUpdate"] == CUDA
    results = plan_run.run()
    assert plan_run.stopped is None and results
    assert all(np.isfinite(value).all() for value in results.values())


def test_ops_naming_their_own_device_keep_it():
    net = caffe2_pb2.NetDef(op=[caffe2_pb2.OperatorDef(type="Relu", input=["X"], output=["Y"])])
    net.op[0].device_option.device_type = caffe2_pb2.PROTO_CPU
    assert placed(net, "cpu") == net and placed(net, "cpu") is not net
