"""Where a model's inference time goes, ours beside ONNX Runtime's: `models_vs_ort.py --profile`.

Ours: each compiled step's kernel called alone (median of rounds) and summed per
op type; RunNet's time less that sum bounds the executor's dispatch. Then one
RunNet under cProfile counts the function calls each op makes: Python functions
(pycaffe2's, NumPy's wrappers) and C ones (NumPy, builtins); at around a
microsecond each they are the fixed cost of an op, which small inputs expose
(array operators such as `a @ b` are no calls to cProfile, so the counts are
lower bounds). ONNX Runtime: its own per-node profile of the same optimized
graph, summed per (fused) op type.
"""
from __future__ import annotations

import cProfile
import glob
import json
import os
import pstats
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pycaffe2

PYCAFFE2 = str(Path(pycaffe2.__file__).resolve().parent)


def per_op_type(case, repeat: int) -> tuple[dict, float, int]:
    """({op type: (count, seconds)}, RunNet seconds, op count), medians over `repeat` rounds."""
    compiled = case.ws.nets[case.net.name]
    blobs, steps = case.ws.blobs, compiled.steps
    case.ours()  # warm
    per_step = [[] for _ in steps]
    whole = []
    for _ in range(repeat):
        for index, step in enumerate(steps):
            args = [blobs[name] for name in step.inputs]
            start = time.perf_counter()
            result = step.function(*args, **step.kwargs)
            per_step[index].append(time.perf_counter() - start)
            step_outputs(step, result, blobs)
        start = time.perf_counter()
        case.ours()
        whole.append(time.perf_counter() - start)
    types: dict = defaultdict(lambda: [0, 0.0])
    for step, times in zip(steps, per_step):
        types[step.op_type][0] += 1
        types[step.op_type][1] += statistics.median(times)
    return dict(types), statistics.median(whole), len(steps)


def step_outputs(step, result, blobs) -> None:
    """Stores a kernel's result as Step.run does (no control ops in these models)."""
    if step.single:
        blobs[step.outputs[0]] = result
    else:
        blobs.update(zip(step.outputs, tuple(result[k] for k in range(len(step.outputs)))))


def calls(case) -> dict[str, int]:
    """Function calls of one RunNet under cProfile: pycaffe2 Python, NumPy Python, C."""
    profiler = cProfile.Profile()
    profiler.runcall(case.ours)
    counted = defaultdict(int)
    for (filename, _, function), (_, ncalls, _, _, _) in pstats.Stats(profiler).stats.items():
        if filename.startswith(PYCAFFE2) or filename == "<pycaffe2 net>":
            counted["pycaffe2 Python functions"] += ncalls
        elif os.sep + "numpy" + os.sep in filename:
            counted["NumPy Python functions"] += ncalls
        elif "_lsprof" not in function:  # not the profiler's own disable()
            counted["C functions (NumPy, builtins)"] += ncalls
    return dict(counted)


def onnxruntime_per_op_type(case, threads: int, repeat: int) -> tuple[dict, float]:
    """({ORT op type: (count per run, seconds per run)}, seconds per run) from ORT's profiler."""
    from _ort import session
    with tempfile.TemporaryDirectory() as folder:
        profiled = session(case.onnx, threads, profile_prefix=str(Path(folder) / "ort"))
        feed = {case.input: case.data}
        profiled.run(None, feed)
        start = time.perf_counter()
        for _ in range(repeat):
            profiled.run(None, feed)
        seconds = (time.perf_counter() - start) / repeat
        profiled.end_profiling()
        (path,) = glob.glob(str(Path(folder) / "ort*.json"))
        events = json.loads(Path(path).read_text())
    types: dict = defaultdict(lambda: [0, 0.0])
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            types[event["args"]["op_name"]][0] += 1
            types[event["args"]["op_name"]][1] += event["dur"] / 1e6
    runs = repeat + 1
    return {name: (count / runs, total / runs) for name, (count, total) in types.items()}, seconds


def profile(case, threads: int, repeat: int) -> str:
    types, whole, ops = per_op_type(case, repeat)
    counted = calls(case)
    ort_types, ort_whole = onnxruntime_per_op_type(case, threads, repeat)
    steps_total = sum(seconds for _, seconds in types.values())
    lines = [(f"## {case.name} batch {case.batch}, {threads} thread(s): RunNet {1000 * whole:.2f} ms, "
              f"ONNX Runtime {1000 * ort_whole:.2f} ms ({whole / ort_whole:.2f}x)"),
             "", f"{ops} ops; their kernels alone sum to {1000 * steps_total:.2f} ms, RunNet takes "
             f"{1e6 * (whole - steps_total) / ops:.1f} us per op more (the executor's dispatch, and noise); "
             "per op, one RunNet makes "
             + ", ".join(f"{count / ops:.0f} calls of {name}" for name, count in counted.items()),
             "", "| ours: op type | ops | ms | share | ms per op |", "|---|---|---|---|---|"]
    for name, (count, seconds) in sorted(types.items(), key=lambda item: -item[1][1]):
        lines.append(f"| {name} | {count} | {1000 * seconds:.3f} | {100 * seconds / steps_total:.0f}% | "
                     f"{1000 * seconds / count:.3f} |")
    ort_total = sum(seconds for _, seconds in ort_types.values()) or 1.0
    lines += ["", "| ONNX Runtime: op type | nodes | ms | share |", "|---|---|---|---|"]
    for name, (count, seconds) in sorted(ort_types.items(), key=lambda item: -item[1][1]):
        lines.append(f"| {name} | {count:g} | {1000 * seconds:.3f} | {100 * seconds / ort_total:.0f}% |")
    return "\n".join(lines) + "\n"
