"""CUDA kernels beside PyTorch CUDA, in one process, on the GPU.

- Elementwise ops (HardSigmoid, Relu, Add) on 64M floats: achieved bandwidth as
  a share of the GPU's peak (bytes moved / time / --peak-gbs; an H100 SXM moves
  about 3350 GB/s) and the time ratio to torch's kernel for the same traffic.
- Synchronized SpatialBN, N=64 C=256 H=W=56: ChannelStats + SpatialBN forward and
  ChannelBackpropStats + SpatialBNGradient backward, against torch's batch_norm
  forward and backward (training mode).
- FC 4096 x 4096 x 4096 (our tiled SGEMM) against torch.nn.functional.linear, and
  Conv 3x3 on a ResNet block (N=32, 256 channels, 14x14) against torch's conv2d.
- A LeNet training step (forward, backward, SGD; batch 64, 28x28) against the
  same net and update in torch.
Each case runs a created net (RunNet, so dispatch is counted) and prints ms and
the ratio pycaffe2 / torch; a case whose ops have no CUDA kernel is skipped,
naming them. Needs a GPU, PyCUDA and torch with CUDA; otherwise it says which
is missing and exits with 2. --scale divides the sizes (a quick try).

    python benchmarks/gpu_kernels.py [--repeat 20] [--peak-gbs 3350] [--only Add] [--scale 1]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from pycaffe2 import brew, core, model_helper, optimizer
from pycaffe2.devices import cuda
from pycaffe2.executor import Workspace
from pycaffe2.operators import CUDA_KERNELS, load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
PEER = "cuda"  # torch's device; --peer cpu tries the cases out where torch has no CUDA
rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def gpu_workspace(name, net, inputs):
    """A workspace holding `inputs` on the GPU and `net` (every op on CUDA) created."""
    workspace = Workspace(name)
    for blob, value in inputs.items():
        workspace.FeedBlob(blob, value, device_option=CUDA)
    for op in net.op:
        op.device_option.CopyFrom(CUDA)
    workspace.CreateNet(net)
    return workspace


def op_net(name, ops, inputs):
    return caffe2_pb2.NetDef(name=name, op=ops, external_input=list(inputs))


def timed(function, repeat, synchronize):
    function()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    synchronize()
    return (time.perf_counter() - start) / repeat


def elementwise_cases(torch, n):
    x = randn(n)
    tx = torch.from_numpy(x).to(PEER)
    return {  # name: (net, inputs, torch's step, bytes moved)
        "HardSigmoid": (op_net("HardSigmoid", [make_op("HardSigmoid", ["X"], ["Y"])], ["X"]), {"X": x},
                        lambda: torch.nn.functional.hardsigmoid(tx), 2 * 4 * n),  # torch: x/6 + 1/2
        "Relu": (op_net("Relu", [make_op("Relu", ["X"], ["Y"])], ["X"]), {"X": x},
                 lambda: torch.relu(tx), 2 * 4 * n),
        "Add": (op_net("Add", [make_op("Add", ["X", "X2"], ["Y"])], ["X", "X2"]), {"X": x, "X2": x},
                lambda: tx + tx, 3 * 4 * n),
    }


def sync_bn_case(torch, n, c, hw):
    x, dy = randn(n, c, hw, hw), randn(n, c, hw, hw)
    params = {"scale": np.ones(c, np.float32), "bias": np.zeros(c, np.float32),
              "rm": np.zeros(c, np.float32), "rv": np.ones(c, np.float32)}
    args = {"is_test": 0, "epsilon": 1e-5, "momentum": 0.9, "order": "NCHW", "num_batches": 1}
    ops = [make_op("ChannelStats", ["X"], ["sum", "sumsq"]),
           make_op("SpatialBN", ["X", "scale", "bias", "rm", "rv", "sum", "sumsq"],
                   ["Y", "rm", "rv", "mean", "inv_std"], args),
           make_op("ChannelBackpropStats", ["X", "mean", "inv_std", "dY"], ["dscale_all", "dbias_all"]),
           make_op("SpatialBNGradient", ["X", "scale", "dY", "mean", "inv_std", "dscale_all", "dbias_all"],
                   ["dX", "dscale", "dbias"], {"epsilon": 1e-5, "order": "NCHW", "num_batches": 1})]
    inputs = {"X": x, "dY": dy, **params}
    tx = torch.from_numpy(x).to(PEER).requires_grad_()
    tdy = torch.from_numpy(dy).to(PEER)
    tscale = torch.ones(c, device=PEER, requires_grad=True)
    tbias = torch.zeros(c, device=PEER, requires_grad=True)
    trm, trv = torch.zeros(c, device=PEER), torch.ones(c, device=PEER)

    def reference():
        y = torch.nn.functional.batch_norm(tx, trm, trv, tscale, tbias, training=True, momentum=0.1, eps=1e-5)
        y.backward(tdy)
    return op_net("SyncSpatialBN", ops, inputs), inputs, reference, None


def fc_case(torch, m, k, n):
    x, w, b = randn(m, k), randn(n, k) / np.float32(np.sqrt(k)), randn(n)
    tx, tw, tb = (torch.from_numpy(a).to(PEER) for a in (x, w, b))
    net = op_net("FC", [make_op("FC", ["X", "W", "b"], ["Y"])], ["X", "W", "b"])
    return net, {"X": x, "W": w, "b": b}, lambda: torch.nn.functional.linear(tx, tw, tb), None


def conv_case(torch, n, c, hw):
    x, w, b = randn(n, c, hw, hw), randn(c, c, 3, 3) / np.float32(np.sqrt(9 * c)), randn(c)
    tx, tw, tb = (torch.from_numpy(a).to(PEER) for a in (x, w, b))
    net = op_net("Conv3x3", [make_op("Conv", ["X", "W", "b"], ["Y"], {"kernel": 3, "pad": 1, "order": "NCHW"})],
                 ["X", "W", "b"])
    return net, {"X": x, "W": w, "b": b}, lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1), None


def lenet_case(torch, batch, lr=0.01):
    """Caffe2's MNIST LeNet (conv 5x5 20, pool, conv 5x5 50, pool, FC 500, ReLU, FC 10,
    softmax loss), one SGD step, in both frameworks."""
    model = model_helper.ModelHelper(name="lenet_step")
    with core.DeviceScope(CUDA):
        conv1 = brew.conv(model, "data", "conv1", dim_in=1, dim_out=20, kernel=5)
        pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
        conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
        pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
        fc3 = brew.relu(model, brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500), "fc3")
        pred = brew.fc(model, fc3, "pred", 500, 10)
        _, loss = model.net.SoftmaxWithLoss([pred, "label"], ["softmax", "loss"])
        model.AddGradientOperators([loss])
        optimizer.build_sgd(model, base_learning_rate=lr)
    data = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    label = rng.integers(0, 10, batch).astype(np.int32)

    layers = torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5), torch.nn.MaxPool2d(2), torch.nn.Conv2d(20, 50, 5), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(800, 500), torch.nn.ReLU(), torch.nn.Linear(500, 10)).to(PEER)
    sgd = torch.optim.SGD(layers.parameters(), lr=lr)
    tdata, tlabel = torch.from_numpy(data).to(PEER), torch.from_numpy(label).long().to(PEER)

    def reference():
        sgd.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(layers(tdata), tlabel).backward()
        sgd.step()
    return model, {"data": data, "label": label}, reference


def missing_kernels(net) -> list:
    return sorted({op.type for op in net.op
                   if op.device_option.device_type == caffe2_pb2.PROTO_CUDA and op.type not in CUDA_KERNELS})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--peak-gbs", type=float, default=3350.0)
    parser.add_argument("--only", default="")
    parser.add_argument("--scale", type=int, default=1, help="divide the sizes by this")
    parser.add_argument("--peer", default="cuda", help="torch's device (cpu: a dry run of the cases)")
    args = parser.parse_args()
    global PEER
    PEER = args.peer
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"gpu_kernels: CUDA is not available: {reason}", file=sys.stderr)
        return 2
    import torch
    if PEER == "cuda" and not torch.cuda.is_available():
        print("gpu_kernels: torch has no CUDA here", file=sys.stderr)
        return 2
    load_kernels()

    def sync():
        cuda.synchronize()
        if PEER == "cuda":
            torch.cuda.synchronize()

    k = args.scale
    cases = {**elementwise_cases(torch, 64 * 1024 * 1024 // k),
             "SyncSpatialBN": sync_bn_case(torch, 64 // k, 256 // k, 56),
             "FC4096": fc_case(torch, 4096 // k, 4096 // k, 4096 // k),
             "Conv3x3": conv_case(torch, 32 // k, 256 // k, 14)}
    for name, (net, inputs, reference, nbytes) in cases.items():
        if args.only not in name:
            continue
        for op in net.op:
            op.device_option.CopyFrom(CUDA)
        if missing_kernels(net):
            print(f"{name:<14} skipped: no CUDA kernel for {', '.join(missing_kernels(net))}")
            continue
        workspace = gpu_workspace(name, net, inputs)
        ours = timed(lambda: workspace.RunNet(net.name), args.repeat, sync)  # noqa: B023 - called at once
        theirs = timed(reference, args.repeat, sync)
        bandwidth = (f"{nbytes / ours / 1e9:7.1f} GB/s ({nbytes / ours / 1e9 / args.peak_gbs:5.1%} of peak)"
                     if nbytes else "")
        print(f"{name:<14} {ours * 1e3:8.3f} ms  torch {theirs * 1e3:8.3f} ms  ratio {ours / theirs:5.2f}  "
              f"{bandwidth}")
    if args.only in "LeNetStep":
        run_lenet_step(torch, max(64 // k, 1), args.repeat, sync)
    return 0


def run_lenet_step(torch, batch, repeat, sync) -> None:
    model, feeds, reference = lenet_case(torch, batch)
    missing = missing_kernels(model.param_init_net.Proto()) + missing_kernels(model.net.Proto())
    if missing:
        print(f"{'LeNetStep':<14} skipped: no CUDA kernel for {', '.join(sorted(set(missing)))}")
        return
    workspace = Workspace("lenet")
    workspace.RunNetOnce(model.param_init_net.Proto())
    for blob, value in feeds.items():
        workspace.FeedBlob(blob, value, device_option=CUDA)
    workspace.CreateNet(model.net.Proto())
    name = model.net.Proto().name
    ours = timed(lambda: workspace.RunNet(name), repeat, sync)
    theirs = timed(reference, repeat, sync)
    print(f"{'LeNetStep':<14} {ours * 1e3:8.3f} ms  torch {theirs * 1e3:8.3f} ms  ratio {ours / theirs:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
