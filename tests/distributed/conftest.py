"""Shared Dask fixtures: one small LocalCluster for the distributed tests that do not kill workers."""
import logging

import pytest


@pytest.fixture(scope="session")
def dask_client():
    """A Client on a LocalCluster of 2 worker processes, 1 thread each (tests that kill a worker
    start their own)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client
