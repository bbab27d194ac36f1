#!/usr/bin/env python3
"""Fuzz pycaffe2's loaders with mutated seed files and count what goes wrong.

Each input is a seed of its loader family (the nets of nets/, the small real
Caffe2 nets of ../shared when present, small generated DBs and arrays) after
random mutations: bit flips, truncation, splices, inserted bytes and tokens,
and format-aware edits of protobuf fields, JSON/YAML values and .npy headers
(tests/fuzz/harness.py). A loader may accept an input or refuse it with a
PyCaffe2Error; anything else it raises, or a run past --timeout seconds, is a
failure. The table gives the counts per family; failures are saved under
--save (one file per distinct failure) to become regression tests.

    python scripts/fuzz_loaders.py --per-loader 1000          # a quick look
    python scripts/fuzz_loaders.py --seed 1 --jobs 8          # 100,000 per loader
    python scripts/fuzz_loaders.py --max-minutes 30           # what half an hour allows

Memory is capped per worker (--max-memory-mb) so a loader that allocates
without bound fails with MemoryError instead of taking the machine down.
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz import harness  # after the path is set


def _worker(task) -> dict:
    """Fuzz one family for `count` inputs starting at random seed `seed`."""
    family, count, seed, timeout, max_memory_mb, save = task
    if max_memory_mb:
        limit = max_memory_mb << 20
        # The data segment, not the address space: LMDB maps its whole map size (1 TiB) to read.
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    warnings.simplefilter("ignore")  # NumPy's notes on old .npy headers, by the thousand
    rng = random.Random(seed)
    counts, failures = collections.Counter(), {}
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{family}-") as folder:
        for _ in range(count):
            data = harness.mutate(family, rng)
            outcome, exc = harness.run_one(family, data, Path(folder), timeout)
            counts[outcome] += 1
            if outcome == "failed":
                frames = traceback.extract_tb(exc.__traceback__)
                key = (f"{type(exc).__name__} at {Path(frames[-1].filename).name}:{frames[-1].lineno}"
                       if frames else f"{type(exc).__name__}: {str(exc)[:60]}")
                if key not in failures:
                    failures[key] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    if save:
                        name = f"{family}-{len(failures)}-{seed}.bin"
                        Path(save, name).write_bytes(data)
    return {"family": family, "counts": counts, "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-loader", type=int, default=100_000, metavar="N",
                        help="inputs per loader family (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--loaders", nargs="+", choices=harness.FAMILIES, metavar="FAMILY",
                        default=list(harness.FAMILIES),
                        help=f"families to fuzz (default all: {' '.join(harness.FAMILIES)})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    parser.add_argument("--max-memory-mb", type=int, default=4096, help="data memory per worker")
    parser.add_argument("--save", metavar="DIR", help="write each distinct failing input here")
    parser.add_argument("--max-minutes", type=float, metavar="M",
                        help="stop after M minutes and report the inputs run so far")
    args = parser.parse_args(argv)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    harness.seeds()  # built once here, inherited by forked workers
    chunk = max(1, min(250, args.per_loader // max(1, args.jobs)))
    tasks = []  # round robin over the families, so that a stopped run covers each alike
    for index, begin in enumerate(range(0, args.per_loader, chunk)):
        for family in args.loaders:
            tasks.append((family, min(chunk, args.per_loader - begin),
                          args.seed * 1_000_003 + harness.FAMILIES.index(family) * 100_003 + index,
                          args.timeout, args.max_memory_mb, args.save))
    totals = {family: collections.Counter() for family in args.loaders}
    failures = {family: {} for family in args.loaders}
    start = time.perf_counter()
    stop = start + args.max_minutes * 60 if args.max_minutes else None
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for done, result in enumerate(pool.imap(_worker, tasks), 1):
            totals[result["family"]].update(result["counts"])
            failures[result["family"]].update(result["failures"])
            if done % len(args.loaders) == 0:
                ran = sum(sum(c.values()) for c in totals.values())
                failed = sum(c["failed"] for c in totals.values())
                print(f"{ran:,} inputs, {failed} failures, {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
                if stop is not None and time.perf_counter() > stop:
                    pool.terminate()  # the table counts whole rounds only
                    break
    seconds = time.perf_counter() - start
    print(f"{'loader':8} {'inputs':>9} {'accepted':>9} {'refused':>9} {'failures':>9}")
    for family in args.loaders:
        c = totals[family]
        print(f"{family:8} {sum(c.values()):>9,} {c['accepted']:>9,} {c['refused']:>9,} {c['failed']:>9,}")
    every = sum(sum(c.values()) for c in totals.values())
    failed = sum(c["failed"] for c in totals.values())
    print(f"{'all':8} {every:>9,} {'':>9} {'':>9} {failed:>9,}   ({seconds:.0f} s, {args.jobs} jobs, "
          f"seed {args.seed})")
    for family in args.loaders:
        for key, example in failures[family].items():
            print(f"  {family}: {key}: {example}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
