"""cumulative family (CumSum, CumProd): against loop references written from ONNX's
op docs for every axis, exclusive and reverse setting, CumSum's gradient against
central differences, inference and the errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, numeric_gradient, run_op
from tests.schema import infer

FAILS = (OpFailure, NetError)


def reference(x, axis_tensor=None, axis=0, exclusive=0, reverse=0, product=False):
    axis = int(np.ravel(axis_tensor)[0]) if axis_tensor is not None else axis
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    n = moved.shape[-1]
    for position in np.ndindex(moved.shape[:-1]):
        for i in range(n):
            span = range(i + 1, n) if reverse else range(i)
            if not exclusive:
                span = range(i, n) if reverse else range(i + 1)
            terms = [moved[position + (j,)] for j in span]
            out[position + (i,)] = np.prod(terms, dtype=x.dtype) if product else np.sum(terms, dtype=x.dtype)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("op_type", ["CumSum", "CumProd"])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("shape, axis", [((5,), 0), ((2, 3), 0), ((2, 3), 1), ((2, 3, 4), -1), ((0, 3), 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.float32])
def test_cumulative(op_type, exclusive, reverse, shape, axis, dtype):
    x = np.random.default_rng(1).integers(-3, 4, shape).astype(dtype)
    args = {"exclusive": exclusive, "reverse": reverse}
    product = op_type == "CumProd"
    check_reference(op_type, [x], lambda x, **a: reference(x, product=product, **a), {**args, "axis": axis})
    for axis_tensor in (np.array(axis, np.int32), np.array([axis], np.int64)):
        check_reference(op_type, [x, axis_tensor], lambda x, t, **a: reference(x, t, product=product, **a), args)


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
def test_cum_sum_gradient(exclusive, reverse):
    x = np.random.default_rng(2).standard_normal((3, 4))
    dy = np.random.default_rng(3).standard_normal((3, 4))
    args = {"exclusive": exclusive, "reverse": reverse}
    (grad,), _ = GetGradientForOp(make_op("CumSum", ["x", "a"], ["y"], args), ["y_grad"])
    assert grad.type == "CumSum" and list(grad.input) == ["y_grad", "a"]
    assert {a.name: a.i for a in grad.arg}["reverse"] == 1 - reverse
    axis = np.array(1, np.int64)
    got = run_op("CumSum", [dy, axis], {**args, "reverse": 1 - reverse})[0]  # the gradient op, run alone
    np.testing.assert_allclose(got, numeric_gradient("CumSum", [x, axis], 0, [dy], args), atol=1e-6)


def test_inference():
    assert infer("CumSum", [TensorInfo((2, 3), "int32")], axis=1) == [TensorInfo((2, 3), "int32")]
    assert infer("CumProd", [(2, 3), TensorInfo((), "int64")]) == [TensorInfo((2, 3))]


@pytest.mark.parametrize("shapes, args, message", [
    ([(2, 3)], {"axis": 2}, r"axis 2 is out of range for rank 2 \(X \[2, 3\]\)"),
    ([()], {}, "X must have rank >= 1"),
    ([(2, 3), TensorInfo((2,), "int64")], {}, r"axis_tensor must hold one int32 or int64, got \[2\] int64"),
    ([(2, 3), TensorInfo((), "float32")], {}, r"axis_tensor must hold one int32 or int64, got \[\] float32"),
])
@pytest.mark.parametrize("op_type", ["CumSum", "CumProd"])
def test_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)
    inputs = [np.zeros(s.shape, s.dtype) if isinstance(s, TensorInfo) else np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args)


def test_axis_input_out_of_range_at_run():
    with pytest.raises(FAILS, match="axis -3 is out of range for rank 2"):
        run_op("CumSum", [np.zeros((2, 3), np.float32), np.array(-3, np.int64)])


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("shape, axis", [((5,), 0), ((3, 4), 1), ((2, 3, 2), 0)])
def test_cum_prod_gradient(exclusive, reverse, shape, axis):
    rng = np.random.default_rng(4)
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    x.reshape(-1)[1] = 0.0  # a zero factor: no division by X
    dy = rng.standard_normal(shape)
    args = {"axis": axis, "exclusive": exclusive, "reverse": reverse}
    check_gradient_op("CumProd", [x], "CumProdGradient", [x, dy], {0: 0}, [dy], args)
    axis_tensor = np.array(axis, np.int64)
    check_gradient_op("CumProd", [x, axis_tensor], "CumProdGradient", [x, dy, axis_tensor], {0: 0}, [dy],
                      {"exclusive": exclusive, "reverse": reverse})


def test_cum_prod_gradient_maker_and_errors():
    (grad,), _ = GetGradientForOp(make_op("CumProd", ["x", "a"], ["y"], {"reverse": 1}), ["y_grad"])
    assert grad.type == "CumProdGradient" and list(grad.input) == ["x", "y_grad", "a"]
    with pytest.raises(ShapeError, match=r"dY \[2\] must have X's shape \[3\]"):
        infer("CumProdGradient", [(3,), (2,)])
    with pytest.raises(FAILS, match=r"dY \[2\] must have X's shape \[3\]"):
        run_op("CumProdGradient", [np.ones(3), np.ones(2)])
