"""Bounded fuzzing of the net and model file loaders (.pb .pbtxt .json .yaml,
model files with plans, model folders): mutated seeds end in a loaded model
or a PyCaffe2Error, never another exception or a hang, and whatever loads
converts to every format and reads back. scripts/fuzz_loaders.py runs the same
for longer."""
import warnings

import pytest

from tests.fuzz.harness import fuzz_with_hypothesis

EXAMPLES = {"pb": 250, "pbtxt": 150, "json": 300, "yaml": 250, "model": 200, "folder": 250}


@pytest.mark.parametrize("family", list(EXAMPLES))
def test_net_file_loaders_end_bad_input_in_project_errors(family, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fuzz_with_hypothesis(family, tmp_path, EXAMPLES[family])
