"""Dask clusters for the distributed tests: one shared LocalCluster of 2 worker
processes (1 thread each) per test session; fault tests start their own."""
import pytest


@pytest.fixture(scope="session")
def dask_client():
    pytest.importorskip("distributed")
    from pycaffe2.distributed import workers_client
    with workers_client(2) as client:
        yield client
