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


@pytest.mark.slow
def test_mnist_lenet_trains_and_tests_above_chance():
    """LeNet on the script's synthetic seven-segment digits (80 SGD steps of 64, lr 0.1,
    seeded init): the loss starts at about ln(10) = 2.30 (near-uniform softmax of Xavier
    weights) and falls to about 0.6; test accuracy on 640 unseen digits is about 0.83.
    The bound 0.6 is six times chance (0.1) and >10 binomial standard deviations (0.015 at
    640 images) below the reached value, so only a broken forward, gradient or update fails it."""
    run = runpy.run_path(str(TUTORIALS / "mnist_lenet.py"))
    losses, test_accuracy = run["LOSSES"], run["TEST_ACCURACY"]
    assert losses.shape == (run["TRAIN_ITERS"],) and np.all(np.isfinite(losses))
    assert abs(losses[0] - np.log(10)) < 0.3
    assert losses[-10:].mean() < 0.5 * losses[:10].mean()
    assert run["TRAIN_ACCURACY"][-10:].mean() > 0.6
    assert test_accuracy > 0.6

    # The test model made no parameters of its own: it ran on the trained ones.
    train_model, test_model = run["train_model"], run["test_model"]
    assert len(test_model.param_init_net.Proto().op) == 0
    assert [str(p) for p in test_model.params] == [str(p) for p in train_model.params]
    # The last test batch's accuracy blob agrees with NumPy on the softmax and labels.
    softmax, label = workspace.FetchBlob("softmax"), workspace.FetchBlob("label")
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("accuracy"), np.mean(softmax.argmax(axis=1) == label))
