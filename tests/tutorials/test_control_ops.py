"""Caffe2's Control_Ops tutorial: If and While built with NetBuilder (ops.IfNet,
ops.Else, ops.WhileNet, ops.Condition) and run as plans, the same with brew.cond
and brew.loop, and gradients through If and through a While holding an If."""
import re

from tests.tutorials.harness import run_tutorial


def printed(out: str) -> list[tuple[str, float]]:
    """The 'name =  value' lines, in order (values as printed: 1.5, [8], 28, ...)."""
    return [(name, float(value)) for name, value in re.findall(r"^(\w+) =\s+\[?([-0-9.e]+)\]?$", 
                                                    out, re.MULTILINE)]


def test_control_ops_tutorial(tmp_path, capsys):
    ns = run_tutorial("Control_Ops", tmp_path)
    values = printed(capsys.readouterr().out)
    expected = [
        ("x", 0.5), ("y", 1.0),                      # if (x > 0) y = 1 else y = 0; x = 0.5
        ("x", 1.5), ("y", 2.0),                      # nested If: x > 0 and not x <= 1
        ("x", 0.5), ("y", 1.0),                      # brew.cond
        ("i", 8.0), ("y", float(sum(range(1, 8)))),  # WhileNet: i = 1..7 summed into y
        ("i", 8.0), ("y", 28.0),                     # brew.loop
        ("x", 0.5), ("y", 4.0), ("z", 16.0), ("y_grad", 8.0),     # z = y^2, dz/dy = 2y
        ("x", -0.5), ("y", 4.0), ("z", 64.0), ("y_grad", 48.0),   # z = y^3, dz/dy = 3y^2
    ]
    assert values[:len(expected)] == expected
    x, y, z = 2.0, 3.0, 2.0  # the loop: x^4 always, y^2 while i < 2 (once), z^3 at i = 2 (once)
    assert values[len(expected):] == [("x", x ** 4), ("x_grad", 4 * x ** 3), ("y", y ** 2), ("y_grad", 2 * y),
                                      ("z", z ** 3), ("z_grad", 3 * z ** 2)]
    # the blocks' local blobs stayed in their Do scopes
    assert "local_blob" not in ns["ws"].blobs
    # the gradient net is one net holding the While (and its gradient While)
    net = ns["net"].Proto()
    assert [op.type for op in net.op].count("While") == 2
    assert any(op.type == "While" and op.is_gradient_op for op in net.op)
