"""math_bitwise family: BitShift and BitwiseNot against references written here
(Python's unbounded integers, reduced to the type's width), inference and error rows."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

INTEGER_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def shift_reference(direction):
    def reference(x, y, **_):
        x, y = np.broadcast_arrays(x, y)
        bits = x.dtype.itemsize * 8
        out = []
        for a, n in zip(x.ravel().tolist(), y.ravel().tolist()):
            n %= 1 << bits  # the count read as unsigned
            if direction == "LEFT":
                value = (a << n) if n < bits else 0
            else:
                value = (a >> n) if n < bits else (-1 if a < 0 else 0)
            value &= (1 << bits) - 1  # wrap to the width, then back to the type's sign
            if x.dtype.kind == "i" and value >= 1 << (bits - 1):
                value -= 1 << bits
            out.append(value)
        return np.array(out, x.dtype).reshape(x.shape)
    return reference


@pytest.mark.parametrize("dtype", INTEGER_TYPES)
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bit_shift(dtype, direction):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min, -1000), min(info.max, 1000), (3, 4), endpoint=True).astype(dtype)
    bits = np.dtype(dtype).itemsize * 8
    y = rng.integers(0, bits + 3, (4,)).astype(dtype)
    (z,) = check_reference("BitShift", [x, y], shift_reference(direction), {"direction": direction})
    assert z.dtype == dtype and z.shape == (3, 4)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bit_shift_edges(direction):
    x = np.array([-8, 4, -1, 64, -128, 1], np.int8)
    y = np.array([8, 9, -1, 1, 7, 127], np.int8)  # width and more, negative counts, overflow
    check_reference("BitShift", [x, y], shift_reference(direction), {"direction": direction})


def test_bit_shift_errors():
    args = {"direction": "LEFT"}
    with pytest.raises(OpFailure, match="X is int32 but Y is int64"):
        run_op("BitShift", [np.ones(2, np.int32), np.ones(2, np.int64)], args)
    with pytest.raises(OpFailure, match=r"X is float32 \[2\], must be an integer tensor"):
        run_op("BitShift", [np.ones(2, np.float32), np.ones(2, np.float32)], args)
    with pytest.raises(ShapeError, match=r"X is \[2\] and Y is \[3\]: dims 2 and 3 do not broadcast"):
        infer("BitShift", [(2,), (3,)], dtype="uint8", **args)
    with pytest.raises((OpFailure, NetError, ValueError), match="direction"):
        run_op("BitShift", [np.ones(2, np.int32), np.ones(2, np.int32)], {"direction": "UP"})
    assert infer("BitShift", [(2, 1), (3,)], dtype="uint32", **args) == [TensorInfo((2, 3), "uint32")]
    assert infer("BitShift", [None, (3,)], dtype="uint32", **args) == [None]


@pytest.mark.parametrize("dtype", INTEGER_TYPES + [np.bool_])
def test_bitwise_not(dtype):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    if dtype is np.bool_:
        reference = np.logical_not
    else:
        bits = np.dtype(dtype).itemsize * 8
        reference = lambda x: (((1 << bits) - 1) - x.astype(np.uint64)).astype(dtype)
    (y,) = check_reference("BitwiseNot", [x], reference)
    assert y.dtype == dtype
    assert infer("BitwiseNot", [(3, 4)], dtype=np.dtype(dtype).name) == [TensorInfo((3, 4), np.dtype(dtype).name)]


def test_bitwise_not_errors_and_no_gradients():
    with pytest.raises(OpFailure, match=r"X is float32 \[2\], must be an integer or bool tensor"):
        run_op("BitwiseNot", [np.ones(2, np.float32)])
    with pytest.raises(ShapeError, match="must be an integer or bool tensor"):
        infer("BitwiseNot", [(2,)])
    for op_type, args in (("BitwiseNot", {}), ("BitShift", {"direction": "LEFT"})):
        with pytest.raises(GradientError):
            GetGradientForOp(make_op(op_type, ["X", "Y"][:1 + (op_type == "BitShift")], ["Z"], args), ["Z_grad"])
