"""Caffe2's Training_a_Model tutorial: a notebook stub of markdown only (data orderings
and db formats, descriptions left blank), so the script holds no code; running it must
define nothing and leave the workspace empty."""
from pycaffe2 import workspace
from tests.tutorials.harness import run_tutorial, tutorial_path


def test_training_a_model_is_text_only(tmp_path):
    code = [line for line in tutorial_path("Training_a_Model").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert code == []
    namespace = run_tutorial("Training_a_Model", tmp_path)
    assert {name for name in namespace if not name.startswith("__")} == set()
    assert workspace.Blobs() == []
