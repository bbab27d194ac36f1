"""Caffe2's Python_Op tutorial, with only its imports changed: a Python op doubling x
by feed, by reshape and through the workspace, then the gradient through grad_f."""
import re

import numpy as np

from pycaffe2 import workspace
from tests.tutorials.harness import changed_lines, run_tutorial


def printed_arrays(text: str) -> list[np.ndarray]:
    return [np.array([float(v) for v in row.split()]) for row in re.findall(r"^\[([^\]]*)\]$", text, re.MULTILINE)]


def test_python_op_tutorial(tmp_path, capsys):
    assert [new for _, new in changed_lines("Python_Op")] == ["from pycaffe2 import core, workspace"]
    namespace = run_tutorial("Python_Op", tmp_path)
    x = np.array([3.0])
    # f (feed), f_reshape, f_workspace print 2 * x; the gradient cell prints dy/dx = 2
    assert [a.tolist() for a in printed_arrays(capsys.readouterr().out)] == [
        (2 * x).tolist(), (2 * x).tolist(), (2 * x).tolist(), [2.0]]

    # the last cell's net, run again: its ops and the blobs it leaves
    net = namespace["net"].Proto()
    assert [op.type for op in net.op] == ["Python", "ConstantFill", "PythonGradient"]  # y_grad seeded with ones
    assert list(net.op[2].input) == ["x", "y", "y_autogen_grad"] and list(net.op[2].output) == ["x_grad"]
    workspace.ResetWorkspace()
    try:
        workspace.FeedBlob("x", np.array([3.0, -1.5]))
        workspace.RunNetOnce(net)
        np.testing.assert_allclose(workspace.FetchBlob("y"), [6.0, -3.0])
        np.testing.assert_allclose(workspace.FetchBlob("x_grad"), [2.0, 2.0])
    finally:
        workspace.ResetWorkspace()
