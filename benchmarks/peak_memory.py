"""Peak memory of ResNet-50 inference beside ONNX Runtime, each in a process of its own.

Each case runs once in a fresh Python process and reports its VmHWM (the peak
resident set, from /proc/self/status): pycaffe2 with `free_blobs` (what
`pycaffe2 run` does), pycaffe2 keeping every blob, and ONNX Runtime on the same
network and weights, exported here from nets/models/resnet50 with onnx.helper
(Conv, BatchNormalization, Relu, Sum, MaxPool, GlobalAveragePool, Gemm, Softmax;
the logits are checked against ours on a small batch first). Linux only; needs
onnx and onnxruntime.

    python benchmarks/peak_memory.py [--batch 32] [--threads 1]
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

MODEL = Path(__file__).resolve().parent.parent / "nets" / "models" / "resnet50"


def peak_gb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]) / 2**20


def batch_of(size: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((size, 3, 224, 224)).astype(np.float32)


def _ints(op, name, default):
    return next((a.i for a in op.arg if a.name == name), default)


def export_onnx(path: str) -> float:
    """Write the ResNet-50 pair as ONNX (weights from our init net); returns the largest
    difference of the logits from ours on a batch of 2."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from pycaffe2 import netfile
    from pycaffe2.executor import Workspace
    model = netfile.load_model(MODEL)
    ws = Workspace(seed=0)
    ws.RunNetOnce(model.init_net)
    nodes, weights, latest = [], {}, {}
    for k, op in enumerate(model.predict_net.op):
        inputs = [latest.get(name, name) for name in op.input]
        out = op.output[0] if op.output[0] not in op.input else f"{op.output[0]}__{k}"  # ONNX is SSA
        latest[op.output[0]] = out
        weights.update((name, ws.FetchBlob(name)) for name in op.input[1:] if op.type in ("Conv", "SpatialBN", "FC"))
        size, stride, pad = _ints(op, "kernel", 1), _ints(op, "stride", 1), _ints(op, "pad", 0)
        window = {"kernel_shape": [size] * 2, "strides": [stride] * 2, "pads": [pad] * 4}
        if op.type in ("Conv", "MaxPool"):
            nodes.append(helper.make_node(op.type, inputs, [out], **window))
        elif op.type == "SpatialBN":
            epsilon = next((a.f for a in op.arg if a.name == "epsilon"), 1e-5)
            nodes.append(helper.make_node("BatchNormalization", inputs, [out], epsilon=epsilon))
        elif op.type == "AveragePool":  # global, then flat for the FC
            nodes += [helper.make_node("GlobalAveragePool", inputs, [out + "_4d"]),
                      helper.make_node("Flatten", [out + "_4d"], [out])]
        elif op.type == "FC":
            nodes.append(helper.make_node("Gemm", inputs, [out], transB=1))
        else:  # Relu, Sum, Softmax
            nodes.append(helper.make_node(op.type, inputs, [out]))
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 1000])
               for name in (latest["softmax"], latest["pred"])]
    graph = helper.make_graph(nodes, "resnet50", [helper.make_tensor_value_info(
        "data", TensorProto.FLOAT, ["N", 3, 224, 224])], outputs,
        [numpy_helper.from_array(value, name) for name, value in weights.items()])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, path)
    x = batch_of(2)
    theirs = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"data": x})[1]
    ws.FeedBlob("data", x)
    ws.CreateNet(model.predict_net)
    ws.RunNet(model.predict_net.name)
    return float(np.abs(ws.FetchBlob("pred") - theirs).max() / np.abs(theirs).max())


def child(case: str, batch: int, threads: int, onnx_path: str) -> dict:
    """Run one case in this process; {"peak_gb": VmHWM after the run}."""
    from pycaffe2.executor import num_threads
    with num_threads(threads):
        if case == "ort":
            import onnxruntime
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
            session.run(None, {"data": batch_of(batch)})
        else:
            from pycaffe2.run.model import ModelRunner
            runner = ModelRunner(MODEL, feeds={"data": batch_of(batch)}, seed=0, free_blobs=case == "free")
            runner.run()
            runner.fetch(["softmax"])
    return {"peak_gb": peak_gb()}


def _in_process(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"peak_memory {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(threads: int = 1, repeat: int = 1, batch: int = 32) -> list[Row]:
    """ResNet-50 at `batch`: pycaffe2 (free_blobs, and every blob kept) beside ONNX Runtime,
    in GB of VmHWM; `repeat` is unused (one run per process is the measurement)."""
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = str(Path(folder) / "resnet50.onnx")
        export = _in_process("export", str(batch), str(threads), onnx_path)
        if export["relative_difference"] > 1e-4:
            raise RuntimeError(f"the exported model differs from ours: {export['relative_difference']:.3g}")
        peaks = {case: _in_process(case, str(batch), str(threads), onnx_path)["peak_gb"]
                 for case in ("ort", "free", "keep")}
    case = f"ResNet-50 batch {batch} peak (VmHWM)"
    return [Row("memory", case, "ONNX Runtime", peaks["free"], peaks["ort"], unit="GB", threads=threads,
                target=1.5),
            Row("memory", case + ", every blob kept", "ONNX Runtime", peaks["keep"], peaks["ort"], unit="GB",
                threads=threads)]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        case, batch, threads, onnx_path = sys.argv[2:6]
        if case == "export":
            print(json.dumps({"relative_difference": export_onnx(onnx_path)}))
        else:
            print(json.dumps(child(case, int(batch), int(threads), onnx_path)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(format_table(rows(args.threads, batch=args.batch)))


if __name__ == "__main__":
    main()
