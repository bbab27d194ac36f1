"""The rowwise_quantized family: the fused 8-bit and 4/2-bit formats byte by byte
against a row-by-row reference written from Caffe2's description, the 8Bits
form, the SparseLengths reducers against de-quantize-then-reduce, inference,
errors, and Glow's Caffe2 nets that use them."""
import struct
from pathlib import Path

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

NETS = Path(__file__).resolve().parents[2].parent / "shared" / "glow_caffe2_nets"


def fused8_reference(x):
    """Row by row: codes, then float32 scale and bias as 8 little-endian bytes."""
    rows = []
    for row in x.astype(np.float32):
        lo, hi = np.float32(row.min()), np.float32(row.max())
        span = np.float32(hi - lo)
        inverse = np.float32(255) / np.float32(span + np.float32(1e-8))
        codes = [int(np.rint(np.float32(v - lo) * inverse)) for v in row]
        rows.append(bytes(codes) + struct.pack("<ff", span / np.float32(255), lo))
    return np.frombuffer(b"".join(rows), np.uint8).reshape(len(x), -1)


def nbit_reference(x, bits, divide=False):
    """Row by row: packed codes low bits first, then float16 scale and bias."""
    top, per = (1 << bits) - 1, 8 // bits
    rows = []
    for row in x.astype(np.float32):
        lo = np.float32(np.float16(row.min()))
        span = np.float32(row.max() - lo)
        scale = np.float32(1) if span == 0 else np.float32(np.float16(span / np.float32(top)))
        scale = np.float32(1) if scale == 0 else scale
        codes = [min(max(int(np.rint(np.float32(v - lo) / scale if divide else
                                     np.float32(v - lo) * (np.float32(1) / scale))), 0), top) for v in row]
        packed = [sum(codes[j + k] << (k * bits) for k in range(per)) for j in range(0, len(codes), per)]
        rows.append(bytes(packed) + np.array([scale, lo], "<f2").tobytes())
    return np.frombuffer(b"".join(rows), np.uint8).reshape(len(x), -1)


def dequantize_reference(table, bits):
    """scale * code + bias from the row bytes."""
    out = []
    for row in table:
        raw = row.tobytes()
        if bits == 8:
            scale, bias = struct.unpack("<ff", raw[-8:])
            codes = list(raw[:-8])
        else:
            scale, bias = (float(v) for v in np.frombuffer(raw[-4:], "<f2"))
            codes = [(b >> (k * bits)) & ((1 << bits) - 1) for b in raw[:-4] for k in range(8 // bits)]
        out.append(np.float32(scale) * np.array(codes, np.float32) + np.float32(bias))
    return np.array(out, np.float32).reshape(len(table), -1)


def matrix(seed, shape=(3, 8), dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


def test_fused8_round_trip():
    x = matrix(0)
    x[1] = 2.5  # a constant row: scale 0, codes 0
    table = check_reference("FloatToFused8BitRowwiseQuantized", [x], fused8_reference)[0]
    back = check_reference("Fused8BitRowwiseQuantizedToFloat", [table], lambda t: dequantize_reference(t, 8))[0]
    np.testing.assert_allclose(back, x, atol=(np.ptp(x, axis=1).max() / 255))
    half = check_reference("Fused8BitRowwiseQuantizedToHalfFloat", [table],
                           lambda t: dequantize_reference(t, 8).astype(np.float16))[0]
    assert half.dtype == np.float16
    check_reference("HalfFloatToFused8BitRowwiseQuantized", [x.astype(np.float16)],
                    lambda h: fused8_reference(h.astype(np.float32)))


@pytest.mark.parametrize("bits", [4, 2])
def test_nbit_round_trip(bits):
    x = matrix(bits, (4, 8))
    x[2] = -1.0
    table = check_reference(f"FloatToFused{bits}BitRowwiseQuantized", [x], lambda v: nbit_reference(v, bits))[0]
    assert table.shape == (4, 8 * bits // 8 + 4)
    back = check_reference(f"Fused{bits}BitRowwiseQuantizedToFloat", [table],
                           lambda t: dequantize_reference(t, bits))[0]
    assert np.abs(back - x).max() <= np.ptp(x, axis=1).max() / ((1 << bits) - 1)
    check_reference(f"Fused{bits}BitRowwiseQuantizedToHalf", [table],
                    lambda t: dequantize_reference(t, bits).astype(np.float16))
    check_reference(f"HalfToFused{bits}BitRowwiseQuantized", [x.astype(np.float16)],
                    lambda h: nbit_reference(h.astype(np.float32), bits, divide=True))


def greedy_reference(row, bits, n_bins=200, ratio=0.16):
    """Caffe2's GREEDY range search, one row, written out step by step."""
    top = np.float32((1 << bits) - 1)

    def loss(lo, hi):
        lo = np.float32(np.float16(lo))
        span = np.float32(hi - lo)
        scale = np.float32(1) if span == 0 else np.float32(np.float16(span / top))
        codes = np.clip(np.rint((row - lo) * (np.float32(1) / scale)), 0, top)
        return np.float32(np.sqrt(np.sum((row - (codes * scale + lo)) ** 2, dtype=np.float32)))

    lo, hi = np.float32(row.min()), np.float32(row.max())
    step = np.float32((hi - lo) / np.float32(n_bins))
    threshold = np.float32(int(n_bins * (1 - np.float32(ratio)))) * step
    best = (loss(lo, hi), lo, hi)
    cur_min, cur_max, cur_loss = lo, hi, best[0]
    while cur_min + threshold < cur_max:
        left, right = loss(cur_min + step, cur_max), loss(cur_min, cur_max - step)
        if cur_loss < left and cur_loss < right and cur_loss < best[0]:
            best = (cur_loss, cur_min, cur_max)
        if left < right:
            cur_min, cur_loss = np.float32(cur_min + step), left
        else:
            cur_max, cur_loss = np.float32(cur_max - step), right
    return best[1], best[2]


@pytest.mark.parametrize("bits", [4, 2])
def test_greedy_engine(bits):
    """engine=GREEDY narrows each row's range where that lowers the error (never raises it)."""
    from pycaffe2.executor import Workspace
    from pycaffe2.operators.rowwise_quantized import greedy_range
    x = np.random.default_rng(bits).random((6, 16)).astype(np.float32) ** 3  # skewed rows: clipping pays
    lo, hi = greedy_range(x, bits)
    for r in range(len(x)):
        assert (lo[r], hi[r]) == greedy_reference(x[r], bits)
    op = make_op(f"FloatToFused{bits}BitRowwiseQuantized", ["x"], ["q"])
    op.engine = "GREEDY"
    ws = Workspace("greedy")
    ws.FeedBlob("x", x)
    ws.RunOperatorOnce(op)
    greedy = run_op(f"Fused{bits}BitRowwiseQuantizedToFloat", [ws.FetchBlob("q")])[0]
    plain = run_op(f"Fused{bits}BitRowwiseQuantizedToFloat",
                   [run_op(f"FloatToFused{bits}BitRowwiseQuantized", [x])[0]])[0]
    errors = np.linalg.norm(greedy - x, axis=1), np.linalg.norm(plain - x, axis=1)
    assert (errors[0] <= errors[1] * 1.03).all() and (errors[0] < errors[1]).any()
    fake = run_op(f"FloatToFused{bits}BitFakeRowwiseQuantized", [x], {"engine": "GREEDY"})[0]  # the arg form
    np.testing.assert_allclose(dequantize_reference(fake, 8), greedy, atol=1e-6)


def test_nbit_keeps_leading_dims():
    x = matrix(5, (2, 3, 4))
    table = run_op("FloatToFused4BitRowwiseQuantized", [x])[0]
    assert table.shape == (2, 3, 6)
    np.testing.assert_array_equal(table.reshape(6, 6), nbit_reference(x.reshape(6, 4), 4))
    assert run_op("Fused4BitRowwiseQuantizedToFloat", [table])[0].shape == (2, 3, 4)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("source", ["Float", "Half"])
def test_fake_nbit_is_nbit_codes_in_the_8bit_format(bits, source):
    x = matrix(7, (3, 8), np.float16 if source == "Half" else np.float32)
    fake = run_op(f"{source}ToFused{bits}BitFakeRowwiseQuantized", [x])[0]
    real = nbit_reference(x.astype(np.float32), bits)
    assert fake.shape == (3, 16) and fake[:, :8].max() <= (1 << bits) - 1
    np.testing.assert_array_equal(dequantize_reference(fake, 8), dequantize_reference(real, bits))


def test_rowwise_8bits():
    x = matrix(8, (3, 2, 3))
    x[0] = 1.5
    codes, scale_bias = run_op("FloatToRowwiseQuantized8Bits", [x], num_outputs=2)
    flat = x.reshape(3, -1)
    lo, hi = flat.min(1), flat.max(1)
    assert codes.shape == x.shape and codes.dtype == np.uint8 and scale_bias.shape == (3, 2)
    np.testing.assert_allclose(scale_bias[1:], np.stack([(hi - lo) / 255, lo], 1)[1:], rtol=1e-6)
    assert scale_bias[0].tolist() == [1.0, 1.5] and not codes[0].any()
    expected = np.floor((flat[1:] - lo[1:, None]) / scale_bias[1:, :1] + 0.5)  # half away from zero
    np.testing.assert_array_equal(codes.reshape(3, -1)[1:], expected)
    check_reference("Rowwise8BitQuantizedToFloat", [codes, scale_bias],
                    lambda c, sb: (c.reshape(3, -1) * sb[:, :1] + sb[:, 1:]).reshape(c.shape))


# -- reducers ----------------------------------------------------------------------------------------

def reduce_reference(values, indices, lengths, weights=None, mean=False, mapping=None):
    out = np.zeros((len(lengths), *values.shape[1:]), np.float32)
    line = 0
    for k, length in enumerate(lengths):
        for _ in range(length):
            row = indices[line] if mapping is None else mapping[indices[line]]
            if row >= 0:
                out[k] += values[row] * (1 if weights is None else weights[line])
            line += 1
        if mean and length:
            out[k] /= length
    return out


INDICES, LENGTHS = np.array([2, 0, 2, 3, 1], np.int64), np.array([3, 0, 2], np.int32)
WEIGHTS = np.array([0.5, 2.0, -1.0, 1.5, 0.25], np.float32)


@pytest.mark.parametrize("reducer", ["Sum", "WeightedSum", "Mean"])
@pytest.mark.parametrize("fmt, quantize, bits", [
    ("Fused8BitRowwise", "FloatToFused8BitRowwiseQuantized", 8),
    ("Fused4BitRowwise", "FloatToFused4BitRowwiseQuantized", 4),
    ("Fused2BitRowwise", "FloatToFused2BitRowwiseQuantized", 2),
])
def test_fused_reducers(reducer, fmt, quantize, bits):
    table = run_op(quantize, [matrix(9, (4, 8))])[0]
    values = dequantize_reference(table, bits)
    weighted = reducer == "WeightedSum"
    inputs = [table] + ([WEIGHTS] if weighted else []) + [INDICES.astype(np.int32), LENGTHS]
    check_reference(f"SparseLengths{reducer}{fmt}", inputs,
                    lambda *a: reduce_reference(values, INDICES, LENGTHS, WEIGHTS if weighted else None,
                                                reducer == "Mean"))


@pytest.mark.parametrize("reducer", ["Sum", "WeightedSum", "Mean", "WeightedMean"])
def test_8bits_reducers(reducer):
    codes, scale_bias = run_op("FloatToRowwiseQuantized8Bits", [matrix(10, (4, 3, 2))], num_outputs=2)
    values = run_op("Rowwise8BitQuantizedToFloat", [codes, scale_bias])[0]
    weighted = "Weighted" in reducer
    inputs = [codes] + ([WEIGHTS] if weighted else []) + [INDICES, LENGTHS, scale_bias]
    check_reference(f"SparseLengths{reducer}8BitsRowwise", inputs,
                    lambda *a: reduce_reference(values, INDICES, LENGTHS, WEIGHTS if weighted else None,
                                                "Mean" in reducer))


@pytest.mark.parametrize("reducer", ["Sum", "WeightedSum", "Mean"])
@pytest.mark.parametrize("bits", [8, 4, 2])
def test_rowwise_sparse_reducers(reducer, bits):
    quantize = "FloatToFused8BitRowwiseQuantized" if bits == 8 else f"FloatToFused{bits}BitRowwiseQuantized"
    full = run_op(quantize, [matrix(11, (4, 8))])[0]
    mapping = np.array([0, -1, 1, -1], np.int32)  # rows 1 and 3 pruned
    pruned = full[[0, 2]]
    values = dequantize_reference(pruned, bits)
    weighted = reducer == "WeightedSum"
    extra = [WEIGHTS] if weighted else []
    op_type = f"SparseLengths{reducer}{bits}BitRowwiseSparse"
    check_reference(op_type, [pruned, *extra, INDICES, LENGTHS, mapping],
                    lambda *a: reduce_reference(values, INDICES, LENGTHS, WEIGHTS if weighted else None,
                                                reducer == "Mean", mapping))
    unpruned = run_op(op_type, [full, *extra, INDICES, LENGTHS, np.array([0], np.int32)])[0]  # [0]: no mapping
    np.testing.assert_allclose(unpruned, reduce_reference(dequantize_reference(full, bits), INDICES, LENGTHS,
                                                          WEIGHTS if weighted else None, reducer == "Mean"),
                               rtol=1e-5, atol=1e-5)


def test_gather_fused8():
    table = run_op("FloatToFused8BitRowwiseQuantized", [matrix(12, (4, 5))])[0]
    check_reference("GatherFused8BitRowwise", [table, INDICES], lambda t, i: dequantize_reference(t, 8)[i])


def test_nbit_and_fake_tables_reduce_alike():
    x = matrix(13, (5, 8))
    for bits in (4, 2):
        real = run_op(f"FloatToFused{bits}BitRowwiseQuantized", [x])[0]
        fake = run_op(f"FloatToFused{bits}BitFakeRowwiseQuantized", [x])[0]
        for reducer in ("Sum", "Mean"):
            a = run_op(f"SparseLengths{reducer}Fused{bits}BitRowwise", [real, INDICES, LENGTHS])[0]
            b = run_op(f"SparseLengths{reducer}Fused8BitRowwise", [fake, INDICES, LENGTHS])[0]
            np.testing.assert_array_equal(a, b)


# -- inference and errors ----------------------------------------------------------------------------

def u8(*shape):
    return TensorInfo(shape, "uint8")


def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("FloatToFused8BitRowwiseQuantized", [(3, 5)])[0] == u8(3, 13)
    assert infer("HalfToFused2BitRowwiseQuantized", [TensorInfo((2, 3, 8), "float16")])[0] == u8(2, 3, 6)
    assert infer("Fused4BitRowwiseQuantizedToHalf", [u8(3, 8)])[0] == TensorInfo((3, 8), "float16")
    assert infer("FloatToRowwiseQuantized8Bits", [(3, 2, 2)], 2) == [u8(3, 2, 2), TensorInfo((3, 2))]
    assert infer("SparseLengthsWeightedSumFused8BitRowwise", [u8(9, 12), (5,), i32(5), i32(2)])[0].shape == (2, 4)
    assert infer("SparseLengthsMean8BitsRowwise", [u8(9, 3, 2), i32(5), i32(2), (9, 2)])[0].shape == (2, 3, 2)
    assert infer("SparseLengthsSum2BitRowwiseSparse", [u8(3, 6), i32(5), i32(2), i32(9)])[0].shape == (2, 8)
    assert infer("GatherFused8BitRowwise", [u8(9, 12), i32(7)])[0].shape == (7, 4)


@pytest.mark.parametrize("op_type, shapes, message", [
    ("FloatToFused8BitRowwiseQuantized", [(3, 2, 2)], "the input must be a float32 matrix"),
    ("FloatToFused4BitRowwiseQuantized", [(3, 5)], "4-bit quantization needs a multiple of 2 columns"),
    ("Fused2BitRowwiseQuantizedToFloat", [u8(3, 3)], "at least 4 columns"),
    ("SparseLengthsSumFused8BitRowwise", [u8(3, 8), i32(2), i32(1)], "more than 8 columns"),
    ("SparseLengthsSum8BitsRowwise", [u8(3, 4), i32(2), i32(1), (4, 2)], "one row per row of DATA"),
    ("SparseLengthsWeightedSumFused4BitRowwise", [u8(3, 8), (3,), i32(2), i32(1)], "one weight per entry"),
    ("SparseLengthsSum4BitRowwiseSparse", [u8(3, 8), i32(2), i32(1), (3,)], "compressed_indices_mapping must be"),
])
def test_inference_errors(op_type, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes)


@pytest.mark.parametrize("op_type, inputs, message", [
    ("SparseLengthsSumFused8BitRowwise", [np.zeros((2, 12), np.uint8), np.array([2]), np.array([1], np.int32)],
     r"INDICES\[0\] = 2 is out of range"),
    ("SparseLengthsMeanFused4BitRowwise", [np.zeros((2, 6), np.uint8), np.array([1]), np.array([2], np.int32)],
     r"the sum of LENGTHS \(2\) must equal"),
    ("SparseLengthsSum4BitRowwiseSparse", [np.zeros((1, 6), np.uint8), np.array([1]), np.array([1], np.int32),
                                           np.array([0, 3], np.int32)], "names row 3, out of range"),
    ("SparseLengthsSum8BitsRowwise", [np.zeros((2, 3), np.uint8), np.array([0, -1]), np.array([2], np.int32),
                                      np.zeros((2, 2), np.float32)], "out of range"),
])
def test_run_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


# -- Glow's Caffe2 nets ------------------------------------------------------------------------------

GLOW_NETS = {  # predict net -> its init net (which fills data, weights, scale_bias)
    "fused_rowwise_quantized_sparse_lengths_sum_predict_net.pbtxt":
        "fused_rowwise_quantized_sparse_lengths_sum_init_net.pbtxt",
    "fused_rowwise_quantized_sparse_lengths_sum_predict_net_length1.pbtxt":
        "fused_rowwise_quantized_sparse_lengths_sum_init_net.pbtxt",
    "fused_rowwise_quantized_sparse_lengths_weighted_sum_predict_net.pbtxt":
        "fused_rowwise_quantized_sparse_lengths_weighted_sum_init_net.pbtxt",
    "fused_rowwise_quantized_sparse_lengths_weighted_sum_avg_length_predict_net.pbtxt":
        "fused_rowwise_quantized_sparse_lengths_weighted_sum_init_net.pbtxt",
    "4bit_fused_rowwise_quantized_sparse_lengths_sum_predict_net.pbtxt":
        "4bit_fused_rowwise_quantized_sparse_lengths_sum_init_net.pbtxt",
    "rowwise_quantized_sparse_lengths_sum_predict_net.pbtxt": "rowwise_quantized_sparse_lengths_sum_init_net.pbtxt",
    "rowwise_quantized_sparse_lengths_weighted_sum_predict_net.pbtxt":
        "rowwise_quantized_sparse_lengths_weighted_sum_init_net.pbtxt",
}


def init_blobs(init_net):
    """The init net's blobs, decoded here (GivenTensorByteStringToUInt8Fill is another family's op)."""
    blobs = {}
    for op in init_net.op:
        args = {arg.name: arg for arg in op.arg}
        shape = tuple(args["shape"].ints)
        if op.type == "GivenTensorByteStringToUInt8Fill":
            blobs[op.output[0]] = np.frombuffer(args["values"].strings[0], np.uint8).reshape(shape).copy()
        else:
            blobs[op.output[0]] = np.array(args["values"].floats, np.float32).reshape(shape)
    return blobs


@pytest.mark.parametrize("name", sorted(GLOW_NETS))
def test_glow_nets_validate_and_run(name):
    """Each predict net checks clean given its init net's blobs (as shapes), and runs on them."""
    from pycaffe2 import netfile
    from pycaffe2.executor import Workspace
    from pycaffe2.schema.checker import check_model
    if not (NETS / name).is_file():
        pytest.skip("the shared glow_caffe2_nets folder is absent")
    predict = netfile.load_net(NETS / name)
    blobs = init_blobs(netfile.load_net(NETS / GLOW_NETS[name]))
    blobs["indices"] = np.array([2, 0, 1, 2, 0, 0, 0, 0], np.int64)
    blobs["lengths"] = np.array([2, 0, 2, 1, 3], np.int32)
    shapes = {k: (v.shape, v.dtype.name) for k, v in blobs.items()}
    checked = type(predict)()
    checked.CopyFrom(predict)  # the init net's blobs supplied as external inputs, with their shapes
    checked.external_input.extend(sorted(set(blobs) - set(predict.external_input)))
    problems = check_model(netfile.Model(checked, None, None, shapes))
    assert problems == []
    ws = Workspace("glow")
    for key, value in blobs.items():
        ws.FeedBlob(key, value)
    ws.RunNetOnce(predict)
    result = ws.FetchBlob("result")
    op = predict.op[0]
    data = blobs["data"]
    if "8BitsRowwise" in op.type:
        sb = blobs[op.input[-1]]
        values = data.astype(np.float32) * sb[:, :1] + sb[:, 1:]
    else:
        values = dequantize_reference(data, 4 if "4Bit" in op.type else 8)
    weights = blobs["weights"] if "Weighted" in op.type else None
    np.testing.assert_allclose(result, reduce_reference(values, blobs["indices"], blobs["lengths"], weights),
                               rtol=1e-5, atol=1e-5)


# Every op of the family, by name (each is exercised above by a name built from its parts).
FAMILY = [
    "FloatToFused8BitRowwiseQuantized", "HalfFloatToFused8BitRowwiseQuantized",
    "Fused8BitRowwiseQuantizedToFloat", "Fused8BitRowwiseQuantizedToHalfFloat",
    "FloatToFused4BitRowwiseQuantized", "HalfToFused4BitRowwiseQuantized", "Fused4BitRowwiseQuantizedToFloat",
    "Fused4BitRowwiseQuantizedToHalf", "FloatToFused4BitFakeRowwiseQuantized",
    "HalfToFused4BitFakeRowwiseQuantized", "FloatToFused2BitRowwiseQuantized",
    "HalfToFused2BitRowwiseQuantized", "Fused2BitRowwiseQuantizedToFloat", "Fused2BitRowwiseQuantizedToHalf",
    "FloatToFused2BitFakeRowwiseQuantized", "HalfToFused2BitFakeRowwiseQuantized",
    "SparseLengthsSumFused8BitRowwise", "SparseLengthsWeightedSumFused8BitRowwise",
    "SparseLengthsMeanFused8BitRowwise", "SparseLengthsSumFused4BitRowwise",
    "SparseLengthsWeightedSumFused4BitRowwise", "SparseLengthsMeanFused4BitRowwise",
    "SparseLengthsSumFused2BitRowwise", "SparseLengthsWeightedSumFused2BitRowwise",
    "SparseLengthsMeanFused2BitRowwise", "FloatToRowwiseQuantized8Bits", "Rowwise8BitQuantizedToFloat",
    "SparseLengthsSum8BitsRowwise", "SparseLengthsWeightedSum8BitsRowwise", "SparseLengthsMean8BitsRowwise",
    "SparseLengthsWeightedMean8BitsRowwise", "GatherFused8BitRowwise", "SparseLengthsSum8BitRowwiseSparse",
    "SparseLengthsWeightedSum8BitRowwiseSparse", "SparseLengthsMean8BitRowwiseSparse",
    "SparseLengthsSum4BitRowwiseSparse", "SparseLengthsWeightedSum4BitRowwiseSparse",
    "SparseLengthsMean4BitRowwiseSparse", "SparseLengthsSum2BitRowwiseSparse",
    "SparseLengthsWeightedSum2BitRowwiseSparse", "SparseLengthsMean2BitRowwiseSparse",
]


def test_the_family_is_these_ops():
    from pycaffe2.operators.registry import load_kernels
    from pycaffe2.schema import all_schemas
    kernels = load_kernels()
    assert sorted(t for t, s in all_schemas().items() if s.family == "rowwise_quantized") == sorted(FAMILY)
    assert all(t in kernels and get_schema(t).gradient in ("none", "not_implemented") for t in FAMILY)
