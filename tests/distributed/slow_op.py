"""A test-only slow op (SlowCopy), registered in every Dask worker by a worker plugin:
also in a worker the nanny restarts after a test killed it."""
import time
from pathlib import Path

import cloudpickle
from distributed.diagnostics.plugin import WorkerPlugin

SCHEMAS = Path(__file__).with_name("schemas")


def register_slow_copy() -> None:
    from pycaffe2 import custom_ops
    from pycaffe2.operators import load_kernels
    if "SlowCopy" in load_kernels():
        return
    custom_ops.load_schema_dir(SCHEMAS)

    @custom_ops.register_cpu("SlowCopy")
    def slow_copy(x, *, seconds):
        time.sleep(seconds)
        return x.copy()


class SlowOpPlugin(WorkerPlugin):
    name = "pycaffe2-test-slow-copy"

    def setup(self, worker) -> None:
        register_slow_copy()


# the workers need not import tests/: this module travels by value
cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
