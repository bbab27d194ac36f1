"""Caffe2's tutorial flows run on pycaffe2 with only their import lines changed."""
import difflib
import runpy
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import workspace

TUTORIALS = Path(__file__).resolve().parent.parent / "nets" / "tutorials"
SCRIPTS = sorted(p.name for p in TUTORIALS.glob("*.py"))


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


@pytest.mark.parametrize("name", SCRIPTS)
def test_only_import_lines_differ_from_the_caffe2_spelling(name):
    ours = (TUTORIALS / name).read_text().splitlines()
    theirs = (TUTORIALS / "caffe2_original" / name).read_text().splitlines()
    changed = [line for line in difflib.unified_diff(theirs, ours, lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed and all(line[1:].startswith(("from ", "import ")) for line in changed), changed
    assert all("caffe2.python" in line or "caffe2.proto" in line for line in changed if line[0] == "-")


def test_toy_regression_recovers_the_true_line():
    learned = runpy.run_path(str(TUTORIALS / "toy_regression.py"))["LEARNED"]
    np.testing.assert_allclose(learned, [2.0, 1.5, 0.5], atol=0.15)
