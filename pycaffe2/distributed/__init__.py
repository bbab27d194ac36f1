"""Past one process, on Dask (`pip install 'pycaffe2[distributed]'`).

- `cluster`: the workers: an embedded LocalCluster, a running cluster's
  scheduler, or the caller's Client; the install hint without Dask.
- `inference`: `predict`, batch inference: feeds cut into batches of rows scored
  across the workers, the model loaded once per worker, results back in order;
  with `batches` (planning, slicing, joining), `scoring` (one batch; the same
  batches in this process, without Dask) and `worker` (what runs in the workers).
"""
from pycaffe2.distributed.cluster import require_dask, worker_addresses, workers_client
from pycaffe2.distributed.inference import predict

__all__ = ["predict", "require_dask", "worker_addresses", "workers_client"]
