"""Caffe2's Basics tutorial: workspaces, blobs, a Relu op, a GaussianFill op, a
small FC net drawn with net_drawer and run with RunNetOnce and RunNet."""
import re

import numpy as np

from pycaffe2 import net_drawer
from tests.tutorials.harness import run_tutorial

_ARRAY = re.compile(r"^(\w+):\n(\[\[.*?\]\]|\[[^\[\]]*\])\n", re.DOTALL | re.MULTILINE)


def printed_blobs(text: str) -> list[dict]:
    """The "name:\\n[[...]]" blocks the tutorial prints, in runs split at 'after execution'."""
    runs = []
    for part in text.split("Blobs in the workspace after execution")[1:]:
        runs.append({name: np.array(eval_array(body)) for name, body in _ARRAY.findall(part)})
    return runs


def eval_array(body: str) -> list:
    rows = re.findall(r"\[([^\[\]]*)\]", body)
    values = [[float(v) for v in row.split()] for row in rows]
    return values if body.startswith("[[") else values[0]


def test_basics_runs_and_its_blobs_match_numpy(tmp_path, capsys):
    ns = run_tutorial("Basics", tmp_path)
    out = capsys.readouterr().out

    # The Relu op: Y printed equals the "Expected" NumPy line.
    relu = re.search(r"^Y:\n(.*?)\n\nExpected:\n(.*?)\n\n", out, re.DOTALL | re.MULTILINE)
    assert relu and np.array_equal(eval_array(relu.group(1)), eval_array(relu.group(2)))
    assert "Can't find blob: invincible_pink_unicorn" in out
    assert "Current workspace: gutentag" in out

    # GaussianFill(mean=1, std=1) of 100 x 100.
    z = ns["temp"]
    assert z.shape == (100, 100) and abs(z.mean() - 1.0) < 0.05 and abs(z.std() - 1.0) < 0.05

    # Both runs of the FC net: Y = X W^T + b, with b all ones and fresh random X, W.
    runs = printed_blobs(out)
    assert len(runs) == 2
    for blobs in runs:
        assert set(blobs) == {"W", "X", "Y", "b"} and blobs["W"].shape == (5, 3)
        np.testing.assert_allclose(blobs["Y"], blobs["X"] @ blobs["W"].T + blobs["b"], rtol=1e-5, atol=1e-5)
        assert np.all(blobs["b"] == 1.0)
    assert not np.array_equal(runs[0]["X"], runs[1]["X"])

    # The drawing: ops and blobs of the net, left to right.
    graph = ns["graph"]
    text = graph.to_string()
    assert "rankdir=LR;" in text and "FC #3" in text and "GaussianFill #0" in text
    if isinstance(graph, net_drawer.DotGraph):
        assert isinstance(graph.create_png(), bytes)
    assert re.search(r"Run time per RunNet: [0-9.e-]+", out)
