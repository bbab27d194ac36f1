"""Inference rules of the reduction family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import ShapeError, TensorInfo, infer_op

REDUCE = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max}


def infer(op_type, shapes, dtype="float32", **args):
    """Output infos of a one-output op_type on inputs of these shapes (None = unknown)."""
    op = caffe2_pb2.OperatorDef(type=op_type, input=[f"x{i}" for i in range(len(shapes))],
                                output=["y"])
    op.arg.extend(make_argument(name, value) for name, value in args.items())
    infos = [None if s is None else TensorInfo(tuple(s), dtype) for s in shapes]
    return infer_op(op, infos)


@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("dims, axes", [((2, 3, 4), [1]), ((2, 3, 4), [0, -1]),
                                        ((2, 3, 4), None), ((5,), [0])])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_matches_numpy(op_type, dims, axes, keepdims):
    args = {"keepdims": keepdims} if axes is None else {"keepdims": keepdims, "axes": axes}
    expected = REDUCE[op_type](np.zeros(dims), axis=None if axes is None else tuple(axes),
                               keepdims=bool(keepdims)).shape
    assert infer(op_type, [dims], **args) == [TensorInfo(expected, "float32")]


def test_reduce_keeps_dims_by_default_and_handles_unknown():
    assert infer("ReduceSum", [(2, 3)], axes=[1])[0].shape == (2, 1)
    assert infer("ReduceMean", [None], axes=[1]) == [None]


@pytest.mark.parametrize("op_type", REDUCE)
def test_reduce_axis_out_of_range(op_type):
    with pytest.raises(ShapeError, match="axes entry 3 is out of range for rank 3"):
        infer(op_type, [(2, 3, 4)], axes=[3])


@pytest.mark.parametrize("op_type", [f"{name}Gradient" for name in REDUCE])
def test_reduce_gradient(op_type):
    x = (2, 3, 4)
    assert infer(op_type, [(2, 1, 4), x, (2, 1, 4)], axes=[1]) == [TensorInfo(x)]
    assert infer(op_type, [(2, 4), x, None], axes=[1], keepdims=0) == [TensorInfo(x)]
    assert infer(op_type, [None, None, (2, 1, 4)], axes=[1]) == [None]
    with pytest.raises(ShapeError, match=r"dY is \[2, 4\] but Y is \[2, 1, 4\]"):
        infer(op_type, [(2, 4), x, (2, 1, 4)], axes=[1])
    with pytest.raises(ShapeError, match=r"Y is \[2, 3\] but reducing X"):
        infer(op_type, [None, x, (2, 3)], axes=[1])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but Y is \[2, 4\]"):
        infer(op_type, [(3,), x, None], axes=[1], keepdims=0)


@pytest.mark.parametrize("dims, axis", [((2, 3, 4), -1), ((2, 3, 4), 1), ((5,), 0)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_argmax_matches_numpy(dims, axis, keepdims):
    expected = np.argmax(np.zeros(dims), axis=axis, keepdims=bool(keepdims)).shape
    assert infer("ArgMax", [dims], axis=axis, keepdims=keepdims) == [
        TensorInfo(expected, "int64")]


def test_argmax_default_and_errors():
    assert infer("ArgMax", [(2, 3)]) == [TensorInfo((2, 1), "int64")]
    assert infer("ArgMax", [None]) == [None]
    with pytest.raises(ShapeError, match="axes entry 2 is out of range"):
        infer("ArgMax", [(2, 3)], axis=2)
