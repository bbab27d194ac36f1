"""Dask clusters for the distributed tests: one shared LocalCluster of 2 worker
processes (1 thread each) for this folder (stopped after its last test, so its idle
workers do not outlive it); fault tests start their own."""
import pytest


@pytest.fixture(scope="package")
def dask_client():
    pytest.importorskip("distributed")
    from pycaffe2.distributed import workers_client
    with workers_client(2) as client:
        client.wait_for_workers(2, timeout=60)  # tests count on both
        yield client
