"""Past one process, on Dask (`pip install 'pycaffe2[distributed]'`).

- `cluster`: the workers: an embedded LocalCluster, a running cluster's
  scheduler, or the caller's Client; the install hint without Dask.
"""
from pycaffe2.distributed.cluster import require_dask, worker_addresses, workers_client

__all__ = ["require_dask", "worker_addresses", "workers_client"]
