"""ONNX's own backend test suite on pycaffe2.onnx.backend: every in-scope node case.

onnx 1.23 ships no node data on disk; its BackendTest runner builds the node cases
in memory. tests/onnx_node_cases.py draws the line of scope; the out-of-scope cases
are excluded here. Cases that are in scope and still fail are listed with
their reasons in tests/data/onnx_expected_failures.txt; they run as expected
failures, so one that starts passing fails the run until it leaves the list.
The summary line counts the passing cases (tests/conftest.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")

import os
import re
import tempfile

import onnx.backend.test

from pycaffe2.onnx import backend
from tests.onnx_node_cases import collect, out_of_scope

EXPECTED_FAILURES = Path(__file__).parent / "data" / "onnx_expected_failures.txt"


def expected_failures() -> dict:
    """case name -> reason, from the list's '# reason' headings and names under them."""
    failures, reason = {}, ""
    for line in EXPECTED_FAILURES.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            reason = line.lstrip("# ")
        elif line:
            failures[line] = reason
    return failures


def _any_of(names) -> str:
    return "^(" + "|".join(re.escape(name) for name in sorted(names)) + ")_cpu$"


OUT_OF_SCOPE = {case.name: out_of_scope(case) for case in collect() if out_of_scope(case)}
IN_SCOPE = [case.name for case in collect() if case.name not in OUT_OF_SCOPE]
EXPECTED = expected_failures()


class _EveryModelRuns:
    """The backend module, except that a model it cannot translate fails its test
    rather than being skipped as "not compatible" by the runner."""
    prepare, run_model, run_node = staticmethod(backend.prepare), staticmethod(backend.run_model), \
        staticmethod(backend.run_node)
    supports_device = staticmethod(backend.supports_device)

    @staticmethod
    def is_compatible(model, device="CPU", **kwargs):
        return True


backend_test = onnx.backend.test.BackendTest(_EveryModelRuns, __name__)
backend_test.include(r"^test_.*_cpu$")
backend_test.exclude(_any_of(OUT_OF_SCOPE))
if EXPECTED:
    backend_test.xfail(_any_of(EXPECTED))
# The node cases, and the "light" real models: the Caffe2 model zoo's nets (AlexNet,
# ResNet-50, SqueezeNet, ...) converted to ONNX, their weights made by ConstantOfShape,
# run on ONNX's dummy input against stored outputs. The runner writes those inputs under
# $ONNX_HOME: a folder of this run's, not the user's home.
os.environ.setdefault("ONNX_HOME", tempfile.mkdtemp(prefix="pycaffe2-onnx-home-"))
globals()["OnnxBackendNodeModelTest"] = backend_test.test_cases["OnnxBackendNodeModelTest"]
globals()["OnnxBackendRealModelTest"] = backend_test.test_cases["OnnxBackendRealModelTest"]


def test_expected_failures_are_in_scope_cases():
    unknown = sorted(set(EXPECTED) - set(IN_SCOPE))
    assert not unknown, f"{EXPECTED_FAILURES.name} names cases that are not in scope: {unknown[:10]}"
