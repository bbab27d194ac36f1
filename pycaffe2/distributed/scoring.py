"""Scoring one batch of rows with a model loaded once per process.

A `ModelSpec` is the model (its nets) and the options it runs with, small enough to
ship to every worker once; its `digest` (of the nets' bytes and the options) keys a
cache in each process, so the init net runs once per worker process however many
batches land there (`loads` counts those runs). `score_batch` feeds one batch, runs
the predict net and fetches, naming the batch and its rows when the net fails.
`predict_in_process` scores the batches one after another in this process, with no
Dask: `pycaffe2 run --batch-size B` without --workers.

seed=None: every process must make the same weights when an init net has random fill
ops (XavierFill...), so the seed is then derived from the model's bytes: the same on
every worker, and from one call to the next.
"""
from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from pycaffe2.distributed.batches import (
    BatchPlan,
    batch_slice,
    batchable_feeds,
    check_rows,
    join_batches,
    plan_batches,
)
from pycaffe2.errors import RunFailure
from pycaffe2.netfile import Model
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.model import ModelRunner, _as_model

CACHED_MODELS = 2  # models kept loaded per process (the latest used)


@dataclass(frozen=True)
class ModelSpec:
    """A model's nets (serialized: NetDefs do not pickle), the files they came from
    (for messages), and the ModelRunner options it is scored with."""

    predict_net: bytes
    init_net: bytes | None
    files: dict
    fetch: tuple | None
    options: dict = field(default_factory=dict)
    digest: str = ""

    def model(self) -> Model:
        predict = caffe2_pb2.NetDef.FromString(self.predict_net)
        init = None if self.init_net is None else caffe2_pb2.NetDef.FromString(self.init_net)
        return Model(predict, init, files=dict(self.files))

    def runner(self, feeds: dict) -> ModelRunner:
        return ModelRunner(self.model(), feeds=feeds, free_blobs=True, keep=self.fetch or (), **self.options)


def model_spec(model, fetch=None, init=None, *, random_init: bool = False, out_channels=None,
               seed: int | None = None, device: str | None = None, optimize: bool = False,
               dag_workers: int | None = None, data_roots=None,
               allow_outside_paths: bool = False) -> ModelSpec:
    """The spec of `model` (anything ModelRunner takes), read here once."""
    loaded = _as_model(model, init, allow_outside_paths)
    nets = [None if net is None else net.SerializeToString(deterministic=True)
            for net in (loaded.predict_net, loaded.init_net)]
    options = {"random_init": random_init, "out_channels": dict(out_channels or {}), "device": device,
               "optimize": optimize, "workers": dag_workers,
               "data_roots": None if data_roots is None else [str(root) for root in data_roots]}
    digest = hashlib.sha256()
    for net in nets:
        digest.update(b"-" if net is None else hashlib.sha256(net).digest())
    digest.update(repr(sorted(options.items())).encode() + repr(fetch).encode())
    if seed is None:  # the same made weights on every worker: a seed from the model's bytes
        seed = int(digest.copy().hexdigest()[:8], 16)
    digest.update(repr(seed).encode())
    return ModelSpec(nets[0], nets[1], dict(loaded.files), None if fetch is None else tuple(fetch),
                     {**options, "seed": seed}, digest.hexdigest())


# ---------------------------------------------------------------- this process's models

loads: Counter = Counter()  # model digest -> init net runs in this process (checked by the tests)
_loaded: OrderedDict = OrderedDict()  # digest -> (ModelRunner, lock)
_loading = threading.Lock()


def _runner_for(spec: ModelSpec, feeds: dict):
    """(runner, lock, fresh): the spec's model loaded in this process, once; `fresh`
    when it was loaded now, with `feeds` already stored."""
    with _loading:
        if spec.digest in _loaded:
            _loaded.move_to_end(spec.digest)
            return (*_loaded[spec.digest], False)
        runner = spec.runner(feeds)
        loads[spec.digest] += 1
        _loaded[spec.digest] = (runner, threading.Lock())
        while len(_loaded) > CACHED_MODELS:
            _loaded.popitem(last=False)
        return (*_loaded[spec.digest], True)


def score_batch(spec: ModelSpec, feeds: dict, plan: BatchPlan, index: int) -> dict:
    """The fetched blobs for batch `index`, whose rows are `feeds`."""
    runner, lock, fresh = _runner_for(spec, feeds)
    with lock:  # one batch at a time per loaded model (a worker may have several threads)
        if not fresh:
            runner.feed(feeds)
        try:
            runner.run()
        except RunFailure as exc:
            raise RunFailure(f"{plan.describe(index)}: {exc}") from None
        results = runner.fetch(spec.fetch)
    check_rows(results, plan, index)
    return results


def predict_in_process(model, feeds, fetch=None, batch_size: int | None = None, init=None,
                       on_batch=None, **options) -> dict:
    """Score `feeds` in batches of `batch_size` rows (default: all at once) in this
    process, one after another; the results joined along axis 0. `options`: those of
    `model_spec`; `on_batch(index, start, stop, where)` after each batch."""
    arrays, rows = batchable_feeds(feeds)
    plan = plan_batches(rows, batch_size, 1)
    spec = model_spec(model, fetch, init, **options)
    per_batch = []
    for index in range(plan.batches):
        start, stop = plan.bounds(index)
        batch = {name: _materialized(batch_slice(array, start, stop)) for name, array in arrays.items()}
        per_batch.append(score_batch(spec, batch, plan, index))
        if on_batch is not None:
            on_batch(index, start, stop, "this process")
    return join_batches(per_batch)


def _materialized(value):
    return value.compute() if hasattr(value, "compute") else value
