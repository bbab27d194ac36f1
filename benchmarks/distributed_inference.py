"""ResNet-50 batch inference on Dask workers beside the same batches in this process.

The model: nets/models/resnet50 (init_net.pb fills the weights, with a fixed seed so
every worker makes the same ones). The input: --images random 224x224 images scored
in batches of --batch. The peer is the single-process run of the same batches: one
ModelRunner here, on one BLAS thread as each Dask worker has (Dask's nanny sets
OMP/MKL/OPENBLAS_NUM_THREADS=1). For each worker count, startup (the LocalCluster
starting, then the first predict call: each worker imports pycaffe2 and runs the init
net once) is reported apart from steady throughput (a second predict call on the same
cluster, the model already loaded in every worker). Ratios are steady images/s over the
single-process images/s (higher is better; the ideal is the worker count, while there
are cores for it). Outputs are checked against the single-process run.

    python benchmarks/distributed_inference.py [--images 64] [--batch 8] [--workers 1,2] [--repeat 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import Row, all_cores, format_table, thread_limit

from pycaffe2.distributed import predict, workers_client
from pycaffe2.distributed.scoring import model_spec

MODEL = Path(__file__).resolve().parent.parent / "nets" / "models" / "resnet50"
SEED = 0


def single_process(images: np.ndarray, batch: int, repeat: int, threads: int = 1) -> tuple[float, float, dict]:
    """(seconds to load, best seconds to score every batch, results) in this process on `threads`."""
    with thread_limit(threads):
        start = time.perf_counter()
        runner = model_spec(MODEL, seed=SEED).runner({"data": images[:batch]})
        load = time.perf_counter() - start
        best, out = float("inf"), []
        for _ in range(repeat):
            start, out = time.perf_counter(), []
            for first in range(0, len(images), batch):
                runner.feed({"data": images[first:first + batch]})
                runner.run()
                out.append(runner.fetch()["softmax"])
            best = min(best, time.perf_counter() - start)
    return load, best, {"softmax": np.concatenate(out)}


def on_workers(images: np.ndarray, batch: int, workers: int, repeat: int) -> dict:
    """Startup and steady figures of one LocalCluster of `workers` processes."""
    start = time.perf_counter()
    with workers_client(workers) as client:
        cluster = time.perf_counter() - start
        start = time.perf_counter()
        out = predict(MODEL, {"data": images}, client=client, batch_size=batch, seed=SEED)
        first = time.perf_counter() - start
        steady = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            out = predict(MODEL, {"data": images}, client=client, batch_size=batch, seed=SEED)
            steady = min(steady, time.perf_counter() - start)
    return {"cluster": cluster, "first": first, "steady": steady, "out": out}


def measure(images_count: int, batch: int, worker_counts, repeat: int, threads: int = 1) -> list[dict]:
    """The single process on `threads` (BLAS threads), then each worker count (one thread a worker)."""
    images = np.random.default_rng(0).standard_normal((images_count, 3, 224, 224)).astype(np.float32)
    load, alone, reference = single_process(images, batch, repeat, threads)
    rows = [{"workers": 0, "load": load, "seconds": alone}]
    for workers in worker_counts:
        figures = on_workers(images, batch, workers, repeat)
        np.testing.assert_allclose(figures.pop("out")["softmax"], reference["softmax"], rtol=1e-4, atol=1e-6)
        rows.append({"workers": workers, **figures, "seconds": figures["steady"]})
        # the one-process figure again after each cluster (the best is kept): load on the
        # machine that changed meanwhile then weighs less on the ratios
        rows[0]["seconds"] = min(rows[0]["seconds"], single_process(images, batch, repeat, threads)[1])
    return rows


def rows(threads: int, repeat: int, quick: bool = False) -> list[Row]:
    """For run_all: steady images/s on 2 workers against this process on `threads`."""
    figures = measure(16 if quick else 64, 8, [2], max(1, repeat // 3), threads)
    alone, dask_run = figures[0]["seconds"], figures[1]["seconds"]
    count = 16 if quick else 64
    return [Row("distributed", "ResNet-50 batch 8, 2 Dask workers", "one process", count / dask_run,
                count / alone, unit="images/s", threads=threads, lower_is_better=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="steady runs per case (the best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the single process "
                        "(the peer; each worker has one)")
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]
    print(f"{all_cores()} cores; ResNet-50, {args.images} images 224x224, batches of {args.batch}")
    figures = measure(args.images, args.batch, counts, args.repeat, args.threads)
    alone = figures[0]["seconds"]
    print(f"one process, {args.threads} thread(s): load {figures[0]['load']:.2f} s, {args.images / alone:.2f} images/s")
    table = []
    for case in figures[1:]:
        rate = args.images / case["seconds"]
        print(f"{case['workers']} worker(s): cluster start {case['cluster']:.2f} s, first call "
              f"(model load + scoring) {case['first']:.2f} s; steady {rate:.2f} images/s, "
              f"{rate / (args.images / alone):.2f}x one process")
        table.append(Row("distributed", f"ResNet-50 batch {args.batch}, {case['workers']} Dask worker(s)",
                         "one process", rate, args.images / alone, unit="images/s", threads=args.threads, lower_is_better=False))
    print(format_table(table))


if __name__ == "__main__":
    main()
