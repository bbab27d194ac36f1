"""Bounded fuzzing of minidb reading (db info, Load, TensorProtosDBInput's
records): mutated Save files and data files end in values or a DBError (a
PyCaffe2Error), never another exception, a hang or an allocation the file
cannot back. scripts/fuzz_loaders.py runs the same for longer."""
import pytest

from tests.fuzz.harness import fuzz_with_hypothesis


def test_minidb_reading_ends_bad_input_in_project_errors(tmp_path):
    fuzz_with_hypothesis("minidb", tmp_path, 600)


def test_lmdb_reading_ends_bad_input_in_project_errors(tmp_path):
    """Records stored through lmdb, and a damaged data.mdb itself (a cut one was a SIGBUS)."""
    pytest.importorskip("lmdb")
    fuzz_with_hypothesis("lmdb", tmp_path, 200)
    fuzz_with_hypothesis("lmdbfile", tmp_path, 200)


def test_exported_predictor_dbs_end_bad_input_in_project_errors(tmp_path):
    fuzz_with_hypothesis("exported", tmp_path, 200)
