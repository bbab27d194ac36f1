"""The `dag` runner: each step runs on a thread pool as soon as the steps it has
read/write conflicts with are done; the first failure stops the rest.

Completions are handled on the calling thread alone, so the blobs a net frees
(`free_blobs`) are dropped there, once every step that touches one is done: no
worker can still be reading it, and no later step will.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait


def dependencies(steps) -> list[set[int]]:
    """For each step, the earlier steps it must wait for (read/write conflicts). A step
    without outputs may write blobs named only when it runs (Load's load_all), so it
    is a barrier: it waits for every earlier step, and every later one waits for it."""
    last_writer: dict[str, int] = {}
    readers: dict[str, list[int]] = {}
    waits, barrier = [], None
    for index, step in enumerate(steps):
        needs = {last_writer[name] for name in step.inputs if name in last_writer}
        if not step.outputs:
            needs.update(range(index))
        elif barrier is not None:
            needs.add(barrier)
        for name in step.outputs:
            needs.update(readers.get(name, ()))
            if name in last_writer:
                needs.add(last_writer[name])
        needs.discard(index)
        waits.append(needs)
        for name in step.inputs:
            readers.setdefault(name, []).append(index)
        for name in step.outputs:
            last_writer[name] = index
            readers[name] = []
        if not step.outputs:
            barrier = index
    return waits


def holders(net, free) -> list[list[str]]:
    """For each step, the blobs of `free` it touches (an opaque step: all those made
    before it, since it may read any): a blob goes once all its holders are done."""
    held, made = [], set()
    opaque = set(net.opaque)
    for index, (reads, writes) in enumerate(net.uses):
        touched = set(reads) | set(writes)
        if index in opaque:
            touched |= made
        made.update(writes)
        held.append(sorted(touched & free))
    return held


class _Release:
    """Counts down each freeable blob's holders in one run; drops it at zero."""

    def __init__(self, net, blobs):
        kept = net.kept(blobs)
        if kept not in net.dag_plans:  # who holds what, once per set of kept blobs
            free = net.freeable - kept
            held = holders(net, free) if free else [() for _ in net.steps]
            net.dag_plans[kept] = held, Counter(name for names in held for name in names)
        self.held, counts = net.dag_plans[kept]
        self.left = dict(counts)
        self.blobs = blobs

    def drop_all(self) -> None:
        for name in self.left:
            self.blobs.pop(name, None)

    def done(self, index: int) -> None:
        for name in self.held[index]:
            self.left[name] -= 1
            if not self.left[name]:
                self.blobs.pop(name, None)


def run_dag(net, blobs, workers: int) -> None:
    """Run `net`'s steps on `workers` threads, each once its dependencies are done."""
    pending = {i: set(deps) for i, deps in enumerate(net.dependencies)}
    dependents: dict[int, list[int]] = {i: [] for i in pending}
    for index, deps in pending.items():
        for dep in deps:
            dependents[dep].append(index)
    release = _Release(net, blobs)

    def run_step(index):
        if net.stream is None:
            return net.steps[index].run(blobs, net.name)
        from pycaffe2.devices import cuda
        with cuda.on_stream(net.stream):  # the workers are threads of their own
            return net.steps[index].run(blobs, net.name)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        running = {pool.submit(run_step, i): i for i, d in pending.items() if not d}
        for index in running.values():
            del pending[index]
        while running:
            done, _ = wait(running, return_when=FIRST_EXCEPTION)
            for future in done:
                index = running.pop(future)
                if future.exception() is not None:
                    wait(running)
                    release.drop_all()  # a failed run leaves none of the blobs it frees
                    raise future.exception()
                release.done(index)
                for child in dependents[index]:
                    pending[child].discard(index)
                    if not pending[child]:
                        del pending[child]
                        running[pool.submit(run_step, child)] = child
