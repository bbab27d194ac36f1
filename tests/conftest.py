"""Shared fixtures: where the real Caffe2 model files are."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CAFFE2_MODELS = REPO.parent / "shared" / "caffe2_models"


@pytest.fixture
def caffe2_models() -> Path:
    if not CAFFE2_MODELS.is_dir():
        pytest.skip("../shared/caffe2_models is not beside this checkout")
    return CAFFE2_MODELS


def real_pb_files():
    return sorted(CAFFE2_MODELS.glob("*/*.pb")) if CAFFE2_MODELS.is_dir() else []


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu run only where CUDA works; elsewhere they skip, saying why."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    from pycaffe2.executor.devices.cuda import unavailable_reason
    reason = unavailable_reason()
    if reason is not None:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=f"no CUDA: {reason}"))
