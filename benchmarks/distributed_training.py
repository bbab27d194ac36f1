"""LeNet digits data-parallel training on Dask workers beside the single process.

Ours: the example plan's training loop (nets/examples/lenet_digits/model.yaml, global batch 64)
split as `pycaffe2 run --workers N` splits it (distributed/plan_split.py) and run by a
DataParallelTrainer on 1 and 2 worker processes of a LocalCluster (1 thread each). The peer: the
same train net run by RunNet in this process (as PlanRun runs it). Rounds of --iterations
iterations alternate between the three (the driver held to 1 BLAS thread, as Dask holds each
worker; the single process on --threads, 1 by default); each figure is the median round, in ms per iteration
(the ratio is how many times slower than the single process; below 1.0 is a speed-up). The
communication share is the part of a distributed step not spent in the replicas' nets (moving
the gradients through Dask, averaging them on the driver, Dask's call overhead), from the
trainer's `timings` over the timed rounds.

    python benchmarks/distributed_training.py [--repeat 5] [--iterations 20] [--threads 1]
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import Row, format_table, interleaved, thread_limit
from lenet_training import _nets, ours

from pycaffe2.distributed import worker_addresses, workers_client
from pycaffe2.distributed.plan_split import split_loop
from pycaffe2.distributed.training import DataParallelTrainer
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2

CASE = "LeNet digits training iteration (global batch 64)"


def _trainer(client, workers: list[str]) -> DataParallelTrainer:
    init, train = _nets()
    step = caffe2_pb2.ExecutionStep(name="train", network=[train.name], num_iter=2)
    split = split_loop(step, {init.name: init, train.name: train}, len(workers))
    driver = Workspace("driver")
    driver.RunNetOnce(init)
    trainer = DataParallelTrainer(client, split.reader_init, split.input_net, split.step_net, split.update_net,
                                  shard=split.shard, sync=split.sync, workers=workers)
    trainer.run_init()
    trainer.load_state({k: v for k, v in driver.blobs.items() if isinstance(v, np.ndarray)})
    return trainer


def measure(repeat: int, iterations: int, threads: int = 1) -> dict:
    """ms per iteration of the single process on `threads` BLAS threads and of 1 and 2 workers
    (one thread each), and the workers' communication share."""
    with workers_client(2) as client:
        addresses = worker_addresses(client)
        workspace, name = ours()
        trainers = {n: _trainer(client, addresses[:n]) for n in (1, 2)}
        def single():
            with thread_limit(threads):
                workspace.RunNet(name, num_iter=iterations)

        functions = {"single": single}
        for n, trainer in trainers.items():
            functions[n] = lambda trainer=trainer: trainer.run(iterations)
        for trainer in trainers.values():  # warm-up, then count only the timed rounds
            trainer.run(3)
            trainer.timings.update(compute_s=0.0, communication_s=0.0, steps=0)
        with thread_limit(1):  # as Dask's nanny holds each worker's BLAS to one thread
            seconds = interleaved(functions, repeat, warmup=0)
        shares = {n: t.timings["communication_s"] / (t.timings["compute_s"] + t.timings["communication_s"])
                  for n, t in trainers.items()}
        for trainer in trainers.values():
            trainer.close()
    ms = {key: 1e3 * value / iterations for key, value in seconds.items()}
    return {"ms": ms, "communication_share": shares}


def rows(threads: int, repeat: int, iterations: int = 20) -> list[Row]:
    m = measure(repeat, iterations, threads)
    return [Row("scale-out", f"{CASE} on {n} Dask worker(s), {100 * m['communication_share'][n]:.0f}% "
                f"communication", "single process", m["ms"][n], m["ms"]["single"], threads=threads)
            for n in (1, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20, help="iterations per timed round")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the single process "
                        "(the peer; each worker has one)")
    args = parser.parse_args()
    table = rows(args.threads, args.repeat, args.iterations)
    print(format_table(table))
    single = table[0].theirs
    for row in table:
        print(f"{row.case}: {1e3 / row.ours:.1f} it/s against {1e3 / single:.1f} it/s in one process "
              f"(speed-up {single / row.ours:.2f}x)")


if __name__ == "__main__":
    main()
