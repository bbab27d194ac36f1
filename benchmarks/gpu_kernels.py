"""CUDA kernels beside PyTorch CUDA, in one process, on the GPU.

Elementwise ops (HardSigmoid, Relu, Add) on 64M floats: achieved bandwidth as
a share of the GPU's peak (bytes moved / time / --peak-gbs; an H100 SXM moves
about 3350 GB/s) and the time ratio to torch's kernel for the same traffic.
Each case runs a created net (RunNet, so dispatch is counted) and prints ms
and ratios (pycaffe2 / torch); cases whose ops have no CUDA kernel yet are
skipped. Needs a GPU, PyCUDA and torch with CUDA; otherwise it says which is
missing and exits with 2.

    python benchmarks/gpu_kernels.py [--repeat 20] [--peak-gbs 3350] [--only Add]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from pycaffe2.executor import Workspace
from pycaffe2.executor.devices.cuda import unavailable_reason
from pycaffe2.operators import CUDA_KERNELS, load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)


def gpu_net(name, ops, inputs):
    workspace = Workspace(name)
    for blob, value in inputs.items():
        workspace.FeedBlob(blob, value, device_option=CUDA)
    net = caffe2_pb2.NetDef(name=name, external_input=list(inputs))
    for op in ops:
        op.device_option.CopyFrom(CUDA)
        net.op.append(op)
    workspace.CreateNet(net)
    return workspace


def timed(function, repeat, synchronize):
    function()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    synchronize()
    return (time.perf_counter() - start) / repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--peak-gbs", type=float, default=3350.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"gpu_kernels: CUDA is not available: {reason}", file=sys.stderr)
        return 2
    import pycuda.driver as driver
    import torch
    if not torch.cuda.is_available():
        print("gpu_kernels: torch has no CUDA here", file=sys.stderr)
        return 2
    load_kernels()

    def sync():
        driver.Context.synchronize()
        torch.cuda.synchronize()

    n = 64 * 1024 * 1024
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    tx = torch.from_numpy(x).cuda()
    cases = {
        "HardSigmoid": ([make_op("HardSigmoid", ["X"], ["Y"])], {"X": x}, 2 * 4 * n,
                        lambda: torch.nn.functional.hardsigmoid(tx)),  # torch: x/6 + 1/2; same traffic
        "Relu": ([make_op("Relu", ["X"], ["Y"])], {"X": x}, 2 * 4 * n, lambda: torch.relu(tx)),
        "Add": ([make_op("Add", ["X", "X2"], ["Y"])], {"X": x, "X2": x}, 3 * 4 * n, lambda: tx + tx),
    }
    for name, (ops, inputs, nbytes, reference) in cases.items():
        if args.only not in name or any(op.type not in CUDA_KERNELS for op in ops):
            continue
        workspace = gpu_net(name, ops, inputs)
        ours = timed(lambda: workspace.RunNet(name), args.repeat, sync)
        theirs = timed(reference, args.repeat, sync)
        print(f"{name:<12} {ours * 1e3:8.3f} ms  {nbytes / ours / 1e9:7.1f} GB/s "
              f"({nbytes / ours / 1e9 / args.peak_gbs:5.1%} of peak)   torch {theirs * 1e3:8.3f} ms  "
              f"ratio {ours / theirs:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
