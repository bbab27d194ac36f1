"""Inference rules of the linalg family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer


def fc_reference(x, w, axis, axis_w, transposed=False):
    """Y's shape from NumPy: X as [M, K] times W as [K, N], then X's leading dims."""
    x2 = np.zeros(x).reshape(int(np.prod(x[:axis])), -1)
    w2 = np.zeros(w).reshape(int(np.prod(w[:axis_w])), -1)
    y2 = x2 @ (w2 if transposed else w2.T)
    return tuple(x[:axis]) + (y2.shape[1],)


@pytest.mark.parametrize("x, w, axis, axis_w", [
    ((2, 12), (5, 12), 1, 1), ((2, 3, 4), (5, 12), 1, 1), ((2, 3, 4), (5, 4), 2, 1),
    ((2, 3, 4), (5, 3, 4), 1, 1), ((2, 3, 4), (5, 2, 4), -1, 2),
])
def test_fc_matches_numpy(x, w, axis, axis_w):
    n = int(np.prod(w[:axis_w]))
    expected = fc_reference(x, w, axis, axis_w)
    assert infer("FC", [x, w, (n,)], axis=axis, axis_w=axis_w) == [TensorInfo(expected)]
    dw, db, dx = infer("FCGradient", [x, w, expected], n_out=3, axis=axis, axis_w=axis_w)
    assert (dw.shape, db.shape, dx.shape) == (w, (n,), x)


@pytest.mark.parametrize("x, w, axis_w", [((2, 12), (12, 5), 1), ((2, 3, 4), (12, 5), 1),
                                          ((2, 3, 4), (3, 4, 5), 2)])
def test_fc_transposed_matches_numpy(x, w, axis_w):
    expected = fc_reference(x, w, 1, axis_w, transposed=True)
    n = expected[-1]
    assert infer("FCTransposed", [x, w, (n,)], axis_w=axis_w) == [TensorInfo(expected)]
    dw, db = infer("FCTransposedGradient", [x, w, expected], n_out=2, axis_w=axis_w)
    assert (dw.shape, db.shape) == (w, (n,))


def test_fc_errors():
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


def test_fc_unknowns():
    assert infer("FC", [None, (5, 12), (5,)]) == [None]
    assert infer("FC", [(2, 12), None, (5,)]) == [None]
    assert infer("FCGradient", [None, (5, 12), None], n_out=3) == [
        TensorInfo((5, 12)), TensorInfo((5,)), None]
    assert infer("FCGradient", [(2, 12), None, None], n_out=3) == [None, None, TensorInfo((2, 12))]


def matmul_reference(a, b, axis_a, axis_b, trans_a, trans_b):
    a2 = np.zeros(a).reshape(int(np.prod(a[:axis_a])), -1)
    b2 = np.zeros(b).reshape(int(np.prod(b[:axis_b])), -1)
    return ((a2.T if trans_a else a2) @ (b2.T if trans_b else b2)).shape


@pytest.mark.parametrize("a, b, axis_a, axis_b, trans_a, trans_b", [
    ((3, 4), (4, 5), 1, 1, 0, 0), ((4, 3), (4, 5), 1, 1, 1, 0), ((3, 4), (5, 4), 1, 1, 0, 1),
    ((4, 3), (5, 4), 1, 1, 1, 1), ((2, 3, 4), (12, 5), 1, 1, 0, 0),
    ((2, 3, 4), (4, 5, 2), 2, 1, 0, 0),
])
def test_matmul_matches_numpy(a, b, axis_a, axis_b, trans_a, trans_b):
    expected = matmul_reference(a, b, axis_a, axis_b, trans_a, trans_b)
    out = infer("MatMul", [a, b], axis_a=axis_a, axis_b=axis_b, trans_a=trans_a, trans_b=trans_b)
    assert out == [TensorInfo(expected)]


def test_matmul_third_input_and_errors():
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
def test_batch_matmul_matches_numpy(a, b, trans_a, trans_b):
    a_ = np.swapaxes(np.zeros(a), -1, -2) if trans_a else np.zeros(a)
    b_ = np.swapaxes(np.zeros(b), -1, -2) if trans_b else np.zeros(b)
    out = infer("BatchMatMul", [a, b], trans_a=trans_a, trans_b=trans_b)
    assert out == [TensorInfo(np.matmul(a_, b_).shape)]


@pytest.mark.parametrize("a, b", [((2, 1, 3, 4), (5, 4, 6)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
                                  ((4,), (4,)), ((3, 4), (2, 4, 5))])
def test_batch_matmul_broadcast_matches_numpy(a, b):
    expected = np.matmul(np.zeros(a), np.zeros(b)).shape or (1,)  # Caffe2: vector . vector is [1]
    assert infer("BatchMatMul", [a, b], broadcast=1) == [TensorInfo(expected)]


def test_batch_matmul_transpose_leaves_vectors_alone():
    assert infer("BatchMatMul", [(4,), (2, 5, 4)], broadcast=1, trans_a=1, trans_b=1) == [
        TensorInfo((2, 5))]
    assert infer("BatchMatMul", [(2, 4, 3), (4,)], broadcast=1, trans_a=1, trans_b=1) == [
        TensorInfo((2, 3))]


def test_batch_matmul_errors():
    with pytest.raises(ShapeError, match="K must match"):
        infer("BatchMatMul", [(2, 3, 4), (2, 5, 6)])
    with pytest.raises(ShapeError, match="same batch dims"):
        infer("BatchMatMul", [(2, 3, 4), (3, 4, 5)])
    with pytest.raises(ShapeError, match="need rank >= 2"):
        infer("BatchMatMul", [(4,), (4, 5)])
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("BatchMatMul", [(2, 3, 4), (3, 4, 5)], broadcast=1)
    assert infer("BatchMatMul", [None, (2, 4, 5)]) == [None]
