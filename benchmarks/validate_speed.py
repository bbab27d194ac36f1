"""How fast `pycaffe2 validate` checks small net files, beside onnx.checker.

Writes N small CNN nets (8 to 24 ops each: Conv, Relu, MaxPool, Add, FC, Softmax
with declared input shapes, so shape inference runs), half as YAML model files
(`input_shapes` inside) written as `pycaffe2 convert` writes them, half as .pb
nets (shapes given to the check, as `--input-shape` does), and for each net the
equivalent ONNX model (the same ops: Conv, Relu, MaxPool, Add, Flatten + Gemm for
FC, Softmax; the same input shapes, weights as typed graph inputs). Then times, in one process and in interleaved
rounds:
  - pycaffe2: `validate.check_file` on every net file (read, parse, schemas,
    args, blobs, shapes), and
  - onnx.checker: `check_model(path, full_check=True)` on every .onnx file
    (read, parse, checker, strict shape inference),
and prints the per-file times and their ratio. The issue's files/s target is
measured on its own small files (chains of 8 to 24 activations on a known X,
half YAML model files, half .pb), beside its 2,000 files/s. A `parse only`
line (plain yaml/protobuf, the floor any checker pays) and
`pycaffe2 validate DIR` end to end (start-up included) are printed for context.

    python benchmarks/validate_speed.py [--files 400] [--repeat 5]

`rows(threads, repeat)` gives the same figures as benchmark Rows for run_all.py.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pycaffe2 import netfile
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.validate import check_file, net_files

try:
    from benchmarks._common import Row, interleaved, thread_limit
except ImportError:  # run as a script from elsewhere: benchmarks/ holds _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import Row, interleaved, thread_limit

FILES_PER_SECOND_TARGET = 2000
RATIO_TARGET = 4.0


def small_net(seed: int) -> dict:
    """A model tree: a CNN of 8 to 24 ops on X (N, C, H, W), weights as shaped inputs."""
    rng = random.Random(seed)
    n, c, size = rng.choice([1, 8]), rng.choice([3, 8]), rng.choice([16, 32])
    shapes, ops, blob = {"X": [n, c, size, size]}, [], "X"
    target = rng.randint(8, 24)

    def conv(source, channels_in, channels_out, name):
        shapes[f"{name}_w"], shapes[f"{name}_b"] = [channels_out, channels_in, 3, 3], [channels_out]
        ops.append({"type": "Conv", "input": [source, f"{name}_w", f"{name}_b"], "output": [name],
                    "arg": {"kernel": 3, "pad": 1, "stride": 1}})
        ops.append({"type": "Relu", "input": [name], "output": [f"{name}_relu"]})
        return f"{name}_relu"

    while len(ops) < target - 2:
        index = len(ops)
        choice = rng.random()
        if choice < 0.2 and size >= 4:
            ops.append({"type": "MaxPool", "input": [blob], "output": [f"p{index}"],
                        "arg": {"kernel": 2, "stride": 2}})
            blob, size = f"p{index}", size // 2
        elif choice < 0.4:
            left = conv(blob, c, c, f"a{index}")
            right = conv(blob, c, c, f"b{index}")
            ops.append({"type": "Add", "input": [left, right], "output": [f"s{index}"]})
            blob = f"s{index}"
        else:
            out = rng.choice([8, 16])
            blob, c = conv(blob, c, out, f"c{index}"), out
    classes = 10
    shapes["fc_w"], shapes["fc_b"] = [classes, c * size * size], [classes]
    ops.append({"type": "FC", "input": [blob, "fc_w", "fc_b"], "output": ["logits"]})
    ops.append({"type": "Softmax", "input": ["logits"], "output": ["prob"]})
    net = {"name": f"net{seed}", "external_input": list(shapes), "external_output": ["prob"], "op": ops}
    return {"predict_net": net, "input_shapes": shapes}


def onnx_model(tree: dict):
    """The ONNX twin of a small_net tree: same ops, same typed inputs (opset 13)."""
    from onnx import TensorProto, helper
    net, shapes = tree["predict_net"], tree["input_shapes"]
    nodes = []
    for op in net["op"]:
        kind, args = op["type"], op.get("arg", {})
        if kind == "Conv":
            nodes.append(helper.make_node("Conv", op["input"], op["output"], kernel_shape=[3, 3],
                                          pads=[args["pad"]] * 4, strides=[args["stride"]] * 2))
        elif kind == "MaxPool":
            nodes.append(helper.make_node("MaxPool", op["input"], op["output"], kernel_shape=[2, 2],
                                          strides=[2, 2]))
        elif kind == "FC":
            flat = op["input"][0] + "_flat"
            nodes.append(helper.make_node("Flatten", op["input"][:1], [flat], axis=1))
            nodes.append(helper.make_node("Gemm", [flat, *op["input"][1:]], op["output"], transB=1))
        elif kind == "Softmax":
            nodes.append(helper.make_node("Softmax", op["input"], op["output"], axis=1))
        else:  # Relu, Add
            nodes.append(helper.make_node(kind, op["input"], op["output"]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in shapes.items()]
    outputs = [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [shapes["X"][0], 10])]
    graph = helper.make_graph(nodes, net["name"], inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def write_corpus(folder: Path, count: int, with_onnx: bool = True) -> list[tuple[Path, dict, Path | None]]:
    """(net file, the shapes to give its check, its .onnx twin) for each of `count` nets."""
    import onnx
    cases = []
    (folder / "onnx").mkdir()
    for seed in range(count):
        tree = small_net(seed)
        temporary = folder / f"tmp{seed}.yaml"
        temporary.write_text(yaml.safe_dump(tree))
        model = netfile.load_model(temporary)  # the friendly tree, typed by the schemas
        temporary.unlink()
        if seed % 2:  # as `pycaffe2 convert` writes YAML
            path, shapes = folder / f"net{seed}.yaml", None
            netfile.save_model(model, path)
        else:
            path, shapes = folder / f"net{seed}.pb", model.input_shapes
            netfile.save_net(model.predict_net, path)
        twin = None
        if with_onnx:
            twin = folder / "onnx" / f"net{seed}.onnx"
            onnx.save(onnx_model(tree), twin)
        cases.append((path, shapes, twin))
    return cases


ACTIVATIONS = ["Relu", "Sigmoid", "Tanh", "HardSigmoid", "Softsign", "Elu"]


def activation_net(seed: int) -> dict:
    """The issue's small file: a chain of 8 to 24 activations on X [8, 16] (shapes known)."""
    rng = random.Random(seed)
    ops, blob = [], "X"
    for index in range(rng.randint(8, 24)):
        op_type = rng.choice(ACTIVATIONS)
        ops.append({"type": op_type, "input": [blob], "output": [f"h{index}"]})
        if op_type == "HardSigmoid":
            ops[-1]["arg"] = {"alpha": 0.2, "beta": 0.5}
        blob = f"h{index}"
    net = {"name": f"net{seed}", "external_input": ["X"], "external_output": [blob], "op": ops}
    return {"predict_net": net, "input_shapes": {"X": [8, 16]}}


def small_files_per_second(count: int, repeat: int) -> float:
    """check_file's rate over the issue's small files: half YAML model files, half .pb nets."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for seed in range(count):
            tree = activation_net(seed)
            path = Path(tmp) / f"net{seed}.yaml"
            path.write_text(yaml.safe_dump(tree if seed % 2 else tree["predict_net"]))
            if not seed % 2:
                netfile.save_net(netfile.load_net(path), path.with_suffix(".pb"))
                path.unlink()
                path = path.with_suffix(".pb")
            files.append(path)
        seconds = interleaved({"ours": lambda: [check_file(path) for path in files]}, repeat)["ours"]
    return count / seconds


def parse_only(files: list[Path]) -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in files:
        if path.suffix == ".pb":
            caffe2_pb2.NetDef.FromString(path.read_bytes())
        else:
            yaml.load(path.read_bytes(), Loader=loader)


def measure(count: int, repeat: int) -> dict:
    """Seconds per file for pycaffe2 and onnx.checker (medians of interleaved rounds), and the rest."""
    import onnx.checker
    all_schemas()  # loaded once per process, as in the command
    with tempfile.TemporaryDirectory() as tmp:
        cases = write_corpus(Path(tmp), count)
        problems = sum(len(check_file(path, shapes)) for path, shapes, _ in cases)
        if problems:
            raise SystemExit(f"the generated nets should be valid; {problems} problem(s) found")

        def ours():
            for path, shapes, _ in cases:
                check_file(path, shapes)

        def theirs():
            for _, _, twin in cases:
                onnx.checker.check_model(str(twin), full_check=True)

        def floor():
            parse_only([path for path, _, _ in cases])

        seconds = interleaved({"ours": ours, "theirs": theirs, "floor": floor}, repeat)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pycaffe2", "validate", str(tmp), "--exclude", "onnx/"],
                       check=False, capture_output=True)
        command = time.perf_counter() - start
        files = len(net_files([tmp], exclude=["onnx/"]))
    return {name: value / count for name, value in seconds.items()} | {"count": count, "command": command,
                                                                        "command_files": files}


def rows(threads: int = 1, repeat: int = 5, count: int = 400) -> list[Row]:
    """Per-file check time beside onnx.checker (target 4x), and the small files' rate beside
    the issue's 2,000 files/s (target: at least that, ratio <= 1)."""
    with thread_limit(threads):
        figures = measure(count, repeat)
        rate = small_files_per_second(count, repeat)
    ours, theirs = figures["ours"], figures["theirs"]
    return [Row("validate", f"check {count} small CNN nets (8-24 ops, shapes known), per file", "onnx.checker",
                ours * 1e3, theirs * 1e3, "ms", threads, RATIO_TARGET),
            Row("validate", f"check {count} small activation nets (8-24 ops), files/s", "issue 17 target",
                rate, FILES_PER_SECOND_TARGET, "files/s", threads, 1.0, lower_is_better=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with thread_limit(1):
        figures = measure(options.files, options.repeat)
        rate = small_files_per_second(options.files, options.repeat)
    ours, theirs, floor = figures["ours"], figures["theirs"], figures["floor"]
    print(f"{figures['count']} small CNN nets (half YAML model files, half .pb), medians of "
          f"{options.repeat} interleaved rounds, 1 thread")
    print(f"pycaffe2 check_file:               {ours * 1e6:8.1f} us/file  {1 / ours:8.0f} files/s")
    print(f"onnx.checker full_check=True:      {theirs * 1e6:8.1f} us/file  {1 / theirs:8.0f} files/s")
    print(f"ratio pycaffe2 / onnx.checker:     {ours / theirs:8.2f}x (target <= {RATIO_TARGET:g}x)")
    print(f"parse only (yaml/protobuf floor):  {floor * 1e6:8.1f} us/file  (check / parse {ours / floor:.2f}x)")
    print(f"small activation nets (the issue's files/s case): {rate:8.0f} files/s (target >= "
          f"{FILES_PER_SECOND_TARGET})")
    print(f"`pycaffe2 validate DIR`:           {figures['command']:8.3f} s for {figures['command_files']} "
          "files (one process, start-up included)")


if __name__ == "__main__":
    main()
