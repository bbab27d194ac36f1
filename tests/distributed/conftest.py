"""Dask clusters for the distributed tests: one shared LocalCluster of 2 worker
processes (1 thread each) per test session; fault tests start their own."""
import logging

import pytest


@pytest.fixture(scope="session")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client
