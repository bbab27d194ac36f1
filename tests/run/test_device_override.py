"""`pycaffe2 run --device cpu`: a model whose nets or ops name a GPU runs on the CPU,
with one note on stderr; without --device the file's devices are kept."""
import numpy as np
import pytest

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.devices import cuda
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run import ModelRunner, PlanRun, placed
from tests.run.test_plan_job import regression_model

CPU, CUDA = caffe2_pb2.PROTO_CPU, caffe2_pb2.PROTO_CUDA
NO_CUDA = cuda.unavailable_reason()


def gpu_net(nested: bool = True) -> caffe2_pb2.NetDef:
    """Relu then Sigmoid, placed on GPU 1 by the net, one op and (when `nested`) a net held
    in an arg, with the cross-device copies a GPU net carries."""
    net = caffe2_pb2.NetDef(name="gpu", external_input=["X"], external_output=["Z"])
    net.device_option.device_type, net.device_option.device_id = CUDA, 1
    copy_in = net.op.add(type="CopyCPUToGPU", input=["X"], output=["X_gpu"])
    relu = net.op.add(type="Relu", input=["X_gpu"], output=["Y"])
    relu.device_option.device_type = CUDA
    relu.device_option.random_seed = 7
    net.op.add(type="Sigmoid", input=["Y"], output=["Y_sig"])
    net.op.add(type="CopyGPUToCPU", input=["Y_sig"], output=["Z"])
    inner = caffe2_pb2.Argument(name="net")
    inner.n.op.add(type="Relu", input=["a"], output=["b"]).device_option.device_type = CUDA
    if nested:  # not a real arg of the copy (the net cannot run): placed() must reach it too
        copy_in.arg.append(inner)
    return net


def test_placed_on_cpu_points_every_option_at_the_cpu():
    net, moved = gpu_net(), []
    on_cpu = placed(net, "cpu", moved)
    assert moved == [5]  # net, Relu, nested Relu, and the two copies
    assert on_cpu.device_option.device_type == CPU and not on_cpu.device_option.HasField("device_id")
    assert [op.type for op in on_cpu.op] == ["Copy", "Relu", "Sigmoid", "Copy"]
    assert on_cpu.op[1].device_option.device_type == CPU
    assert on_cpu.op[1].device_option.random_seed == 7  # only the device changes
    assert on_cpu.op[0].arg[0].n.op[0].device_option.device_type == CPU
    assert net == gpu_net()  # the caller's net is left alone


def test_placed_as_written_keeps_the_files_devices():
    net = gpu_net()
    if NO_CUDA is None:
        assert placed(net, None) == net
        return
    with pytest.raises(Exception, match="names a GPU device.*--device cpu"):
        placed(net, None)
    cpu_net = caffe2_pb2.NetDef(op=[caffe2_pb2.OperatorDef(type="Relu", input=["X"], output=["Y"])])
    assert placed(cpu_net, None) == cpu_net


def test_a_gpu_net_runs_on_the_cpu_with_one_note(tmp_path, capsys):
    netfile.save_net(gpu_net(nested=False), tmp_path / "gpu.pb")
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    argv = ["run", str(tmp_path / "gpu.pb"), "--feed", f"X={tmp_path / 'x.npy'}", "--out",
            str(tmp_path / "out.npz")]
    assert main([*argv, "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert err.count("--device cpu: 4 device option(s)") == 1
    expected = 1 / (1 + np.exp(-np.maximum(x, 0)))
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["Z"], expected, rtol=1e-6)
    assert main([*argv, "--device", "cpu", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    if NO_CUDA is not None:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "names a GPU device, which is not available here" in err and "--device cpu" in err


def test_model_runner_counts_what_it_moved():
    runner = ModelRunner(gpu_net(nested=False), feeds={"X": np.ones((2, 2), np.float32)}, device="cpu")
    runner.run()
    assert runner.moved_to_cpu == 4
    assert runner.fetch()["Z"].shape == (2, 2)
    assert ModelRunner(caffe2_pb2.NetDef(name="n"), device="cpu").moved_to_cpu == 0


def test_a_gpu_plan_trains_on_the_cpu(tmp_path, capsys):
    path = regression_model(tmp_path / "model.yaml", num_iter=5)
    model = netfile.load_model(path)
    for net in model.plan.network:
        net.device_option.device_type = CUDA
    netfile.save_model(model, path)
    assert PlanRun(path, quiet=True, device="cpu").moved_to_cpu == len(model.plan.network)
    assert main(["run", str(path), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("point at the CPU for this run") == 1
    assert np.isfinite(float(captured.out.split("final_loss: ")[1].split()[0]))
