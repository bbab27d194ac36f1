"""Inference time of the bundled models before and after the inference transforms.

Runs nets/models/{squeezenet1_1,resnet50} as they are and through
`Workspace.CreateNet(optimize=True)` (pycaffe2.transforms: SpatialBN folded into its
Conv, test-mode Dropout dropped, ops in place) in one workspace, on one random batch,
checks that the outputs agree, and prints the median RunNet time of each over
interleaved rounds and the ratio optimized / unoptimized (lower is better). With
--memory it also runs each model once per variant in a process of its own and
compares their peak resident memory (VmHWM, Linux).

    python benchmarks/optimize_models.py [--batch 8] [--repeat 5] [--threads 1] [--memory]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks._common import Row, format_table, interleaved, thread_limit
from pycaffe2 import netfile
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2

MODELS = Path(__file__).resolve().parent.parent / "nets" / "models"
LOGITS = {"squeezenet1_1": "pool10", "resnet50": "pred"}  # compared before the softmax saturates


def _compare(name: str, batch: int, threads: int, repeat: int) -> Row:
    model = netfile.load_model(MODELS / name)
    ws = Workspace(seed=0)
    ws.RunNetOnce(model.init_net)
    ws.FeedBlob("data", np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    before, after = caffe2_pb2.NetDef(), caffe2_pb2.NetDef()
    before.CopyFrom(model.predict_net)
    after.CopyFrom(model.predict_net)
    before.name, after.name = "before", "after"
    after.external_output.append(LOGITS[name])  # fetched below, so it must stay
    ws.CreateNet(before)
    ws.CreateNet(after, optimize=True)
    outputs = {}
    for net in ("before", "after"):
        ws.RunNet(net)
        outputs[net] = ws.FetchBlob(LOGITS[name])
    scale = np.abs(outputs["before"]).max()
    np.testing.assert_allclose(outputs["after"], outputs["before"], rtol=1e-3, atol=1e-4 * scale)
    with thread_limit(threads):
        seconds = interleaved({"after": lambda: ws.RunNet("after"), "before": lambda: ws.RunNet("before")},
                              repeat)
    return Row("transforms", f"{name} batch {batch} optimized", "pycaffe2 unoptimized",
               seconds["after"] * 1e3, seconds["before"] * 1e3, threads=threads)


def rows(threads: int = 1, repeat: int = 5, batch: int = 8) -> list[Row]:
    return [_compare(name, batch, threads, repeat) for name in LOGITS]


_PEAK = """
import sys, numpy as np
from threadpoolctl import threadpool_limits
from pycaffe2 import netfile
from pycaffe2.executor import Workspace
model = netfile.load_model(sys.argv[1])
ws = Workspace(seed=0)
ws.RunNetOnce(model.init_net)
ws.FeedBlob("data", np.zeros((int(sys.argv[3]), 3, 224, 224), np.float32))
ws.CreateNet(model.predict_net, optimize=sys.argv[2] == "1")
with threadpool_limits(1):
    ws.RunNet(model.predict_net.name)
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0])
"""


def memory_rows(batch: int = 8) -> list[Row]:
    """Peak memory (MB) of one run, optimized (folded copies beside the originals) vs not."""
    root = str(Path(__file__).resolve().parent.parent)
    peaks = {}
    for name in LOGITS:
        for optimize in ("1", "0"):
            out = subprocess.run([sys.executable, "-c", _PEAK, str(MODELS / name), optimize, str(batch)],
                                 capture_output=True, text=True, check=True, cwd=root)
            peaks[name, optimize] = int(out.stdout.split()[-1]) / 1024
    return [Row("memory", f"{name} batch {batch} optimized, peak", "pycaffe2 unoptimized",
                peaks[name, "1"], peaks[name, "0"], unit="MB") for name in LOGITS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="also compare peak memory (separate processes)")
    args = parser.parse_args()
    table = rows(args.threads, args.repeat, args.batch)
    print(format_table(table + (memory_rows(args.batch) if args.memory else [])))


if __name__ == "__main__":
    main()
