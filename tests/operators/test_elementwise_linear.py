"""The elementwise_linear family: ElementwiseLinear against NumPy, its gradient
against central differences, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

CASES = [((4, 3), 1), ((2, 3, 2), 1), ((2, 3, 2), 2), ((2, 3, 2), -1), ((5,), 0)]


def features(shape, axis):
    axis %= len(shape)
    return int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))


@pytest.mark.parametrize("shape, axis", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_linear(shape, axis, dtype):
    rng = np.random.default_rng(0)
    n, d = features(shape, axis)
    x, a, b = (rng.standard_normal(s).astype(dtype) for s in (shape, (d,), (d,)))
    check_reference("ElementwiseLinear", [x, a, b],
                    lambda x, a, b, axis: [(x.reshape(n, d) * a + b).reshape(shape)], {"axis": axis})


@pytest.mark.parametrize("shape, axis", CASES)
def test_elementwise_linear_gradient(shape, axis):
    rng = np.random.default_rng(1)
    _, d = features(shape, axis)
    x, a, b, dy = (rng.standard_normal(s) for s in (shape, (d,), (d,), shape))
    (grad_op,), _ = GetGradientForOp(make_op("ElementwiseLinear", ["x", "a", "b"], ["y"], {"axis": axis}),
                                     ["y_grad"])
    assert grad_op.type == "ElementwiseLinearGradient" and list(grad_op.output) == ["x_grad", "a_grad", "b_grad"]
    check_gradient_op("ElementwiseLinear", [x, a, b], "ElementwiseLinearGradient", [dy, x, a],
                      {0: 0, 1: 1, 2: 2}, [dy], {"axis": axis})


def test_inference():
    assert infer("ElementwiseLinear", [(2, 3, 4), (12,), (12,)])[0].shape == (2, 3, 4)
    assert [i.shape for i in infer("ElementwiseLinearGradient", [(2, 6), (2, 6), (6,)], 3)] == [(2, 6), (6,), (6,)]
    with pytest.raises(ShapeError, match=r"a \[3\] must be \[12\]"):
        infer("ElementwiseLinear", [(2, 3, 4), (3,), (12,)])
    with pytest.raises(ShapeError, match="axis 3 is out of range for rank 3"):
        infer("ElementwiseLinear", [(2, 3, 4), (12,), (12,)], axis=3)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match=r"b \[2\] must be \[3\]"):
        run_op("ElementwiseLinear", [np.ones((2, 3), np.float32), np.ones(3, np.float32), np.ones(2, np.float32)])
