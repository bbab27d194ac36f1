"""`dag` vs `simple` on a net of two independent heavy branches.

Each branch is a chain of elementwise activations over its own large float32
blob (NumPy releases the GIL inside them), so a `dag` net with two workers
can run the branches at the same time. Both nets run in this process on the
same inputs, inside `num_threads(--threads)` (default: every core), which also
caps the dag's workers; prints seconds per run and the speed-up simple / dag,
and checks that both give the same results.

    python benchmarks/dag_speedup.py [--size 4000000] [--depth 8] [--workers 2] [--threads N]
"""
from __future__ import annotations

import argparse
import functools
import os
import timeit

import numpy as np
from _common import all_cores

from pycaffe2.executor import Workspace, num_threads
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

CYCLE = ("Tanh", "Sigmoid", "Softsign", "Elu")


def two_branch_net(net_type: str, depth: int, workers: int) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name=net_type, type=net_type, num_workers=workers,
                            external_input=["A", "B"])
    for branch in ("A", "B"):
        blob = branch
        for index in range(depth):
            net.op.append(make_op(CYCLE[index % len(CYCLE)], [blob], [f"{branch}{index}"]))
            blob = f"{branch}{index}"
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4_000_000)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=all_cores())
    args = parser.parse_args()
    with num_threads(args.threads):
        compare(args)


def compare(args) -> None:
    rng = np.random.default_rng(0)
    workspace = Workspace("bench")
    for name in ("A", "B"):
        workspace.FeedBlob(name, rng.standard_normal(args.size).astype(np.float32))
    timings = {}
    for net_type in ("simple", "dag"):
        workspace.CreateNet(two_branch_net(net_type, args.depth, args.workers))
        timings[net_type] = min(timeit.repeat(functools.partial(workspace.RunNet, net_type), number=1,
                                              repeat=args.repeat))
        outputs = [workspace.FetchBlob(f"{b}{args.depth - 1}") for b in "AB"]
        if net_type == "simple":
            expected = outputs
        else:
            for got, want in zip(outputs, expected):
                np.testing.assert_array_equal(got, want)
    print(f"two branches x {args.depth} ops on {args.size:,} floats, {args.workers} workers, "
          f"{args.threads} thread(s), {os.cpu_count()} cores: simple {timings['simple']:.3f} s, dag {timings['dag']:.3f} s, "
          f"speed-up {timings['simple'] / timings['dag']:.2f}x")


if __name__ == "__main__":
    main()
