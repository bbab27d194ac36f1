"""Caffe2's Toy_Regression tutorial: a quadratic and then a line fitted by brew.fc
with SGD. The learned coefficients must equal plain NumPy gradient descent on the
same data (and, for the line, come near the least-squares fit).

It imports sklearn.datasets.make_regression and sklearn.preprocessing's
PolynomialFeatures: the real ones when sklearn is installed, else the small NumPy
stand-ins below.
"""
import importlib.util
import itertools
import re
import types

import numpy as np

from tests.tutorials.harness import run_tutorial


def make_regression(n_samples=100, n_features=1, n_informative=10, noise=0.0, bias=0.0, coef=False,
                    random_state=None):
    """Normal features, a target linear in the informative ones (weights 100 * U(0, 1)) plus noise."""
    rng = np.random.RandomState(random_state) if not isinstance(random_state, np.random.RandomState) \
        else random_state
    x = rng.randn(n_samples, n_features)
    weights = np.zeros(n_features)
    informative = min(n_features, n_informative)
    weights[:informative] = 100 * rng.rand(informative)
    y = x @ weights + bias + (noise * rng.randn(n_samples) if noise else 0.0)
    return (x, y, weights) if coef else (x, y)


class PolynomialFeatures:
    """Products of the features of degree 1..degree (and 1 with include_bias), in sklearn's order."""

    def __init__(self, degree=2, include_bias=True):
        self.degree, self.include_bias = degree, include_bias

    def fit_transform(self, x):
        x = np.asarray(x, dtype=float)
        columns = [np.ones(len(x))] if self.include_bias else []
        for d in range(1, self.degree + 1):
            for combo in itertools.combinations_with_replacement(range(x.shape[1]), d):
                columns.append(np.prod(x[:, list(combo)], axis=1))
        return np.stack(columns, axis=1)


def sklearn_standins() -> dict:
    if importlib.util.find_spec("sklearn") is not None:
        return {}
    datasets = types.ModuleType("sklearn.datasets")
    datasets.make_regression = make_regression
    preprocessing = types.ModuleType("sklearn.preprocessing")
    preprocessing.PolynomialFeatures = PolynomialFeatures
    sklearn = types.ModuleType("sklearn")
    sklearn.datasets, sklearn.preprocessing, sklearn.__path__ = datasets, preprocessing, []
    return {"sklearn": sklearn, "sklearn.datasets": datasets, "sklearn.preprocessing": preprocessing}


def gradient_descent(x, y, steps, lr):
    """What the tutorial's net does: loss = mean(0.5 * (x w + b - y)^2), w -= lr * dloss/dw."""
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        residual = x @ w + b - y
        w, b = w - lr * x.T @ residual / len(y), b - lr * residual.mean()
    return w, b


def test_polynomial_standin_matches_sklearns_order():
    x = np.array([[2.0, 3.0]])
    assert PolynomialFeatures(2, include_bias=False).fit_transform(x).tolist() == [[2, 3, 4, 6, 9]]
    x, y, w = make_regression(50, 1, noise=0.0, coef=True, random_state=0)
    np.testing.assert_allclose(y, x[:, 0] * w[0])


def round_size_one_array(source: str) -> str:
    """The last cell's plot title calls round() on a one-element array, which older NumPy
    allowed and today's NumPy refuses (TypeError: ndarray doesn't define
    __round__): not pycaffe2's concern, so that one call takes the element instead."""
    old = "round(coe,5)"
    assert source.count(old) == 1, "the tutorial's title line changed"
    return source.replace(old, "round(coe.item(),5)")


def test_toy_regression_learns_the_coefficients(tmp_path, capsys):
    ns = run_tutorial("Toy_Regression", tmp_path, modules=sklearn_standins(), before=round_size_one_array)

    # Part 1: y = x^2 + U(0, 1) fitted by w0 x + w1 x^2 + b from zero, 100 steps of 0.05.
    x = ns["xx_"][:, 0]
    features = np.stack([x, x ** 2], axis=1)
    target = ns["xx_"][:, 1] + ns["noise"]
    w, b = gradient_descent(features, target, ns["training_iters"], ns["learning_rate"])
    np.testing.assert_allclose(ns["coes"], w, rtol=1e-3, atol=1e-4)
    assert abs(ns["coes"][1] - 1.0) < 0.2  # the square term is found
    printed = re.search(r"Best Fit Line: (\S+)\*x\^2 \+ (\S+)\*x \+ (\S+)", capsys.readouterr().out)
    assert printed and abs(float(printed.group(3)) - b) < 1e-3  # its intercept, rounded to 5 places

    # Part 2: a line with slope coef / 100; 100 steps of 0.05.
    x2, y2 = ns["X"].astype(np.float64), ns["Y_gt"][:, 0].astype(np.float64)
    w2, b2 = gradient_descent(x2, y2, 100, 0.05)
    np.testing.assert_allclose(ns["coe"], w2, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ns["intercept"], [b2], rtol=1e-3, atol=1e-4)
    slope, intercept = np.polyfit(x2[:, 0], y2, 1)
    assert abs(ns["coe"][0] - slope) < 0.05 * abs(slope) + 0.02 and abs(ns["intercept"][0] - intercept) < 0.05
