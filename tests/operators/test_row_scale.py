"""row_scale family: RowMul, ReduceTailSum and SquareRootDivide against
independent NumPy references (loops over rows), their gradients (RowMul's
three-op maker, SquareRootDivide's own) against numeric differentiation,
refusals, and the inference rules. CPU only."""
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GradientRegistry
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def ref_row_mul(mat, w):
    out = np.zeros(mat.shape)
    for i, factor in enumerate(w.reshape(-1)):
        out[i] = mat[i] * factor
    return out


@pytest.mark.parametrize("shape", [(4, 3), (3,), (2, 3, 2)])
def test_row_mul(shape):
    rng = np.random.default_rng(len(shape))
    mat, w = rng.standard_normal(shape), rng.standard_normal(shape[0])
    check_reference("RowMul", [mat.astype(np.float32), w.astype(np.float32)], ref_row_mul)
    for wrt in (0, 1):
        report = check_op_gradient(make_op("RowMul", ["M", "W"], ["Y"]), [mat, w], wrt)
        assert report.ok, report


def test_row_mul_gradient_is_caffe2s_three_ops():
    ops, _ = GradientRegistry.GetGradientForOp(make_op("RowMul", ["M", "W"], ["Y"]), ["Y_grad"])
    assert [op.type for op in ops] == ["RowMul", "Mul", "ReduceTailSum"]


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 2), (3, 0)])
def test_reduce_tail_sum(shape):
    mat = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    reference = lambda m: np.array([float(np.sum(row, dtype=np.float64)) for row in m])
    check_reference("ReduceTailSum", [mat], reference)


def ref_square_root_divide(data, scale):
    out = data.astype(np.float64)
    for i in range(data.shape[0]):
        if scale[i] > 0:
            out[i] = data[i] / math.sqrt(scale[i])
    return out


@pytest.mark.parametrize("scale_dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(3, 4), (4,), (2, 2, 3)])
def test_square_root_divide(scale_dtype, shape):
    rng = np.random.default_rng(shape[0])
    data = rng.standard_normal(shape)
    scale = np.concatenate([[0], rng.integers(1, 100, shape[0] - 1)]).astype(scale_dtype)
    check_reference("SquareRootDivide", [data.astype(np.float32), scale], ref_square_root_divide)
    report = check_op_gradient(make_op("SquareRootDivide", ["D", "S"], ["Y"]), [data, scale], 0)
    assert report.ok, report


def test_row_scale_errors_and_inference():
    mat = np.zeros((3, 2), np.float32)
    with pytest.raises(ERRORS, match=r"mat has N=3 rows but w is \[2\]"):
        run_op("RowMul", [mat, np.zeros(2, np.float32)])
    with pytest.raises(ERRORS, match="scale must not be negative"):
        run_op("SquareRootDivide", [mat, np.array([1, -1, 2], np.int32)])
    with pytest.raises(ERRORS, match=r"scale's first dim must be 3"):
        run_op("SquareRootDivide", [mat, np.ones(2, np.int32)])
    with pytest.raises(ERRORS, match="scale must be float, int32 or int64, got int8"):
        run_op("SquareRootDivide", [mat, np.ones(3, np.int8)])
    with pytest.raises(ERRORS, match="0-d"):
        run_op("ReduceTailSum", [np.float32(1)])
    with pytest.raises(ERRORS, match="mat must be float, got int32"):
        run_op("RowMul", [np.zeros((3, 2), np.int32), np.zeros(3, np.int32)])
    assert infer("RowMul", [(3, 2), (3, 1)]) == [TensorInfo((3, 2))]
    assert infer("ReduceTailSum", [(3, 2, 2)]) == [TensorInfo((3,))]
    assert infer("SquareRootDivide", [(3, 2), TensorInfo((3,), "int64")]) == [TensorInfo((3, 2))]
    with pytest.raises(ShapeError, match="w must hold 3 elements"):
        infer("RowMul", [(3, 2), (2,)])
