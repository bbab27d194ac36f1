"""How fast `pycaffe2 validate` checks a folder of small net files.

Writes N small nets (half YAML model files with input shapes, so shape
inference runs, half .pb nets; 8 to 24 ops each), then times, in one process:
  - parse only: reading every file into a NetDef with plain yaml/protobuf
    (the floor any checker pays), and
  - validate: pycaffe2's full check of every file (schemas, args, blobs, shapes),
and the `pycaffe2 validate DIR` command end to end (start-up included).
Prints seconds, files per second and the ratio validate / parse-only.

    python benchmarks/validate_speed.py [--files 1000]
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

ACTIVATIONS = ["Relu", "Sigmoid", "Tanh", "HardSigmoid", "Softsign", "Elu"]


def small_net(seed: int) -> dict:
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


def write_corpus(folder: Path, count: int) -> None:
    for seed in range(count):
        tree = small_net(seed)
        if seed % 2:
            (folder / f"net{seed}.yaml").write_text(yaml.safe_dump(tree))
        else:
            path = folder / f"tmp{seed}.yaml"
            path.write_text(yaml.safe_dump(tree["predict_net"]))
            netfile.save_net(netfile.load_net(path), folder / f"net{seed}.pb")
            path.unlink()


def parse_only(files: list[Path]) -> None:
    for path in files:
        if path.suffix == ".pb":
            caffe2_pb2.NetDef.FromString(path.read_bytes())
        else:
            yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    count = parser.parse_args().files
    all_schemas()  # loaded once per process, as in the command
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_corpus(folder, count)
        files = net_files([folder])
        floor = min(timed(parse_only, files) for _ in range(3))
        full = min(timed(lambda: [check_file(p) for p in files]) for _ in range(3))
        problems = sum(len(check_file(p)) for p in files)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pycaffe2", "validate", str(folder)],
                       check=True, capture_output=True)
        command = time.perf_counter() - start
    print(f"{len(files)} net files, {problems} problems found")
    print(f"parse only (yaml/protobuf):  {floor:7.3f} s  {len(files) / floor:9.0f} files/s")
    print(f"pycaffe2 check_file:         {full:7.3f} s  {len(files) / full:9.0f} files/s")
    print(f"ratio check / parse only:    {full / floor:7.2f}")
    print(f"`pycaffe2 validate DIR`:     {command:7.3f} s  (one process, start-up included)")


if __name__ == "__main__":
    main()
