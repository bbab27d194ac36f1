"""What runs inside the Dask workers for batch inference (imports distributed).

The model reaches every worker once, as a worker plugin holding its `ModelSpec`:
the scheduler hands the plugin to each worker, also to one that joins or is
restarted later, so a re-run batch finds the model wherever it lands. Each batch
task then names only the plugin; the model is loaded on a worker's first batch and
kept (scoring's per-process cache).
"""
from __future__ import annotations

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from pycaffe2.distributed import scoring
from pycaffe2.errors import RunFailure


class ModelPlugin(WorkerPlugin):
    """Carries a ModelSpec to every worker of the cluster."""

    def __init__(self, spec: scoring.ModelSpec):
        self.spec = spec
        self.name = f"pycaffe2-model-{spec.digest[:16]}"

    def setup(self, worker) -> None:  # loading waits for the first batch: it needs the rows
        pass


def score_on_worker(plugin_name: str, plan, index: int, names: tuple, *arrays):
    """(results, worker address) for one batch, scored with the plugin's model."""
    worker = distributed.get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None:
        raise RunFailure(f"{plan.describe(index)}: worker {worker.address} has no model "
                         f"(plugin {plugin_name} is not registered there)")
    feeds = dict(zip(names, arrays))
    return scoring.score_batch(plugin.spec, feeds, plan, index), worker.address


def loads_here() -> dict:
    """{model digest: init net runs} in this worker process (for tests and benchmarks)."""
    return dict(scoring.loads)


def scheduler_view(dask_scheduler, keys) -> tuple[dict, list]:
    """Run on the scheduler: ({key: times a worker died running it}, worker addresses)."""
    suspicious = {key: dask_scheduler.tasks[key].suspicious for key in keys if key in dask_scheduler.tasks}
    return suspicious, sorted(dask_scheduler.workers)
