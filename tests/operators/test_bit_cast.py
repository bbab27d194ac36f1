"""bit_cast family (BitCast): the kernel against byte-level references written here,
shape inference against the kernel, and errors."""
import struct

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

# struct's little-endian codes: the reference reads and writes bytes itself
CODES = {"float32": "f", "int32": "i", "uint32": "I", "float64": "d", "int64": "q", "uint64": "Q",
         "int16": "h", "uint16": "H", "float16": "e", "int8": "b", "uint8": "B", "bool": "?"}


def bit_cast_reference(x, to):
    raw = b"".join(struct.pack("<" + CODES[x.dtype.name], item) for item in x.ravel().tolist())
    values = [item[0] for item in struct.iter_unpack("<" + CODES[to], raw)]
    return np.array(values, dtype=to).reshape(x.shape)


CASES = [(np.array([1.0, -2.5, 3.75], np.float32), "int32"),
         (np.array([[1065353216, -1071644672]], np.int32), "float32"),
         (np.array([1.0, -2.5], np.float64), "int64"),
         (np.array([4294967295, 2147483648, 7], np.uint32), "int32"),
         (np.array([-1, -128, 127, 0], np.int8), "uint8"),
         (np.array([1, 32768, 65535], np.uint16), "int16"),
         (np.array([1.5, -0.0], np.float16), "uint16"),
         (np.array([True, False, True]), "uint8"),
         (np.array(1.0, np.float32), "int32"),
         (np.array([2**63 - 1, 5], np.int64), "uint64")]


@pytest.mark.parametrize("x, to", CASES, ids=[f"{x.dtype.name}-{to}" for x, to in CASES])
def test_bit_cast(x, to):
    check_reference("BitCast", [x], bit_cast_reference, {"to": to})


def test_no_gradient():
    with pytest.raises(GradientError, match="one should not call gradient for operator BitCast"):
        GetGradientForOp(make_op("BitCast", ["x"], ["y"], {"to": "int32"}), ["y_grad"])


def test_inference():
    got = run_op("BitCast", [np.ones((2, 3), np.float64)], {"to": "uint64"})
    assert infer("BitCast", [TensorInfo((2, 3), "float64")], to="uint64") == [TensorInfo(got[0].shape, got[0].dtype.name)]


ERRORS = [(np.ones(2, np.float32), "int64", "float32 is 32 bits wide and int64 64: BitCast needs types of one width"),
          (np.ones(2, np.complex64), "int64", "input must be a numeric or bool tensor, got complex64")]


@pytest.mark.parametrize("x, to, message", ERRORS)
def test_errors_name_the_types(x, to, message):
    with pytest.raises(ShapeError, match=message):
        infer("BitCast", [TensorInfo(x.shape, x.dtype.name)], to=to)
    with pytest.raises((OpFailure, NetError), match=rf"\(BitCast\)(:| failed:) {message}"):
        run_op("BitCast", [x], {"to": to})
