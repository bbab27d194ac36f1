"""Linalg family: FC, FCTransposed, MatMul, BatchMatMul against NumPy references,
and the FC gradient ops against numeric differentiation of their forward ops."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

dims = st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)


def randn(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def fc_reference(x, w, b, axis, axis_w, transposed=False):
    """Y = X W^T + b with X flattened at axis, W at axis_w (W^T -> W when transposed)."""
    axis %= x.ndim
    x2 = x.reshape(math.prod(x.shape[:axis]), -1).astype(np.float64)
    w2 = w.reshape(math.prod(w.shape[:axis_w % w.ndim]), -1).astype(np.float64)
    y = x2 @ (w2 if transposed else w2.T) + b.ravel()
    return y.reshape(x.shape[:axis] + (-1,))


def fc_case(seed, lead, kdims, ndims, transposed, negative_axis, dtype=np.float32):
    """Inputs and args of an FC(Transposed) whose X is lead+kdims and N is prod(ndims)."""
    rng = np.random.default_rng(seed)
    x = randn(rng, lead + kdims, dtype)
    w = randn(rng, kdims + ndims if transposed else ndims + kdims, dtype)
    b = randn(rng, (math.prod(ndims),), dtype)
    axis = -len(kdims) if negative_axis else len(lead)
    axis_w = len(kdims) if transposed else len(ndims)
    return x, w, b, {"axis": axis, "axis_w": axis_w}


@pytest.mark.parametrize("op_type", ["FC", "FCTransposed"])
@settings(max_examples=20, deadline=None)
@given(lead=dims, kdims=dims, ndims=dims, negative_axis=st.booleans(), seed=st.integers(0, 2**16))
def test_fc_matches_reference(op_type, lead, kdims, ndims, negative_axis, seed):
    transposed = op_type == "FCTransposed"
    x, w, b, args = fc_case(seed, lead, kdims, ndims, transposed, negative_axis)
    reference = lambda x, w, b, axis, axis_w: fc_reference(x, w, b, axis, axis_w, transposed)
    (y,) = check_reference(op_type, [x, w, b], reference, args)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type", ["FCGradient", "FCTransposedGradient"])
@settings(max_examples=15, deadline=None)
@given(lead=dims, kdims=dims, ndims=dims, seed=st.integers(0, 2**16))
def test_fc_gradient_matches_reference(op_type, lead, kdims, ndims, seed):
    transposed = op_type == "FCTransposedGradient"
    x, w, _, args = fc_case(seed, lead, kdims, ndims, transposed, negative_axis=False)
    m, k, n = math.prod(lead), math.prod(kdims), math.prod(ndims)
    dy = randn(np.random.default_rng(seed + 1), lead + (n,))
    x2, dy2 = x.reshape(m, k), dy.reshape(m, n)
    w2 = w.reshape(k, n) if transposed else w.reshape(n, k)
    dw = x2.T @ dy2 if transposed else dy2.T @ x2
    dx = dy2 @ (w2.T if transposed else w2)
    expected = (dw.reshape(w.shape), dy2.sum(axis=0), dx.reshape(x.shape))
    got = check_reference(op_type, [x, w, dy], lambda *_, **__: expected, args, num_outputs=3)
    assert [g.dtype for g in got] == [np.float32] * 3
    two = run_op(op_type, [x, w, dy], args, num_outputs=2)
    np.testing.assert_allclose(two[0], expected[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("forward, lead, kdims, ndims, axis, num_outputs", [
    ("FC", (2,), (3,), (2,), 1, 3),
    ("FC", (2, 2), (3,), (2,), 2, 3),
    ("FC", (2,), (2, 2), (3,), 1, 2),
    ("FCTransposed", (2,), (3,), (2,), 1, 3),
    ("FCTransposed", (2,), (2, 2), (1, 2), -2, 3),
])
def test_fc_gradient_op_matches_numeric(forward, lead, kdims, ndims, axis, num_outputs):
    transposed = forward == "FCTransposed"
    x, w, b, args = fc_case(0, lead, kdims, ndims, transposed, negative_axis=axis < 0)
    dy = randn(np.random.default_rng(1), lead + (math.prod(ndims),))
    wrt = {0: 1, 1: 2, 2: 0} if num_outputs == 3 else {0: 1, 1: 2}
    check_gradient_op(forward, [x, w, b], f"{forward}Gradient", [x, w, dy], wrt, [dy], args,
                      atol=1e-3, rtol=1e-3)


def test_fc_keeps_float64_and_handles_an_empty_batch():
    x, w, b, args = fc_case(3, (4,), (5,), (2,), False, False, dtype=np.float64)
    (y,) = check_reference("FC", [x, w, b], lambda x, w, b, **a: fc_reference(x, w, b, **a), args)
    assert y.dtype == np.float64
    (y,) = run_op("FC", [np.zeros((0, 5), np.float32), w.astype(np.float32), b.astype(np.float32)])
    assert y.shape == (0, 2) and y.dtype == np.float32


def test_fc_errors():
    rng = np.random.default_rng(0)
    x, w, b = randn(rng, (2, 3, 4)), randn(rng, (5, 10)), randn(rng, (5,))
    with pytest.raises((OpFailure, NetError), match=r"\[2, 12\] but W is \[5, 10\].*K must match"):
        run_op("FC", [x, w, b])
    with pytest.raises((OpFailure, NetError), match=r"b is \[4\] but W \[5, 12\] gives N = 5"):
        run_op("FC", [x, randn(rng, (5, 12)), randn(rng, (4,))])
    with pytest.raises((OpFailure, NetError), match="X is float32 but W is float64"):
        run_op("FC", [x, randn(rng, (5, 12), np.float64), b])


def matmul_reference(a, b, shape_like=None, *, axis_a=1, axis_b=1, trans_a=0, trans_b=0):
    a2 = a.reshape(math.prod(a.shape[:axis_a]), -1)
    b2 = b.reshape(math.prod(b.shape[:axis_b]), -1)
    y = (a2.T if trans_a else a2) @ (b2.T if trans_b else b2)
    return y if shape_like is None else y.reshape(shape_like.shape)


@pytest.mark.parametrize("a, b, args", [
    ((3, 4), (4, 5), {}),
    ((4, 3), (4, 5), {"trans_a": 1}),
    ((3, 4), (5, 4), {"trans_b": 1}),
    ((4, 3), (5, 4), {"trans_a": 1, "trans_b": 1}),
    ((2, 3, 4), (12, 5), {}),
    ((2, 3, 4), (4, 5, 2), {"axis_a": 2}),
    ((2, 3, 4), (5, 2, 3), {"axis_a": 2, "axis_b": 1, "trans_a": 1, "trans_b": 1}),
    ((1, 4), (4, 1), {}),
])
def test_matmul_matches_reference(a, b, args):
    rng = np.random.default_rng(0)
    (y,) = check_reference("MatMul", [randn(rng, a), randn(rng, b)], matmul_reference, args)
    assert y.dtype == np.float32


def test_matmul_third_input_gives_the_shape():
    rng = np.random.default_rng(1)
    inputs = [randn(rng, (6, 4)), randn(rng, (4, 5)), np.zeros((2, 3, 5), np.float32)]
    (y,) = check_reference("MatMul", inputs, matmul_reference)
    assert y.shape == (2, 3, 5)


def test_matmul_errors():
    rng = np.random.default_rng(2)
    with pytest.raises((OpFailure, NetError), match=r"\[M, K\] = \[3, 4\] but B \[5, 4\].*K must match"):
        run_op("MatMul", [randn(rng, (3, 4)), randn(rng, (5, 4))])
    with pytest.raises((OpFailure, NetError), match="element counts must match"):
        run_op("MatMul", [randn(rng, (6, 4)), randn(rng, (4, 5)), np.zeros((2, 3))])


def batch_matmul_reference(a, b, *, trans_a=0, trans_b=0, broadcast=0):
    a = np.swapaxes(a, -1, -2) if trans_a and a.ndim > 1 else a
    b = np.swapaxes(b, -1, -2) if trans_b and b.ndim > 1 else b
    return np.atleast_1d(np.matmul(a.astype(np.float64), b))


BATCH = [
    ((2, 3, 4), (2, 4, 5), {}),
    ((2, 4, 3), (2, 4, 5), {"trans_a": 1}),
    ((2, 3, 4), (2, 5, 4), {"trans_b": 1}),
    ((3, 2, 4, 3), (3, 2, 5, 4), {"trans_a": 1, "trans_b": 1}),
    ((3, 4), (4, 5), {}),
    ((2, 1, 3, 4), (5, 4, 6), {"broadcast": 1}),
    ((3, 4), (2, 4, 5), {"broadcast": 1}),
    ((2, 1, 4, 3), (1, 3, 4, 2), {"broadcast": 1, "trans_a": 1}),
    ((4,), (2, 4, 5), {"broadcast": 1}),
    ((4,), (2, 5, 4), {"broadcast": 1, "trans_a": 1, "trans_b": 1}),
    ((2, 3, 4), (4,), {"broadcast": 1}),
    ((4,), (4,), {"broadcast": 1}),
]


@pytest.mark.parametrize("a, b, args", BATCH)
def test_batch_matmul_matches_reference(a, b, args):
    rng = np.random.default_rng(0)
    (y,) = check_reference("BatchMatMul", [randn(rng, a), randn(rng, b)], batch_matmul_reference, args)
    assert y.dtype == np.float32


def test_batch_matmul_float64():
    rng = np.random.default_rng(4)
    a, b = randn(rng, (2, 3, 4), np.float64), randn(rng, (2, 4, 2), np.float64)
    (y,) = check_reference("BatchMatMul", [a, b], batch_matmul_reference)
    assert y.dtype == np.float64


def test_batch_matmul_errors():
    rng = np.random.default_rng(3)
    with pytest.raises((OpFailure, NetError), match="same batch dims"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (3, 4, 5))])
    with pytest.raises((OpFailure, NetError), match="do not broadcast"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (3, 4, 5))], {"broadcast": 1})
    with pytest.raises((OpFailure, NetError), match="K must match"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (2, 5, 6))])


# Gradient makers: the registered gradient of each op against central differences.
FC_MAKER = [("FC", (2,), (3,), (2,), False), ("FC", (2, 2), (2,), (3,), False),
            ("FC", (2,), (2, 2), (1, 2), True), ("FCTransposed", (2,), (3,), (2,), False),
            ("FCTransposed", (1, 2), (2, 2), (2,), False)]


@pytest.mark.parametrize("input_to_check", [0, 1, 2])
@pytest.mark.parametrize("op_type, lead, kdims, ndims, negative_axis", FC_MAKER)
def test_fc_registered_gradient(op_type, lead, kdims, ndims, negative_axis, input_to_check):
    x, w, b, args = fc_case(5, lead, kdims, ndims, op_type == "FCTransposed", negative_axis)
    op = make_op(op_type, ["X", "W", "b"], ["Y"], args)
    report = check_op_gradient(op, [x, w, b], input_to_check)
    assert report.ok, report


def test_fc_maker_follows_caffe2():
    op = make_op("FC", ["X", "W", "b"], ["Y"], {"axis": 2})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    assert (grad.type, list(grad.input), list(grad.output)) == (
        "FCGradient", ["X", "W", "Y_grad"], ["W_grad", "b_grad", "X_grad"])
    assert [(a.name, a.i) for a in grad.arg if a.name == "axis"] == [("axis", 2)]
    assert g_input == ["X_grad", "W_grad", "b_grad"]


TRANS = [{}, {"trans_a": 1}, {"trans_b": 1}, {"trans_a": 1, "trans_b": 1}]


def trans_shapes(batch, args, m=2, k=3, n=4):
    """Shapes of A and B for an [m, k] x [k, n] product stored as `args` say."""
    a = (k, m) if args.get("trans_a") else (m, k)
    b = (n, k) if args.get("trans_b") else (k, n)
    return batch + a, batch + b, args


MATMUL_MAKER = [trans_shapes((), t) for t in TRANS] + [
    ((2, 3, 2), (4, 6), {"trans_b": 1}),                 # A as [2, 6]
    ((2, 3, 2), (2, 2), {"axis_a": 2}),                  # A as [6, 2]
    ((2, 2, 3), (3, 2, 2), {"axis_a": 2, "trans_a": 1, "trans_b": 1}),   # A^T [3, 4], B^T [4, 3]
    ((3, 2, 2), (1, 3, 2), {"axis_a": -2, "axis_b": 2, "trans_a": 1}),  # A^T [4, 3], B [3, 2]
    ((2, 3), (3, 1, 2), {"axis_b": 1}),
    ((2, 2, 2), (1, 2, 4), {"axis_a": 1, "axis_b": 2, "trans_b": 1}),   # A [2, 4], B^T [4, 2]
]


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("a, b, args", MATMUL_MAKER)
def test_matmul_registered_gradient(a, b, args, input_to_check):
    rng = np.random.default_rng(6)
    op = make_op("MatMul", ["A", "B"], ["Y"], args)
    report = check_op_gradient(op, [rng.standard_normal(a), rng.standard_normal(b)], input_to_check)
    assert report.ok, report


@pytest.mark.parametrize("input_to_check", [0, 1])
def test_matmul_registered_gradient_with_shape_like(input_to_check):
    # dY takes the third input's shape; the maker reads it at axis 1, so its first dim is M.
    rng = np.random.default_rng(7)
    op = make_op("MatMul", ["A", "B", "S"], ["Y"], {"trans_a": 1})
    inputs = [rng.standard_normal((3, 2)), rng.standard_normal((3, 4)), np.zeros((2, 2, 2))]
    report = check_op_gradient(op, inputs, input_to_check)
    assert report.ok, report


@pytest.mark.parametrize("args", TRANS)
def test_matmul_maker_sets_every_arg(args):
    forward = {"axis_a": 2, "axis_b": 1, **args}
    op = make_op("MatMul", ["A", "B"], ["Y"], forward)
    grads, g_input = GetGradientForOp(op, ["Y_grad"])
    assert g_input == ["A_grad", "B_grad"]
    for grad, like in zip(grads, "AB"):
        assert grad.type == "MatMul" and grad.input[2] == like
        assert sorted(a.name for a in grad.arg) == ["axis_a", "axis_b", "trans_a", "trans_b"]


BATCH_MAKER = ([trans_shapes((2,), t) for t in TRANS] + [trans_shapes((), t) for t in TRANS]
               + [trans_shapes((2, 1), {"trans_a": 1, "broadcast": 0}, 2, 2, 3)])


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("a, b, args", BATCH_MAKER)
def test_batch_matmul_registered_gradient(a, b, args, input_to_check):
    rng = np.random.default_rng(8)
    inputs = [rng.standard_normal(a), rng.standard_normal(b)]
    op = make_op("BatchMatMul", ["A", "B"], ["Y"], args)
    report = check_op_gradient(op, inputs, input_to_check)
    assert report.ok, report


def test_batch_matmul_has_no_gradient_with_broadcast():
    op = make_op("BatchMatMul", ["A", "B"], ["Y"], {"broadcast": 1})
    with pytest.raises(GradientError, match="broadcast=1"):
        GetGradientForOp(op, ["Y_grad"])
