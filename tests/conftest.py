"""Shared fixtures: where the real Caffe2 model files are, and the gpu-marked tests' backend.

The real model files live outside the repository, in the caffe2_models folder of
the shared data folder: ../shared beside the checkout, or the folder the
PYCAFFE2_SHARED environment variable names. Tests that need them skip, naming
the missing folder, when it is not there.
"""
import os
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_WHAT = "caffe2_models (real Caffe2 model files)"
if os.environ.get("PYCAFFE2_SHARED"):
    SHARED, _WHERE = Path(os.environ["PYCAFFE2_SHARED"]), f"$PYCAFFE2_SHARED/{_WHAT}"
else:
    SHARED, _WHERE = REPO.parent / "shared", f"../shared/{_WHAT} beside the checkout"
CAFFE2_MODELS = SHARED / "caffe2_models"
CAFFE2_MODELS_MISSING = f"needs {_WHERE}: {CAFFE2_MODELS.absolute()} is missing"


@pytest.fixture
def caffe2_models() -> Path:
    if not CAFFE2_MODELS.is_dir():
        pytest.skip(CAFFE2_MODELS_MISSING)
    return CAFFE2_MODELS


def real_pb_files():
    """The real .pb files to parametrize over; without their folder, one skipped case saying so."""
    if not CAFFE2_MODELS.is_dir():
        missing = pytest.mark.skip(reason=CAFFE2_MODELS_MISSING)
        return [pytest.param(None, id="caffe2_models-missing", marks=missing)]
    return sorted(CAFFE2_MODELS.glob("*/*.pb"))


@lru_cache(maxsize=1)
def _gpu_backend():
    """'cuda', 'emulated' (tests/cuda/emulator) or why neither works here."""
    from pycaffe2.devices import cuda
    reason = cuda.unavailable_reason()
    if reason is None:
        return "cuda"
    if os.environ.get("PYCAFFE2_CUDA_EMULATOR") == "0":
        return f"no CUDA ({reason}) and the emulation is off (PYCAFFE2_CUDA_EMULATOR=0)"
    from tests.cuda import emulator
    why = emulator.unavailable_reason()
    return "emulated" if why is None else f"no CUDA ({reason}) and no emulation ({why})"


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu run on CUDA where it works, else on the CPU emulation of the
    kernels where g++ is, else they skip, saying why."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    backend = _gpu_backend() if gpu_items else "cuda"
    for item in gpu_items:
        if backend not in ("cuda", "emulated"):
            item.add_marker(pytest.mark.skip(reason=backend))
        elif backend == "emulated" and "real_gpu_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="too slow for the CPU emulation; runs on a real GPU"))


@pytest.fixture(autouse=True)
def _emulated_cuda(request):
    """A gpu-marked test runs on the emulator when there is no CUDA; others never do."""
    if "gpu" in request.keywords and _gpu_backend() == "emulated":
        from tests.cuda import emulator
        with emulator.emulated():
            yield
    else:
        yield


@pytest.fixture(autouse=True)
def _order_independent_draws(request):
    """Reseed, in place, every generator a test module holds (its `rng`, one it imported),
    from the test's own id: its data are the same whichever tests ran before it."""
    import zlib

    import numpy as np
    seed = zlib.crc32(request.node.nodeid.encode())
    for value in vars(request.module).values():
        if isinstance(value, np.random.Generator):
            value.bit_generator.state = type(value.bit_generator)(seed).state
    yield


def pytest_report_header(config):
    backend = _gpu_backend()
    return f"gpu-marked tests: {backend if backend in ('cuda', 'emulated') else 'skipped: ' + backend}"


@pytest.fixture(autouse=True)
def _fresh_net_names():
    """core.Net names are unique per process, as in Caffe2; each test starts afresh, so
    a test's Net("train") is named "train" whatever ran before it."""
    from pycaffe2 import core
    core.Net._reset_used_names()
    yield


def pytest_terminal_summary(terminalreporter):
    """How many of ONNX's in-scope node cases pass (tests/test_onnx_backend.py)."""
    import sys
    module = sys.modules.get("tests.test_onnx_backend")
    if module is None or not getattr(module, "IN_SCOPE", None):
        return
    passed = sum(1 for report in terminalreporter.stats.get("passed", [])
                 if "OnnxBackendNodeModelTest" in report.nodeid)
    ran = sum(1 for kind in ("passed", "failed", "xfailed", "xpassed")
              for report in terminalreporter.stats.get(kind, []) if "OnnxBackendNodeModelTest" in report.nodeid)
    if ran:
        terminalreporter.write_line(
            f"ONNX node cases: {passed} of {len(module.IN_SCOPE)} in scope pass "
            f"({len(module.OUT_OF_SCOPE)} out of scope; {len(module.EXPECTED)} listed as expected failures)")
