"""Bounded fuzzing of --feed files (.npy and .npz, also read by `db write`):
mutated arrays and archives end in an array or a RunError/DBError, never
another exception, a hang or an allocation past the file or the feed cap.
scripts/fuzz_loaders.py runs the same for longer."""
import warnings

import pytest

from tests.fuzz.harness import fuzz_with_hypothesis


@pytest.mark.parametrize("family, examples", [("npy", 600), ("npz", 400)])
def test_feed_loaders_end_bad_input_in_project_errors(family, examples, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's note on .npy headers written by Python 2
        fuzz_with_hypothesis(family, tmp_path, examples)
