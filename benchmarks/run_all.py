"""Every benchmark of issue 17 in one Markdown table of ratios beside its peer.

Imports each benchmark module of MODULES that is present, calls its
`rows(threads, repeat)` (with `quick=True` too where it takes that) for one
thread and for all cores, and prints the machine, one table (_common.format_table)
and a summary of the targets met. A module that is absent, has no `rows`, or
whose peer package (torch, onnxruntime, onnx) is not installed is skipped with a
one-line note. The peers come with `pip install pycaffe2[bench]`.

    python benchmarks/run_all.py [--quick] [--only GROUP] [--markdown OUT]
        [--threads 1,2] [--repeat N]
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import platform
import sys
import time
from pathlib import Path

from _common import Row, all_cores, format_table

# module -> group of its rows (for --only without importing what is not wanted)
MODULES = {
    "conv_vs_torch": "kernels",
    "kernels_vs_torch": "kernels",
    "models_vs_ort": "models",
    "onnx_models_vs_ort": "onnx",
    "memory": "memory",
    "lenet_training": "training",
    "cifar10_iteration": "training",
    "dispatch_overhead": "dispatch",
    "validate_speed": "validate",
    "distributed_inference": "distributed",
    "distributed_training": "distributed",
}
PEERS = ("torch", "onnxruntime", "onnx", "threadpoolctl")


def load(name: str):
    """(module, None) or (None, why it is skipped)."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if exc.name == name:
            return None, f"{name}: not present"
        return None, f"{name}: needs {exc.name} (pip install pycaffe2[bench])"
    if not callable(getattr(module, "rows", None)):
        return None, f"{name}: has no rows(threads, repeat) yet"
    return module, None


def call_rows(module, threads: int, repeat: int, quick: bool) -> list[Row]:
    """module.rows(threads, repeat), with quick=True where the module takes it."""
    if quick and "quick" in inspect.signature(module.rows).parameters:
        return module.rows(threads, repeat, quick=True)
    return module.rows(threads, repeat)


def gather(modules: dict, thread_counts, repeat: int, quick: bool = False, only=None, log=print):
    """(rows, notes) of every module in `modules` (name -> group), `only` one group."""
    rows, notes = [], []
    for name, group in modules.items():
        if only and group != only:
            continue
        module, why = load(name)
        if module is None:
            notes.append(why)
            continue
        for threads in thread_counts:
            start = time.perf_counter()
            try:
                found = call_rows(module, threads, repeat, quick)
            except ImportError as exc:  # a peer imported only when the cases run
                notes.append(f"{name}: needs {exc.name} (pip install pycaffe2[bench])")
                break
            except Exception as exc:  # noqa: BLE001 (one broken benchmark should not lose the others' rows)
                notes.append(f"{name}, {threads} thread(s): failed: {type(exc).__name__}: {exc}")
                continue
            rows += [row for row in found if not only or row.group == only]
            log(f"{name}, {threads} thread(s): {len(found)} rows in {time.perf_counter() - start:.0f} s",
                file=sys.stderr)
    return rows, notes


def machine() -> str:
    """CPU model, cores, Python and the versions of NumPy and the peers."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    versions = []
    for package in ("numpy", *PEERS[:2]):
        try:
            versions.append(f"{package} {importlib.import_module(package).__version__}")
        except ImportError:
            versions.append(f"{package} absent")
    return (f"{cpu}, {all_cores()} cores available; Python {platform.python_version()}, "
            + ", ".join(versions))


def summary(rows: list[Row]) -> str:
    with_target = [row for row in rows if row.target is not None]
    missed: dict[str, int] = {}
    for row in with_target:
        if not row.met:
            missed[row.group] = missed.get(row.group, 0) + 1
    line = f"Targets: {len(with_target) - sum(missed.values())} of {len(with_target)} met"
    if missed:
        line += f"; not met: {', '.join(f'{group} {count}' for group, count in missed.items())}"
    return line


def report(rows: list[Row], notes: list[str], quick: bool) -> str:
    parts = [f"Machine: {machine()}" + (" (--quick: fewer sizes and rounds)" if quick else ""), "",
             format_table(rows), "", summary(rows)]
    if notes:
        parts += ["", "Skipped:", *(f"- {note}" for note in notes)]
    return "\n".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--only", choices=sorted(set(MODULES.values())), help="one group of rows")
    parser.add_argument("--markdown", metavar="OUT", help="also write the report to this file")
    parser.add_argument("--threads", help=f"thread counts, comma-separated (default 1,{all_cores()})")
    parser.add_argument("--repeat", type=int, help="interleaved rounds per case (default 5, --quick 2)")
    args = parser.parse_args(argv)
    try:
        thread_counts = sorted({int(t) for t in (args.threads or f"1,{all_cores()}").split(",")})
    except ValueError:
        parser.error(f"--threads {args.threads}: expected counts such as 1,2")
    repeat = args.repeat or (2 if args.quick else 5)
    rows, notes = gather(MODULES, thread_counts, repeat, quick=args.quick, only=args.only)
    text = report(rows, notes, args.quick)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
