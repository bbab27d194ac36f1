"""Bounded fuzzing of the ONNX backend (tests/fuzz/onnx_fuzz.py): mutated models
end in outputs or a PyCaffe2Error, never another exception or a hang, and no
mutation makes a folded constant or a run allocate past the blob cap."""
import pytest

pytest.importorskip("onnx")

from tests.fuzz.onnx_fuzz import fuzz_with_hypothesis


def test_mutated_onnx_models_end_in_project_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCAFFE2_MAX_BLOB_BYTES", str(64 << 20))
    monkeypatch.chdir(tmp_path)  # a relative path a model names stays in the scratch folder
    fuzz_with_hypothesis(tmp_path, examples=50)
