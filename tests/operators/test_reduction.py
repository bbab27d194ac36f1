"""Reduction family: ReduceSum/Mean/Max and ArgMax against NumPy references,
the reduction gradient ops against references and numeric differentiation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

REDUCE = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max}

arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
                    elements=st.floats(-3, 3, width=32))


@st.composite
def reductions(draw):
    """(x, args): an array and a random `axes` (absent, or a subset, maybe negative) and keepdims."""
    x = draw(arrays)
    args = {"keepdims": draw(st.sampled_from([0, 1]))}
    if draw(st.booleans()):
        chosen = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
        args["axes"] = [a - x.ndim if draw(st.booleans()) else a for a in chosen]
    return x, args


def reduce_reference(function):
    def reference(x, axes=None, keepdims=1):
        axis = None if axes is None else tuple(axes)
        return np.asarray(function(x.astype(np.float64), axis=axis, keepdims=bool(keepdims)))
    return reference


def kept(dy, x, axes):
    """dy with X's reduced axes as size-1 dims."""
    axes = range(x.ndim) if axes is None else [a % x.ndim for a in axes]
    return dy.reshape([1 if i in axes else d for i, d in enumerate(x.shape)])


@pytest.mark.parametrize("op_type", REDUCE)
@settings(max_examples=20, deadline=None)
@given(case=reductions())
def test_reduce_matches_reference(op_type, case):
    x, args = case
    (y,) = check_reference(op_type, [x], reduce_reference(REDUCE[op_type]), args)
    assert y.dtype == np.float32 and isinstance(y, np.ndarray)


def test_reduce_defaults_reduce_everything_and_keep_dims():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    (y,) = check_reference("ReduceSum", [x], lambda x: x.sum(keepdims=True))
    assert y.shape == (1, 1, 1) and y.dtype == np.float64


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_reductions_keep_their_dtype(op_type, dtype):
    x = np.arange(-6, 18, dtype=dtype).reshape(2, 3, 4)
    reference = lambda x, **_: REDUCE[op_type](x, axis=1)
    (y,) = check_reference(op_type, [x], reference, {"axes": [1], "keepdims": 0})
    assert y.dtype == dtype


@pytest.mark.parametrize("op_type", REDUCE)
@settings(max_examples=15, deadline=None)
@given(case=reductions(), seed=st.integers(0, 2**16))
def test_reduce_gradient_matches_reference(op_type, case, seed):
    x, args = case
    y = reduce_reference(REDUCE[op_type])(x, **args).astype(np.float32)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    dy_kept, y_kept = kept(dy, x, args.get("axes")), kept(y, x, args.get("axes"))
    expected = {
        "ReduceSum": lambda: np.broadcast_to(dy_kept, x.shape),
        "ReduceMean": lambda: np.broadcast_to(dy_kept, x.shape) * (y.size / x.size),
        "ReduceMax": lambda: np.where(x == y_kept, dy_kept, 0),  # ties all get dY
    }[op_type]()
    (dx,) = check_reference(f"{op_type}Gradient", [dy, x, y], lambda *_, **__: expected, args)
    assert dx.dtype == np.float32 and dx.shape == x.shape


@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("shape, args", [
    ((2, 3), {}), ((2, 3, 2), {"axes": [1]}), ((2, 3, 2), {"axes": [0, -1], "keepdims": 0}),
    ((3,), {"keepdims": 0}),
])
def test_reduce_gradient_op_matches_numeric(op_type, shape, args):
    # Distinct, well-spaced values: ReduceMax has no ties to make it non-differentiable.
    rng = np.random.default_rng(0)
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5).astype(np.float32)
    y = run_op(op_type, [x], args)[0]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [dy, x, y], {0: 0}, [dy], args)


@settings(max_examples=20, deadline=None)
@given(x=arrays, data=st.data())
def test_argmax_matches_reference(x, data):
    args = {"axis": data.draw(st.integers(-x.ndim, x.ndim - 1)),
            "keepdims": data.draw(st.sampled_from([0, 1]))}
    reference = lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=bool(keepdims))
    (y,) = check_reference("ArgMax", [x], reference, args)
    assert y.dtype == np.int64


def test_argmax_defaults_and_ties():
    x = np.array([[1, 3, 3], [5, 5, 0]], dtype=np.int32)
    (y,) = run_op("ArgMax", [x])
    np.testing.assert_array_equal(y, [[1], [0]])
    assert y.dtype == np.int64


def test_errors_name_the_problem():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises((OpFailure, NetError), match="axes entry 3 is out of range"):
        run_op("ReduceSum", [x], {"axes": [3]})
    with pytest.raises((OpFailure, NetError), match="ReduceMean: data must be float, got int32"):
        run_op("ReduceMean", [np.zeros((2, 3), np.int32)])
    with pytest.raises((OpFailure, NetError), match=r"dY is \[3\] but reducing X \[2, 3, 4\]"):
        run_op("ReduceSumGradient", [np.zeros(3, np.float32), x, np.zeros((2, 1, 4), np.float32)],
               {"axes": [1]})
    with pytest.raises((OpFailure, NetError), match="axis 2 is out of range"):
        run_op("ArgMax", [np.zeros((2, 3))], {"axis": 2})


# Gradient makers: the registered gradient of each op against central differences.
@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("shape, args", [
    ((2, 3), {}), ((2, 3, 2), {"axes": [1]}), ((2, 3, 2), {"axes": [0, -1], "keepdims": 0}),
    ((3,), {"keepdims": 0}), ((2, 2, 2), {"axes": [-1, 1], "keepdims": 1}),
])
def test_reduce_registered_gradient(op_type, shape, args):
    # Distinct values 0.5 apart: no ReduceMax ties within the step of the differences.
    x = np.random.default_rng(1).permutation(int(np.prod(shape))).reshape(shape) * 0.5 - 1.0
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type", REDUCE)
def test_reduce_maker_follows_caffe2(op_type):
    op = make_op(op_type, ["X"], ["Y"], {"axes": [1], "keepdims": 0})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    assert (grad.type, list(grad.input), list(grad.output)) == (
        f"{op_type}Gradient", ["Y_grad", "X", "Y"], ["X_grad"])
    assert list(next(a for a in grad.arg if a.name == "axes").ints) == [1]
    assert g_input == ["X_grad"]
