"""Past one process, on Dask (`pip install 'pycaffe2[distributed]'`).

- `cluster`: the workers: an embedded LocalCluster, a running cluster's
  scheduler, or the caller's Client; the install hint without Dask.
- `inference`: `predict`, batch inference: feeds cut into batches of rows scored
  across the workers, the model loaded once per worker, results back in order;
  with `batches` (planning, slicing, joining), `scoring` (one batch; the same
  batches in this process, without Dask) and `worker` (what runs in the workers).
- `training`: `DataParallelTrainer`, data-parallel training: one replica per worker
  (a Dask actor holding a Workspace), gradients averaged by shard rows every step;
  with `plan_split` (a plan's loop cut into input, step and update nets) and `plan_run`
  (`DistributedPlanRun`: `pycaffe2 run model.yaml --workers N`).
"""
from pycaffe2.distributed.cluster import require_dask, worker_addresses, workers_client
from pycaffe2.distributed.inference import predict
from pycaffe2.distributed.training import DataParallelTrainer

__all__ = ["DataParallelTrainer", "predict", "require_dask", "worker_addresses", "workers_client"]
