"""Caffe2's `test_util` names over pycaffe2: TestCase, rand_array and kin.

    from pycaffe2.test_util import TestCase, rand_array

    class MyTest(TestCase):
        def test_relu(self):
            self.ws.create_blob("X").feed(rand_array(2, 3))
            self.ws.run(core.CreateOperator("Relu", ["X"], ["Y"]))
            y = self.ws.blobs["Y"].fetch()

Each test starts with an empty current workspace and a fresh `self.ws`, a
private Workspace spelled like Caffe2's C++ binding (`workspace.C.Workspace`:
create_blob(...).feed, blobs[...].fetch, run, create_net). Part of the harness that runs Caffe2's own
operator tests (tests/caffe2_conformance).
"""
from __future__ import annotations

import unittest

import numpy as np

from pycaffe2 import workspace
from pycaffe2.workspace import BoundWorkspace


def rand_array(*dims) -> np.ndarray:
    """Uniform in [-0.5, 0.5), float32, as Caffe2's rand_array."""
    return (np.random.rand(*dims) - 0.5).astype(np.float32)


def randBlobFloat32(name, *dims, **kwargs) -> str:
    offset = kwargs.get("offset", 0.0)
    workspace.FeedBlob(name, (np.random.rand(*dims) + offset).astype(np.float32))
    return name


def randBlobsFloat32(names, *dims, **kwargs) -> list:
    return [randBlobFloat32(name, *dims, **kwargs) for name in names]


def numOps(net) -> int:
    proto = net.Proto() if hasattr(net, "Proto") else net
    return len(proto.op)


def str_compare(a, b, encoding: str = "utf8") -> bool:
    """a == b whether either is bytes or str."""
    as_text = [x.decode(encoding) if isinstance(x, bytes) else x for x in (a, b)]
    return as_text[0] == as_text[1]


def get_default_test_flags() -> list:
    return ["caffe2"]  # Caffe2 passed C++ flags to GlobalInit; pycaffe2 has none


class TestCase(unittest.TestCase):
    """unittest.TestCase with an empty current workspace around each test and `self.ws`."""

    @classmethod
    def setUpClass(cls) -> None:
        workspace.GlobalInit(get_default_test_flags())

    def setUp(self) -> None:
        self.ws = BoundWorkspace()
        workspace.ResetWorkspace()

    def tearDown(self) -> None:
        workspace.ResetWorkspace()

    def assertApproximatelyEqual(self, x, y, precision: float = 1e-5) -> None:
        np.testing.assert_allclose(x, y, atol=precision, rtol=precision)


def caffe2_flaky(test_method):
    """Caffe2 ran these only in its flaky-test mode; so does pycaffe2 (CAFFE2_RUN_FLAKY_TESTS=1)."""
    return unittest.skipUnless(is_flaky_test_mode(), "a flaky test: set CAFFE2_RUN_FLAKY_TESTS=1")(test_method)


def is_flaky_test_mode() -> bool:
    import os
    return os.environ.get("CAFFE2_RUN_FLAKY_TESTS") == "1"
