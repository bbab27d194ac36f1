"""Linalg family: FC, FCTransposed, MatMul, BatchMatMul against NumPy references (on
both devices where a case can run on CUDA), the FC gradient ops against numeric
differentiation of their forward ops, the registered gradients, shape inference
against NumPy's shapes, and CUDA against the CPU twin (the tiled SGEMM of linalg.cu)
at sizes that fill no tile evenly (1x1x1, 17x33x65, 130x7x129), a full one (512^3) and
a large one (over 1M outputs), and `gemm` itself with out, beta and a broadcast operand.
Every error is one schema check, so the same inputs fail alike on both devices."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.operators.linalg import gemm
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import (
    CUDA,
    check_devices,
    check_gradient_op,
    check_reference,
    device_option,
    make_op,
    run_op,
)
from tests.operators import DEVICES
from tests.schema import infer

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


def test_fc_refuses_mixed_dtypes():  # CPU only: CUDA blobs are float32
    rng = np.random.default_rng(0)
    with pytest.raises((OpFailure, NetError), match="X is float32 but W is float64"):
        run_op("FC", [randn(rng, (2, 12)), randn(rng, (5, 12), np.float64), randn(rng, (5,))])


@pytest.mark.parametrize("device", DEVICES)
def test_fc_errors(device):
    rng, option = np.random.default_rng(0), device_option(device)
    x, w, b = randn(rng, (2, 3, 4)), randn(rng, (5, 10)), randn(rng, (5,))
    with pytest.raises((OpFailure, NetError), match=r"\[2, 12\] but W is \[5, 10\].*K must match"):
        run_op("FC", [x, w, b], device_option=option)
    with pytest.raises((OpFailure, NetError), match=r"b is \[4\] but W \[5, 12\] gives N = 5"):
        run_op("FC", [x, randn(rng, (5, 12)), randn(rng, (4,))], device_option=option)
    with pytest.raises((OpFailure, NetError), match=r"dY is \[2, 4\] but Y has \[M, N\] = \[2, 5\]"):
        run_op("FCGradient", [randn(rng, (2, 12)), randn(rng, (5, 12)), randn(rng, (2, 4))], num_outputs=3,
               device_option=option)


def matmul_reference(a, b, shape_like=None, *, axis_a=1, axis_b=1, trans_a=0, trans_b=0):
    a2 = a.reshape(math.prod(a.shape[:axis_a]), -1)
    b2 = b.reshape(math.prod(b.shape[:axis_b]), -1)
    y = (a2.T if trans_a else a2) @ (b2.T if trans_b else b2)
    return y if shape_like is None else y.reshape(shape_like.shape)


@pytest.mark.parametrize("device", DEVICES)
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
def test_matmul_matches_reference(a, b, args, device):
    rng = np.random.default_rng(0)
    (y,) = check_reference("MatMul", [randn(rng, a), randn(rng, b)], matmul_reference, args, device=device)
    assert y.dtype == np.float32


@pytest.mark.parametrize("device", DEVICES)
def test_matmul_third_input_gives_the_shape(device):
    rng = np.random.default_rng(1)
    inputs = [randn(rng, (6, 4)), randn(rng, (4, 5)), np.zeros((2, 3, 5), np.float32)]
    (y,) = check_reference("MatMul", inputs, matmul_reference, device=device)
    assert y.shape == (2, 3, 5)


@pytest.mark.parametrize("device", DEVICES)
def test_matmul_errors(device):
    rng, option = np.random.default_rng(2), device_option(device)
    with pytest.raises((OpFailure, NetError), match=r"\[M, K\] = \[3, 4\] but B \[5, 4\].*K must match"):
        run_op("MatMul", [randn(rng, (3, 4)), randn(rng, (5, 4))], device_option=option)
    with pytest.raises((OpFailure, NetError), match="element counts must match"):
        run_op("MatMul", [randn(rng, (6, 4)), randn(rng, (4, 5)), np.zeros((2, 3), np.float32)],
               device_option=option)


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("a, b, args", BATCH)
def test_batch_matmul_matches_reference(a, b, args, device):
    if device == "cuda" and args.get("broadcast"):
        pytest.skip("broadcast=1 has no CUDA kernel")
    rng = np.random.default_rng(0)
    (y,) = check_reference("BatchMatMul", [randn(rng, a), randn(rng, b)], batch_matmul_reference, args,
                           device=device)
    assert y.dtype == np.float32


def test_batch_matmul_float64():
    rng = np.random.default_rng(4)
    a, b = randn(rng, (2, 3, 4), np.float64), randn(rng, (2, 4, 2), np.float64)
    (y,) = check_reference("BatchMatMul", [a, b], batch_matmul_reference)
    assert y.dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
def test_batch_matmul_errors(device):
    rng, option = np.random.default_rng(3), device_option(device)
    with pytest.raises((OpFailure, NetError), match="same batch dims"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (3, 4, 5))], device_option=option)
    with pytest.raises((OpFailure, NetError), match="K must match"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (2, 5, 6))], device_option=option)
    with pytest.raises((OpFailure, NetError), match="need rank >= 2"):
        run_op("BatchMatMul", [randn(rng, (4,)), randn(rng, (4, 5))], device_option=option)


def test_batch_matmul_errors_with_broadcast():
    rng = np.random.default_rng(3)
    with pytest.raises((OpFailure, NetError), match="do not broadcast"):
        run_op("BatchMatMul", [randn(rng, (2, 3, 4)), randn(rng, (3, 4, 5))], {"broadcast": 1})


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


# -- shape inference ---------------------------------------------------------------------------


def fc_shape_reference(x, w, axis, axis_w, transposed=False):
    """Y's shape from NumPy: X as [M, K] times W as [K, N], then X's leading dims."""
    x2 = np.zeros(x).reshape(int(np.prod(x[:axis])), -1)
    w2 = np.zeros(w).reshape(int(np.prod(w[:axis_w])), -1)
    y2 = x2 @ (w2 if transposed else w2.T)
    return tuple(x[:axis]) + (y2.shape[1],)


@pytest.mark.parametrize("x, w, axis, axis_w", [
    ((2, 12), (5, 12), 1, 1), ((2, 3, 4), (5, 12), 1, 1), ((2, 3, 4), (5, 4), 2, 1),
    ((2, 3, 4), (5, 3, 4), 1, 1), ((2, 3, 4), (5, 2, 4), -1, 2),
])
def test_fc_inference_matches_numpy(x, w, axis, axis_w):
    n = int(np.prod(w[:axis_w]))
    expected = fc_shape_reference(x, w, axis, axis_w)
    assert infer("FC", [x, w, (n,)], axis=axis, axis_w=axis_w) == [TensorInfo(expected)]
    dw, db, dx = infer("FCGradient", [x, w, expected], n_out=3, axis=axis, axis_w=axis_w)
    assert (dw.shape, db.shape, dx.shape) == (w, (n,), x)


@pytest.mark.parametrize("x, w, axis_w", [((2, 12), (12, 5), 1), ((2, 3, 4), (12, 5), 1),
                                          ((2, 3, 4), (3, 4, 5), 2)])
def test_fc_transposed_inference_matches_numpy(x, w, axis_w):
    expected = fc_shape_reference(x, w, 1, axis_w, transposed=True)
    n = expected[-1]
    assert infer("FCTransposed", [x, w, (n,)], axis_w=axis_w) == [TensorInfo(expected)]
    dw, db = infer("FCTransposedGradient", [x, w, expected], n_out=2, axis_w=axis_w)
    assert (dw.shape, db.shape) == (w, (n,))


def test_fc_inference_errors():
    with pytest.raises(ShapeError, match=r"^X flattened at axis 1 is \[2, 12\] but W is "
                                         r"\[5, 10\] \(read as \[N, K\] at axis_w 1\): K must match"):
        infer("FC", [(2, 3, 4), (5, 10), (5,)])
    with pytest.raises(ShapeError, match=r"b is \[4\] but W \[5, 12\] gives N = 5"):
        infer("FC", [(2, 12), (5, 12), (4,)])
    with pytest.raises(ShapeError, match=r"read as \[K, N\]"):
        infer("FCTransposed", [(2, 12), (5, 12), (5,)])
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        infer("FC", [(2, 12), (5, 12), (5,)], axis=3)
    with pytest.raises(ShapeError, match=r"dY is \[2, 4\] but Y has \[M, N\] = \[2, 5\]"):
        infer("FCGradient", [(2, 12), (5, 12), (2, 4)], n_out=3)


def test_fc_inference_unknowns():
    assert infer("FC", [None, (5, 12), (5,)]) == [None]
    assert infer("FC", [(2, 12), None, (5,)]) == [None]
    assert infer("FCGradient", [None, (5, 12), None], n_out=3) == [
        TensorInfo((5, 12)), TensorInfo((5,)), None]
    assert infer("FCGradient", [(2, 12), None, None], n_out=3) == [None, None, TensorInfo((2, 12))]


def matmul_shape_reference(a, b, axis_a, axis_b, trans_a, trans_b):
    a2 = np.zeros(a).reshape(int(np.prod(a[:axis_a])), -1)
    b2 = np.zeros(b).reshape(int(np.prod(b[:axis_b])), -1)
    return ((a2.T if trans_a else a2) @ (b2.T if trans_b else b2)).shape


@pytest.mark.parametrize("a, b, axis_a, axis_b, trans_a, trans_b", [
    ((3, 4), (4, 5), 1, 1, 0, 0), ((4, 3), (4, 5), 1, 1, 1, 0), ((3, 4), (5, 4), 1, 1, 0, 1),
    ((4, 3), (5, 4), 1, 1, 1, 1), ((2, 3, 4), (12, 5), 1, 1, 0, 0),
    ((2, 3, 4), (4, 5, 2), 2, 1, 0, 0),
])
def test_matmul_inference_matches_numpy(a, b, axis_a, axis_b, trans_a, trans_b):
    expected = matmul_shape_reference(a, b, axis_a, axis_b, trans_a, trans_b)
    out = infer("MatMul", [a, b], axis_a=axis_a, axis_b=axis_b, trans_a=trans_a, trans_b=trans_b)
    assert out == [TensorInfo(expected)]


def test_matmul_inference_third_input_and_errors():
    assert infer("MatMul", [(6, 4), (4, 5), (2, 3, 5)]) == [TensorInfo((2, 3, 5))]
    assert infer("MatMul", [(6, 4), (4, 5), None]) == [None]
    assert infer("MatMul", [None, (4, 5)]) == [None]
    with pytest.raises(ShapeError, match=r"\[M, K\] = \[3, 4\] but B \[5, 4\] gives "
                                         r"\[K, N\] = \[5, 4\]: K must match"):
        infer("MatMul", [(3, 4), (5, 4)])
    with pytest.raises(ShapeError, match="element counts must match"):
        infer("MatMul", [(6, 4), (4, 5), (2, 3)])


@pytest.mark.parametrize("a, b, trans_a, trans_b", [
    ((2, 3, 4), (2, 4, 5), 0, 0), ((2, 4, 3), (2, 4, 5), 1, 0), ((2, 3, 4), (2, 5, 4), 0, 1),
    ((7, 2, 3, 4), (7, 2, 4, 5), 0, 0), ((3, 4), (4, 5), 0, 0),
])
def test_batch_matmul_inference_matches_numpy(a, b, trans_a, trans_b):
    a_ = np.swapaxes(np.zeros(a), -1, -2) if trans_a else np.zeros(a)
    b_ = np.swapaxes(np.zeros(b), -1, -2) if trans_b else np.zeros(b)
    out = infer("BatchMatMul", [a, b], trans_a=trans_a, trans_b=trans_b)
    assert out == [TensorInfo(np.matmul(a_, b_).shape)]


@pytest.mark.parametrize("a, b", [((2, 1, 3, 4), (5, 4, 6)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
                                  ((4,), (4,)), ((3, 4), (2, 4, 5))])
def test_batch_matmul_broadcast_inference_matches_numpy(a, b):
    expected = np.matmul(np.zeros(a), np.zeros(b)).shape or (1,)  # Caffe2: vector . vector is [1]
    assert infer("BatchMatMul", [a, b], broadcast=1) == [TensorInfo(expected)]


def test_batch_matmul_inference_leaves_vectors_untransposed():
    assert infer("BatchMatMul", [(4,), (2, 5, 4)], broadcast=1, trans_a=1, trans_b=1) == [
        TensorInfo((2, 5))]
    assert infer("BatchMatMul", [(2, 4, 3), (4,)], broadcast=1, trans_a=1, trans_b=1) == [
        TensorInfo((2, 3))]


def test_batch_matmul_inference_errors():
    with pytest.raises(ShapeError, match="K must match"):
        infer("BatchMatMul", [(2, 3, 4), (2, 5, 6)])
    with pytest.raises(ShapeError, match="same batch dims"):
        infer("BatchMatMul", [(2, 3, 4), (3, 4, 5)])
    with pytest.raises(ShapeError, match="need rank >= 2"):
        infer("BatchMatMul", [(4,), (4, 5)])
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("BatchMatMul", [(2, 3, 4), (3, 4, 5)], broadcast=1)
    assert infer("BatchMatMul", [None, (2, 4, 5)]) == [None]


def test_inference_refuses_mixed_dtypes():
    with pytest.raises(ShapeError, match="^X is float32 but W is float64: the dtypes must match"):
        infer("FC", [(2, 12), TensorInfo((5, 12), "float64"), (5,)])
    with pytest.raises(ShapeError, match="^A is float64 but B is float32"):
        infer("MatMul", [TensorInfo((3, 4), "float64"), (4, 5)])


# -- CUDA against the CPU twin ------------------------------------------------------------------

# (M, K, N): odd sizes (no tile is full), an even one, a large one (M * N > 1M)
SIZES = [(1, 1, 1), (17, 33, 65), (130, 7, 129), (512, 512, 512), (1100, 70, 1000)]


def scaled(seed, shape, m, k, n):
    """Scaled so that every product here sums to O(1): fp32 tolerances then hold."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) / max(m, k, n) ** 0.25).astype(np.float32)


def fc_inputs(transposed=False, gradient=False, nested=False):
    def make(m, k, n):
        x_shape = (m, 1, k) if nested else (m, k)  # nested: X flattened at axis 1, W at 1
        w_shape = (k, n) if transposed else ((n, k, 1) if nested else (n, k))
        last = (m, n) if gradient else (n,)  # dY, or b
        return [scaled(1, x_shape, m, k, n), scaled(2, w_shape, m, k, n), scaled(3, last, m, k, n)]
    return make


def matmul_inputs(trans_a, trans_b, shaped=False):
    def make(m, k, n):
        a = scaled(1, (k, m) if trans_a else (m, k), m, k, n)
        b = scaled(2, (n, k) if trans_b else (k, n), m, k, n)
        if not shaped:
            return [a, b]
        # A as [1, rows, cols] read at axis_a 2, B as [rows, cols, 1] read at axis_b 1, Y
        # shaped like a third input.
        return [a.reshape(1, *a.shape), b.reshape(*b.shape, 1), np.zeros((m, n, 1), np.float32)]
    return make


def batch_matmul_inputs(trans_a, trans_b):
    def make(m, k, n):
        return [scaled(1, (2, 3) + ((k, m) if trans_a else (m, k)), m, k, n),
                scaled(2, (2, 3) + ((n, k) if trans_b else (k, n)), m, k, n)]
    return make


TRANSPOSES = [(0, 0), (0, 1), (1, 0), (1, 1)]
# op type -> [(variant id, inputs for (M, K, N), args, num_outputs)]
DEVICE_CASES = {
    "FC": [("plain", fc_inputs(), {}, None),
           ("nested", fc_inputs(nested=True), {"axis": 1, "axis_w": 1}, None)],
    "FCTransposed": [("plain", fc_inputs(transposed=True), {}, None)],
    "FCGradient": [("dX", fc_inputs(gradient=True), {}, 3),
                   ("no_dX", fc_inputs(gradient=True), {}, 2),
                   ("nested", fc_inputs(gradient=True, nested=True), {"axis": 1, "axis_w": 1}, 3)],
    "FCTransposedGradient": [("dX", fc_inputs(transposed=True, gradient=True), {}, 3)],
    "MatMul": [(f"t{ta}{tb}", matmul_inputs(ta, tb), {"trans_a": ta, "trans_b": tb}, None)
               for ta, tb in TRANSPOSES]
    + [("shaped", matmul_inputs(0, 1, shaped=True), {"trans_b": 1, "axis_a": 2, "axis_b": 1}, None)],
    "BatchMatMul": [(f"t{ta}{tb}", batch_matmul_inputs(ta, tb), {"trans_a": ta, "trans_b": tb}, None)
                    for ta, tb in TRANSPOSES],
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(DEVICE_CASES)
VARIANTS = [(op_type, *variant) for op_type, variants in DEVICE_CASES.items() for variant in variants]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=["x".join(map(str, s)) for s in SIZES])
@pytest.mark.parametrize("op_type, variant, make_inputs, args, num_outputs", VARIANTS,
                         ids=[f"{v[0]}-{v[1]}" for v in VARIANTS])
def test_cuda_matches_cpu(op_type, variant, make_inputs, args, num_outputs, size):
    check_devices(op_type, make_inputs(*size), args, num_outputs, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.slow
def test_gemm_with_out_beta_and_a_broadcast_operand():
    from pycaffe2.operators import _cuda as cuda
    m, k, n = 70, 300, 129
    a = scaled(1, (k, m), m, k, n)  # one A for the whole batch, stored transposed
    b = scaled(2, (4, k, n), m, k, n)
    c = scaled(3, (4, m, n), m, k, n)
    out = cuda.as_gpu(c)
    assert gemm(a, b, True, False, out=out, beta=0.5, alpha=2.0) is out
    expected = 2.0 * np.matmul(a.T.astype(np.float64), b) + 0.5 * c
    np.testing.assert_allclose(out.get(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.slow
def test_gemm_with_k_zero_gives_zeros():
    y = gemm(np.zeros((3, 0), np.float32), np.zeros((0, 5), np.float32), False, False)
    np.testing.assert_array_equal(y.get(), np.zeros((3, 5), np.float32))


@pytest.mark.gpu
@pytest.mark.slow
def test_fc_gradient_bias_sums_many_rows_in_two_passes():
    """db over 5000 rows takes the two-pass column sum (chunks of 1024 rows)."""
    m, k, n = 5000, 3, 40
    check_devices("FCGradient", fc_inputs(gradient=True)(m, k, n), {}, 2, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_batch_matmul_with_broadcast_says_it_is_cpu_only():
    op = make_op("BatchMatMul", ["A", "B"], ["Y"], {"broadcast": 1})
    op.device_option.CopyFrom(CUDA)
    net = caffe2_pb2.NetDef(name="bmm", op=[op], external_input=["A", "B"])
    with pytest.raises(NetError, match="broadcast=1 has no CUDA kernel"):
        Workspace().CreateNet(net)


def dot_product_reference(x, y):
    return (x.astype(np.float64) * y).reshape(len(x), math.prod(x.shape[1:])).sum(axis=1)


@pytest.mark.parametrize("shape", [(4, 3), (5,), (1, 1), (0, 2)])
def test_dot_product_matches_reference(shape):
    rng = np.random.default_rng(0)
    (z,) = check_reference("DotProduct", [randn(rng, shape), randn(rng, shape)], dot_product_reference)
    assert z.shape == shape[:1] and z.dtype == np.float32


@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_dot_product_gradient_op_matches_numeric(shape):
    rng = np.random.default_rng(1)
    x, y, dz = randn(rng, shape), randn(rng, shape), randn(rng, shape[:1])
    check_gradient_op("DotProduct", [x, y], "DotProductGradient", [x, y, dz], {0: 0, 1: 1}, [dz])


def test_dot_product_registered_gradient():
    rng = np.random.default_rng(2)
    for input_to_check in (0, 1):
        report = check_op_gradient(make_op("DotProduct", ["X", "Y"], ["Z"]),
                                   [randn(rng, (3, 2)), randn(rng, (3, 2))], input_to_check)
        assert report.ok, report


def test_dot_product_inference_and_errors():
    assert infer("DotProduct", [(4, 3), (4, 3)]) == [TensorInfo((4,), "float32")]
    assert infer("DotProductGradient", [(4, 3), (4, 3), (4,)], n_out=2) == [TensorInfo((4, 3), "float32")] * 2
    with pytest.raises(ShapeError, match=r"X is \[4, 3\] but Y is \[4, 2\]: they must have one shape"):
        infer("DotProduct", [(4, 3), (4, 2)])
    with pytest.raises(ShapeError, match=r"X must be \[N\] or \[N, D\], got \[2, 3, 4\]"):
        infer("DotProduct", [(2, 3, 4), (2, 3, 4)])
    with pytest.raises(ShapeError, match=r"dZ must be \[4\] \(one value per row\), got \[3\]"):
        infer("DotProductGradient", [(4, 3), (4, 3), (3,)], n_out=2)
    rng = np.random.default_rng(3)
    with pytest.raises((OpFailure, NetError), match="they must have one shape"):
        run_op("DotProduct", [randn(rng, (2, 3)), randn(rng, (3, 2))])
