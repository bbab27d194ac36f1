"""Peak resident memory of ResNet-50 inference: pycaffe2 beside ONNX Runtime, each in a fresh process.

Each side runs in its own subprocess and reports its peak resident set (VmHWM in
/proc/self/status) after two runs of one batch (32 by default). Ours: as
`pycaffe2 optimize` then `pycaffe2 run` do it: the model through the inference
transforms (folded weights in the new init net, the originals gone), that init
net run, the predict net created with blobs freed after their last reader, and
RunNet. ONNX Runtime: the same
net and weights exported by pycaffe2.onnx.export in the parent and saved to a
temporary file, so its process imports only onnxruntime and NumPy. The issue's
target: ours within 1.5x ORT. Linux only (VmHWM).

    python benchmarks/memory.py [--batch 32] [--model resnet50] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import Row, format_table

HERE = Path(__file__).resolve().parent
TARGET = 1.5


def peak_mb() -> float:
    """This process's peak resident set, in MB (10^6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_ours(model: str, batch: int, threads: int) -> dict:
    from models_vs_ort import SPECS, load_model
    from threadpoolctl import threadpool_limits  # not _common.thread_limit: that imports torch

    from pycaffe2.executor.workspace import Workspace
    from pycaffe2.transforms import optimize_inference
    init, net = load_model(model)
    optimized = optimize_inference(net, init, keep=net.external_output, fuse_conv_relu=True)
    del init
    ws = Workspace()
    ws.RunNetOnce(optimized.init_net)
    data = np.random.default_rng(0).standard_normal((batch, *SPECS[model][1])).astype(np.float32)
    ws.FeedBlob("data", data)
    ws.CreateNet(optimized.predict_net, free_blobs=True, keep=net.external_output)
    mode = "optimized, blobs freed"
    with threadpool_limits(limits=threads):
        for _ in range(2):
            ws.RunNet(optimized.predict_net.name)
    return {"mb": peak_mb(), "mode": mode}


def run_ort(path: str, batch: int, shape: list, threads: int) -> dict:
    import onnxruntime as ort
    from _ort import session  # imports neither onnx nor pycaffe2
    session_ = session(path, threads)
    data = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    for _ in range(2):
        session_.run(None, {session_.get_inputs()[0].name: data})
    return {"mb": peak_mb(), "mode": f"onnxruntime {ort.__version__}"}


def _child(args: list[str]) -> dict:
    """Runs this file with `args` in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def onnx_file(model: str, batch: int, folder: str) -> str:
    """The model converted for ONNX Runtime, saved under `folder`."""
    from models_vs_ort import Case
    case = Case(model, batch, threads=1)
    case.check()
    import onnx
    path = str(Path(folder) / f"{model}.onnx")
    onnx.save(case.onnx, path)
    return path


def rows(threads: int, repeat: int, quick: bool = False, model: str = "resnet50", batch: int = 32) -> list[Row]:
    """One row: peak MB of ours and of ORT (`repeat` is unused: one run each is deterministic enough)."""
    from models_vs_ort import SPECS
    batch = 8 if quick else batch
    shape = list(SPECS[model][1])
    with tempfile.TemporaryDirectory() as folder:
        path = onnx_file(model, batch, folder)
        ours = _child(["--child", "ours", "--model", model, "--batch", str(batch), "--threads", str(threads)])
        theirs = _child(["--child", "ort", "--onnx", path, "--batch", str(batch),
                         "--shape", ",".join(map(str, shape)), "--threads", str(threads)])
    case = f"{SPECS[model][0]} batch {batch} peak RSS ({ours['mode']})"
    return [Row("memory", case, "ONNX Runtime", ours["mb"], theirs["mb"], unit="MB", threads=threads,
                target=TARGET)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["ours", "ort"], help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(run_ours(args.model, args.batch, args.threads)))
    elif args.child == "ort":
        shape = [int(d) for d in args.shape.split(",")]
        print(json.dumps(run_ort(args.onnx, args.batch, shape, args.threads)))
    else:
        print(format_table(rows(args.threads, 1, model=args.model, batch=args.batch)))


if __name__ == "__main__":
    main()
