"""Dispatch overhead of RunNet on a net of many tiny ops.

A chain of 500 ops (Add, Mul, Relu in turn) on 16-element float32 blobs, run
by a created net, beside the same NumPy calls written out as one straight-line
Python function (`h1 = np.multiply(h0, C)` ..., what a person would write by
hand; its source is generated here only because it is 500 lines long). Rows:
RunNet as created by default (every blob kept in the workspace) and with
`free_blobs=True`. Both sides run in this process, in alternating rounds of
10 runs; each takes its best round (a 200 us run is mostly scheduler noise on a
shared machine, and the fastest round is the one nothing interrupted); prints
microseconds per op and the ratio net / hand-written.

    python benchmarks/dispatch_overhead.py [--ops 500] [--repeat 30] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import Row, format_table, thread_limit

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

CYCLE = ("Add", "Mul", "Relu")
CALLS = 10  # runs per timed round


def best_rounds(functions: dict, repeat: int) -> dict[str, float]:
    """Seconds per call of each function in its best round of CALLS calls, the
    functions taking turns round by round (after one warm-up round each)."""
    best = dict.fromkeys(functions, float("inf"))
    for round_index in range(repeat + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                function()
            if round_index:
                best[name] = min(best[name], (time.perf_counter() - start) / CALLS)
    return best


def chain_net(num_ops: int, name: str = "chain") -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name=name, external_input=["X", "C"], external_output=[f"h{num_ops - 1}"])
    blob = "X"
    for index in range(num_ops):
        op_type = CYCLE[index % len(CYCLE)]
        inputs = [blob] if op_type == "Relu" else [blob, "C"]
        net.op.append(make_op(op_type, inputs, [f"h{index}"]))
        blob = f"h{index}"
    return net


def by_hand(num_ops: int):
    """The chain as a straight-line NumPy function of (X, C) returning the last blob."""
    calls = {"Add": "np.add({}, C)", "Mul": "np.multiply({}, C)", "Relu": "np.maximum({}, 0)"}
    lines, blob = ["def chain(X, C):"], "X"
    for index in range(num_ops):
        lines.append(f"    h{index} = " + calls[CYCLE[index % len(CYCLE)]].format(blob))
        blob = f"h{index}"
    lines.append(f"    return {blob}")
    namespace = {"np": np}
    exec("\n".join(lines), namespace)  # noqa: S102 (the benchmark's own text)
    return namespace["chain"]


def rows(threads: int = 1, repeat: int = 30, num_ops: int = 500) -> list[Row]:
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    c = np.full(16, 0.5, np.float32)
    workspaces = {}
    for free in (False, True):
        workspaces[free] = Workspace(f"bench_{free}")
        workspaces[free].FeedBlob("X", x)
        workspaces[free].FeedBlob("C", c)
        workspaces[free].CreateNet(chain_net(num_ops), free_blobs=free)
    hand = by_hand(num_ops)

    with thread_limit(threads):
        seconds = best_rounds({"kept": lambda: workspaces[False].RunNet("chain"),
                               "hand": lambda: hand(x, c),
                               "free": lambda: workspaces[True].RunNet("chain")}, repeat)
    last = f"h{num_ops - 1}"
    for free in (False, True):
        np.testing.assert_allclose(workspaces[free].FetchBlob(last), hand(x, c))
    per_op = {key: value * 1e6 / num_ops for key, value in seconds.items()}
    return [Row("dispatch", f"RunNet, {num_ops} tiny ops{', free_blobs' if free else ''}", "NumPy by hand",
                per_op["free" if free else "kept"], per_op["hand"], unit="us/op", threads=threads, target=1.0)
            for free in (False, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(format_table(rows(args.threads, args.repeat, args.ops)))


if __name__ == "__main__":
    main()
