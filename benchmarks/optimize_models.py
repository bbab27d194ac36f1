"""Inference time of the bundled models before and after the inference transforms.

Runs nets/models/{squeezenet1_1,resnet50} as they are and through
`Workspace.CreateNet(optimize=True)` (pycaffe2.transforms: SpatialBN folded into its
Conv, test-mode Dropout dropped, ops in place) in one workspace, on one random batch,
checks that the outputs agree, and prints the median RunNet time of each over
interleaved rounds and the ratio optimized / unoptimized (lower is better).

    python benchmarks/optimize_models.py [--batch 8] [--repeat 5] [--threads 1]
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(format_table(rows(args.threads, args.repeat, args.batch)))


if __name__ == "__main__":
    main()
