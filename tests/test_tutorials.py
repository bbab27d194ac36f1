"""pycaffe2's own tutorial flows in nets/tutorials/ reach their results.

(Caffe2's published tutorials run from ../shared in tests/tutorials/.)"""
import runpy
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import workspace

TUTORIALS = Path(__file__).resolve().parent.parent / "nets" / "tutorials"


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def test_every_flow_has_an_outcome_test():
    assert sorted(p.name for p in TUTORIALS.glob("*.py")) == ["mnist_lenet.py", "toy_regression.py"]
    assert not (TUTORIALS / "caffe2_original").exists()


def test_toy_regression_recovers_the_true_line():
    run = runpy.run_path(str(TUTORIALS / "toy_regression.py"))
    np.testing.assert_allclose(run["LEARNED"], [2.0, 1.5, 0.5], atol=0.15)
    # SquaredL2Distance halves the squared error, so unit noise alone leaves a loss of
    # about 0.5 (0.09 standard deviation over 64 points): the fit explains the rest.
    assert 0.15 < float(workspace.FetchBlob("loss")) < 1.0


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
