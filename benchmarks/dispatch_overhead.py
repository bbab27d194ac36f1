"""Dispatch overhead of RunNet on a net of many tiny ops.

A chain of 500 ops (Add, Mul, Relu in turn) on 16-element float32 blobs, run
by a created net, beside the same NumPy calls written by hand in one Python
function over a dict of arrays (what the net does, minus pycaffe2). Both run
in this process; prints microseconds per op and the ratio net / hand-written.

    python benchmarks/dispatch_overhead.py [--ops 500] [--repeat 200]
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

CYCLE = ("Add", "Mul", "Relu")


def chain_net(num_ops: int) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="chain", external_input=["X", "C"])
    blob = "X"
    for index in range(num_ops):
        op_type = CYCLE[index % len(CYCLE)]
        inputs = [blob] if op_type == "Relu" else [blob, "C"]
        net.op.append(make_op(op_type, inputs, [f"h{index}"]))
        blob = f"h{index}"
    return net


def by_hand(num_ops: int):
    """The same computation, NumPy calls in a loop over a dict of blobs."""
    functions = {"Add": np.add, "Mul": np.multiply, "Relu": lambda x: np.maximum(x, 0)}
    plan = []
    blob = "X"
    for index in range(num_ops):
        op_type = CYCLE[index % len(CYCLE)]
        inputs = (blob,) if op_type == "Relu" else (blob, "C")
        plan.append((functions[op_type], inputs, f"h{index}"))
        blob = f"h{index}"

    def run(blobs):
        for function, inputs, output in plan:
            blobs[output] = function(*[blobs[name] for name in inputs])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    c = np.full(16, 0.5, np.float32)
    workspace = Workspace("bench")
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("C", c)
    workspace.CreateNet(chain_net(args.ops))
    hand, blobs = by_hand(args.ops), {"X": x, "C": c}

    def best(function):
        return min(timeit.repeat(function, number=args.repeat, repeat=5)) / args.repeat

    net_s = best(lambda: workspace.RunNet("chain"))
    hand_s = best(lambda: hand(blobs))
    np.testing.assert_allclose(workspace.FetchBlob(f"h{args.ops - 1}"), blobs[f"h{args.ops - 1}"])
    print(f"{args.ops} ops of 16 floats: RunNet {net_s * 1e6 / args.ops:.3f} us/op, "
          f"hand-written NumPy {hand_s * 1e6 / args.ops:.3f} us/op, ratio {net_s / hand_s:.2f}")


if __name__ == "__main__":
    main()
