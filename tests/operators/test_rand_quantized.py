"""rand_quantized family (FloatToFusedRandRowwiseQuantized, FusedRandRowwiseQuantizedToFloat):
the deterministic encoding against a per-element loop reference of the fused row
layout, the decoder against a loop decoder, the stochastic rounding's error bound
and unbiasedness, inference and errors."""
import struct

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(11)
FAILS = (OpFailure, NetError)


def encode_reference(x, bitwidth, **_):
    rows, columns = x.shape
    per_byte = 8 // bitwidth
    segment = (columns + per_byte - 1) // per_byte
    out = np.zeros((rows, 10 + segment), np.uint8)
    for r in range(rows):
        lo, hi = np.float32(x[r].min()), np.float32(x[r].max())
        out[r, 0], out[r, 1] = bitwidth, (per_byte - columns % per_byte) % per_byte
        out[r, 2:10] = list(struct.pack("<ff", lo, hi))
        gap = np.float32((hi - lo) / np.float32(2**bitwidth - 1))
        inverse = np.float32(1.0 / (float(gap) + 1e-8))
        for c in range(columns):
            level = int(np.rint(min(max(np.float32((x[r, c] - lo) * inverse), 0), 2**bitwidth - 1)))
            out[r, 10 + c % segment] |= level << (bitwidth * (c // segment))
    return [out]


def decode_reference(y):
    bitwidth, tail = int(y[0, 0]), int(y[0, 1])
    segment = y.shape[1] - 10
    columns = segment * (8 // bitwidth) - tail
    out = np.zeros((y.shape[0], columns), np.float32)
    for r in range(y.shape[0]):
        lo, hi = struct.unpack("<ff", bytes(y[r, 2:10]))
        gap = np.float32(np.float32(hi - lo) / np.float32(2**bitwidth - 1) + np.float32(1e-8))
        for c in range(columns):
            level = (int(y[r, 10 + c % segment]) >> (bitwidth * (c // segment))) & (2**bitwidth - 1)
            out[r, c] = np.float32(level) * gap + np.float32(lo)
    return [out]


@pytest.mark.parametrize("bitwidth", [1, 2, 4, 8])
@pytest.mark.parametrize("shape", [(3, 5), (2, 8), (1, 1), (4, 17)])
def test_nearest_encoding_and_decoding(bitwidth, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    args = {"bitwidth": bitwidth, "random": 0}
    (y,) = check_reference("FloatToFusedRandRowwiseQuantized", [x], lambda x, **a: encode_reference(x, bitwidth),
                           args)
    (decoded,) = check_reference("FusedRandRowwiseQuantizedToFloat", [y], decode_reference)
    gap = (x.max(1, keepdims=True) - x.min(1, keepdims=True)) / (2**bitwidth - 1) + 1e-8
    assert (np.abs(decoded - x) <= gap / 2 + 1e-6).all()


def test_the_documented_example():
    x = np.array([[0.3, -1.4, -0.6, 0.9, 1.0]], np.float32)
    (y,) = run_op("FloatToFusedRandRowwiseQuantized", [x], {"bitwidth": 2, "random": 0})
    assert list(y[0, :2]) == [2, 3] and list(y[0, 10:]) == [2 | 1 << 2 | 3 << 4, 0 | 3 << 2]
    assert struct.unpack("<ff", bytes(y[0, 2:10])) == (np.float32(-1.4), np.float32(1.0))


@pytest.mark.parametrize("bitwidth", [1, 2, 4, 8])
def test_stochastic_rounding_is_bounded_and_unbiased(bitwidth):
    x = RNG.standard_normal((2, 6)).astype(np.float32)
    gap = (x.max(1, keepdims=True) - x.min(1, keepdims=True)) / (2**bitwidth - 1) + 1e-8
    x_batch = np.tile(x, (2000, 1))  # each row encoded 2000 times in one run
    (y,) = run_op("FloatToFusedRandRowwiseQuantized", [x_batch], {"bitwidth": bitwidth})
    (decoded,) = run_op("FusedRandRowwiseQuantizedToFloat", [y])
    tiled_gap = np.tile(gap, (2000, 1))
    assert (np.abs(decoded - x_batch) <= tiled_gap + 1e-6).all()
    mean = decoded.reshape(2000, 2, 6).mean(axis=0)
    assert (np.abs(mean - x) <= 0.05 * gap + 1e-3).all()


def test_random_draws_follow_the_seed():
    x = RNG.standard_normal((3, 9)).astype(np.float32)
    first = run_op("FloatToFusedRandRowwiseQuantized", [x], {"bitwidth": 2}, seed=4)[0]
    assert np.array_equal(first, run_op("FloatToFusedRandRowwiseQuantized", [x], {"bitwidth": 2}, seed=4)[0])


def test_inference_and_no_gradient():
    assert infer("FloatToFusedRandRowwiseQuantized", [(3, 5)], bitwidth=2) == [TensorInfo((3, 12), "uint8")]
    assert infer("FloatToFusedRandRowwiseQuantized", [(3, 16)]) == [TensorInfo((3, 26), "uint8")]
    assert infer("FusedRandRowwiseQuantizedToFloat", [TensorInfo((3, 12), "uint8")]) == [None]
    grad_ops, _ = GetGradientForOp(make_op("FloatToFusedRandRowwiseQuantized", ["X"], ["Y"]), ["Y_grad"])
    assert grad_ops == []


@pytest.mark.parametrize("op_type, value, args, message", [
    ("FloatToFusedRandRowwiseQuantized", np.zeros((2, 3), np.float32), {"bitwidth": 3}, "bitwidth must be 1, 2, 4 or 8"),
    ("FloatToFusedRandRowwiseQuantized", np.zeros(3, np.float32), {}, "float32 matrix"),
    ("FloatToFusedRandRowwiseQuantized", np.zeros((2, 3)), {}, "float32 matrix"),
    ("FusedRandRowwiseQuantizedToFloat", np.zeros((2, 9), np.uint8), {}, "at least one row of 10 header bytes"),
    ("FusedRandRowwiseQuantizedToFloat", np.zeros((2, 12), np.float32), {}, "uint8 matrix"),
])
def test_shape_errors(op_type, value, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(value.shape, value.dtype.name)], **args)
    with pytest.raises(FAILS, match=message):
        run_op(op_type, [value], args)


def test_decoder_refuses_bad_headers():
    y = run_op("FloatToFusedRandRowwiseQuantized", [np.ones((2, 5), np.float32)], {"bitwidth": 2})[0]
    bad = y.copy()
    bad[:, 0] = 3
    with pytest.raises(FAILS, match="bitwidth must be 1, 2, 4 or 8, got 3"):
        run_op("FusedRandRowwiseQuantizedToFloat", [bad])
    bad = y.copy()
    bad[1, 1] = 0
    with pytest.raises(FAILS, match="first row's bitwidth 2 and tail 3"):
        run_op("FusedRandRowwiseQuantizedToFloat", [bad])
