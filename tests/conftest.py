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
