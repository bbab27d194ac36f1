"""What every benchmark shares: one result row, interleaved timing, thread limits.

Each benchmark script exposes `rows(threads: int, repeat: int) -> list[Row]` so
that `run_all.py` can gather every case into one table, and keeps its own
`main()` for running it alone. Times are taken in rounds that alternate between
pycaffe2 and its peer (A, B, A, B, ...) so that load on the machine falls on
both alike; a row holds the median of those rounds.

Idle thread pools must not spin on the cores the next contestant needs: with every
library in one process on few cores, torch's OpenMP workers busy-wait after each
call and starve the next side's threads (a 2-thread LeNet at batch 1 took 15 ms
instead of 0.4 on 2 cores). So OMP_WAIT_POLICY defaults to PASSIVE here, which
holds for run_all.py (it imports this module before torch loads; a script run
alone imports torch first: export it there), and ONNX Runtime's pool is told not
to spin (_ort.session). OpenBLAS's workers sleep on their own.
"""
from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class Row:
    group: str  # "kernels", "models", "memory", "training", "validate", "dispatch"
    case: str
    peer: str  # "PyTorch", "ONNX Runtime", "NumPy by hand", "onnx.checker"
    ours: float
    theirs: float
    unit: str = "ms"
    threads: int = 1
    target: float | None = None  # the ceiling on ours / theirs, when it sets one
    lower_is_better: bool = True  # False for rates such as files/s

    @property
    def ratio(self) -> float:
        """How many times worse than the peer (1.0 is parity, below 1.0 ahead)."""
        if self.lower_is_better:
            return self.ours / self.theirs
        return self.theirs / self.ours

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def interleaved(functions: dict, repeat: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function over `repeat` rounds, the functions taking turns."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    seconds = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def thread_limit(threads: int):
    """BLAS/OpenMP pools (threadpoolctl) and torch, when installed, held to `threads`."""
    from threadpoolctl import threadpool_limits
    try:
        import torch
    except ImportError:
        torch = None
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def format_table(rows: list[Row]) -> str:
    """A Markdown table: case, threads, ours, peer, ratio, target."""
    lines = ["| group | case | threads | pycaffe2 | peer | peer value | ratio | target |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        target = "" if row.target is None else f"<= {row.target:g} {'met' if row.met else 'not met'}"
        lines.append(f"| {row.group} | {row.case} | {row.threads} | {row.ours:.4g} {row.unit} | {row.peer} | "
                     f"{row.theirs:.4g} {row.unit} | {row.ratio:.2f}x | {target} |")
    return "\n".join(lines)


def model_bench_args(doc: str, specs, default_models, batches, profile_help: str):
    """The command line the whole-model benchmarks share: (models, batches, threads, repeat,
    profile), the models checked against `specs`."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--models", default=",".join(default_models), help=f"of {', '.join(specs)}")
    parser.add_argument("--batches", default=",".join(map(str, batches)))
    parser.add_argument("--threads", default=f"1,{all_cores()}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help=profile_help)
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(specs))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(specs)}")
    return (models, [int(b) for b in args.batches.split(",")], sorted({int(t) for t in args.threads.split(",")}),
            args.repeat, args.profile)
