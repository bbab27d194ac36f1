"""NumPy kernels of the rowwise_quantized family: fused 8-bit and 4/2-bit rowwise
quantization (and the Fake N-bit form in the 8-bit layout), the separate-scale
8Bits form, and the SparseLengths{Sum,WeightedSum,Mean} reducers on those tables.

Rounding is Caffe2's: lrintf (half to even, np.rint) on float32 for the fused
formats, half away from zero (Eigen's round) for the 8Bits form; float16 scales
and biases round to nearest even. A reducer de-quantizes the rows it gathers
(scale * code + bias in float32) and sums them as SparseLengthsSum does, so the
fused 8-bit, Fake N-bit and N-bit tables of the same codes give the same sums.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.lengths_reducer import Rows, checked_indices, reduce_segments, segment_ids
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.rowwise_quantized import (
    check_reducer,
    eight_bits,
    fmt,
    fused8,
    nbit,
    reducer_inputs,
)


class _View:
    """The little of an OpView the shared rules read."""

    def __init__(self, op_type: str):
        self.type = op_type



def _check(rule, op_type: str, *inputs):
    return rule(_View(op_type), [info_of(v) for v in inputs])


def _row_range(x):
    """Each row's min and max (float32); empty rows give 0."""
    if x.shape[1] == 0:
        zeros = np.zeros(x.shape[0], np.float32)
        return zeros, zeros
    return x.min(axis=1), x.max(axis=1)


def _codes(values, top: int) -> np.ndarray:
    """lrintf into [0, top] as uint8 (NaN gives 0)."""
    return np.nan_to_num(np.clip(np.rint(values), 0, top)).astype(np.uint8)


def _pair(scale, bias, dtype) -> np.ndarray:
    """[rows, 2] scale and bias of `dtype`, as little-endian bytes [rows, 2 * itemsize]."""
    pair = np.stack([scale, bias], axis=1).astype(np.dtype(dtype).newbyteorder("<"))
    return pair.view(np.uint8).reshape(len(pair), -1)


# -- fused 8-bit -------------------------------------------------------------------------------------

def quantize_fused8(x) -> np.ndarray:
    """FloatToFused8BitRowwiseQuantized of a float32 matrix."""
    lo, hi = _row_range(x)
    span = (hi - lo).astype(np.float32)
    with np.errstate(all="ignore"):
        inverse = np.float32(255.0) / (span + np.float32(1e-8))
        codes = _codes((x - lo[:, None]) * inverse[:, None], 255)
    return np.concatenate([codes, _pair(span / np.float32(255.0), lo, np.float32)], axis=1)


def _scale_bias(table, form) -> tuple[np.ndarray, np.ndarray]:
    """The float32 scale and bias at the end of each fused row."""
    tail = np.ascontiguousarray(table[..., table.shape[-1] - form.tail:])
    pair = tail.view("<f4" if form.tail == 8 else "<f2").astype(np.float32)
    return pair[..., 0], pair[..., 1]


def _unpack(table, form) -> np.ndarray:
    """The codes of each fused row, one uint8 per value."""
    packed = table[..., :table.shape[-1] - form.tail]
    if form.per_byte == 1:
        return packed
    shifts = np.arange(form.per_byte, dtype=np.uint8) * form.bits
    codes = (packed[..., None] >> shifts) & np.uint8((1 << form.bits) - 1)
    return codes.reshape(*packed.shape[:-1], packed.shape[-1] * form.per_byte)


def fused_table_columns(table, form) -> int:
    """The number of values in each row of a fused table."""
    return (table.shape[-1] - form.tail) * form.per_byte


def dequantize(table, form) -> np.ndarray:
    """scale * code + bias (float32) of a fused table."""
    scale, bias = _scale_bias(table, form)
    return _unpack(table, form).astype(np.float32) * scale[..., None] + bias[..., None]


@register_cpu("FloatToFused8BitRowwiseQuantized", "HalfFloatToFused8BitRowwiseQuantized")
def float_to_fused8(x):
    _check(fused8, "HalfFloatToFused8BitRowwiseQuantized" if x.dtype == np.float16 else
           "FloatToFused8BitRowwiseQuantized", x)
    return quantize_fused8(x.astype(np.float32))


@register_cpu("Fused8BitRowwiseQuantizedToFloat")
def fused8_to_float(table):
    _check(fused8, "Fused8BitRowwiseQuantizedToFloat", table)
    return dequantize(table, fmt("Fused8BitRowwiseQuantizedToFloat"))


@register_cpu("Fused8BitRowwiseQuantizedToHalfFloat")
def fused8_to_half(table):
    _check(fused8, "Fused8BitRowwiseQuantizedToHalfFloat", table)
    return dequantize(table, fmt("Fused8BitRowwiseQuantizedToHalfFloat")).astype(np.float16)


# -- fused 4/2-bit and the Fake forms ---------------------------------------------------------------

def _half(values) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


def _greedy_loss(x, xmin, xmax, top) -> np.ndarray:
    """The L2 error of each row quantized over [xmin, xmax] (float16 bias and scale)."""
    xmin = _half(xmin)
    span = xmax - xmin
    scale = np.where(span == 0, np.float32(1), _half(span / np.float32(top)))
    scale = np.where(scale == 0, np.float32(1), scale)
    codes = np.clip(np.rint((x - xmin[:, None]) * (np.float32(1) / scale)[:, None]), 0, top)
    error = x - (codes * scale[:, None] + xmin[:, None])
    return np.sqrt(np.sum(error * error, axis=1, dtype=np.float32))


def greedy_range(x, bits: int, n_bins: int = 200, ratio: float = 0.16):
    """Caffe2's GREEDY engine: from [min, max], step one bin at a time off whichever end
    lowers the error more, down to (1 - ratio) of the bins, and keep the local optimum
    with the lowest error (else [min, max]). Rows step together; NaN rows stay put."""
    top = np.float32((1 << bits) - 1)
    lo, hi = _row_range(x)
    step = (hi - lo) / np.float32(n_bins)
    threshold = np.float32(int(n_bins * (1 - np.float32(ratio)))) * step
    best_min, best_max = lo.copy(), hi.copy()
    best_loss = _greedy_loss(x, lo, hi, top)
    cur_min, cur_max, cur_loss = lo.copy(), hi.copy(), best_loss.copy()
    with np.errstate(all="ignore"):
        for _ in range(n_bins):  # the range shrinks a bin per round: ratio * n_bins rounds in exact arithmetic
            rows = np.nonzero(cur_min + threshold < cur_max)[0]
            if rows.size == 0:
                break
            xs, lo_r, hi_r, step_r, loss_r = x[rows], cur_min[rows], cur_max[rows], step[rows], cur_loss[rows]
            left = _greedy_loss(xs, lo_r + step_r, hi_r, top)
            right = _greedy_loss(xs, lo_r, hi_r - step_r, top)
            optimum = (loss_r < left) & (loss_r < right) & (loss_r < best_loss[rows])
            found = rows[optimum]
            best_loss[found], best_min[found], best_max[found] = loss_r[optimum], lo_r[optimum], hi_r[optimum]
            go_left = left < right
            cur_min[rows[go_left]] = (lo_r + step_r)[go_left]
            cur_max[rows[~go_left]] = (hi_r - step_r)[~go_left]
            cur_loss[rows] = np.where(go_left, left, right)
    return best_min, best_max


def nbit_params(x, bits: int, divide: bool, greedy: bool = False):
    """Caffe2's float16 bias (the min) and scale, and the codes, of each row of a float32
    matrix. `divide`: (x - bias) / scale, as Caffe2's float16 and GREEDY paths; else times
    the inverse scale, as its float32 path and the Fake ops."""
    top = (1 << bits) - 1
    lo, hi = greedy_range(x, bits) if greedy else _row_range(x)
    lo = _half(lo)
    span = (hi - lo).astype(np.float32)
    with np.errstate(all="ignore"):
        scale = np.where(span == 0, np.float32(1), _half(span / np.float32(top)))
        scale = np.where(scale == 0, np.float32(1), scale)
        inverse = np.float32(1) / scale
        shifted = x - lo[:, None]
        codes = _codes(shifted / scale[:, None] if divide else shifted * inverse[:, None], top)
    return lo, scale, codes


def _pack(codes, bits: int) -> np.ndarray:
    per = 8 // bits
    grouped = codes.reshape(codes.shape[0], -1, per).astype(np.uint8)
    shifts = np.arange(per, dtype=np.uint8) * bits
    return np.bitwise_or.reduce(grouped << shifts, axis=2).astype(np.uint8)


def _register_nbit(bits: int) -> None:
    form = fmt(f"Fused{bits}BitRowwiseQuantizedToFloat")

    @register_cpu(f"FloatToFused{bits}BitRowwiseQuantized", f"HalfToFused{bits}BitRowwiseQuantized")
    def quantize(x, *, engine):
        half, greedy = x.dtype == np.float16, engine == "GREEDY"
        _check(nbit, f"{'Half' if half else 'Float'}ToFused{bits}BitRowwiseQuantized", x)
        flat = x.reshape(-1, x.shape[-1]).astype(np.float32)
        lo, scale, codes = nbit_params(flat, bits, divide=half or greedy, greedy=greedy)
        out = np.concatenate([_pack(codes, bits), _pair(scale, lo, np.float16)], axis=1)
        return out.reshape(*x.shape[:-1], out.shape[-1])

    @register_cpu(f"Fused{bits}BitRowwiseQuantizedToFloat")
    def to_float(table):
        _check(nbit, f"Fused{bits}BitRowwiseQuantizedToFloat", table)
        return dequantize(table, form)

    @register_cpu(f"Fused{bits}BitRowwiseQuantizedToHalf")
    def to_half(table):
        _check(nbit, f"Fused{bits}BitRowwiseQuantizedToHalf", table)
        return dequantize(table, form).astype(np.float16)

    @register_cpu(f"FloatToFused{bits}BitFakeRowwiseQuantized", f"HalfToFused{bits}BitFakeRowwiseQuantized")
    def fake(x, *, engine):
        _check(fused8, f"{'Half' if x.dtype == np.float16 else 'Float'}ToFused{bits}BitFakeRowwiseQuantized", x)
        lo, scale, codes = nbit_params(x.astype(np.float32), bits, divide=False, greedy=engine == "GREEDY")
        return np.concatenate([codes, _pair(scale, lo, np.float32)], axis=1)


for _bits in (4, 2):
    _register_nbit(_bits)


# -- the separate-scale 8Bits form -------------------------------------------------------------------

@register_cpu("FloatToRowwiseQuantized8Bits")
def float_to_rowwise_8bits(x):
    _check(eight_bits, "FloatToRowwiseQuantized8Bits", x)
    flat = x.reshape(x.shape[0], -1)
    lo, hi = _row_range(flat)
    flat_range = hi - lo < np.float32(1e-10)
    scale = np.where(flat_range, np.float32(1), (hi - lo) / np.float32(255)).astype(np.float32)
    with np.errstate(all="ignore"):
        shifted = (flat - lo[:, None]) * (np.float32(1) / scale)[:, None]
        codes = np.nan_to_num(np.clip(np.floor(shifted + np.float32(0.5)), 0, 255)).astype(np.uint8)
    codes[flat_range] = 0
    return codes.reshape(x.shape), np.stack([scale, lo], axis=1).astype(np.float32)


@register_cpu("Rowwise8BitQuantizedToFloat")
def rowwise_8bits_to_float(codes, scale_bias):
    _check(eight_bits, "Rowwise8BitQuantizedToFloat", codes, scale_bias)
    flat = codes.reshape(codes.shape[0], -1).astype(np.float32)
    return (flat * scale_bias[:, :1] + scale_bias[:, 1:]).reshape(codes.shape)


# -- the reducers ------------------------------------------------------------------------------------

def quantized_reduce(op_type: str, inputs):
    named = dict(zip(reducer_inputs(op_type), inputs))
    check_reducer(op_type, {k: info_of(v) for k, v in named.items()})
    data, indices = named["DATA"], named["INDICES"]
    seg, lengths = segment_ids(named["LENGTHS"], indices.size, "INDICES")
    weights = named.get("W")
    mapping = named.get("MAPPING")
    if mapping is not None and not (mapping.size == 1 and mapping[0] == 0):  # [0]: no pruning
        indices = checked_indices(indices, mapping.size)
        mapped = mapping[indices].astype(np.int64)
        if ((mapped < -1) | (mapped >= data.shape[0])).any():
            bad = mapped[(mapped < -1) | (mapped >= data.shape[0])][0]
            raise ValueError(f"compressed_indices_mapping names row {int(bad)}, out of range for DATA with "
                             f"{data.shape[0]} rows")
        kept = mapped >= 0  # pruned rows (-1) add nothing, but still count in a mean's length
        indices, seg = mapped[kept], seg[kept]
        weights = None if weights is None else weights[kept]
    indices = checked_indices(indices, data.shape[0])
    form = fmt(op_type)
    if form.fused:
        rows = Rows(lambda start, stop: dequantize(data[indices[start:stop]], form), indices.size,
                    (fused_table_columns(data, form),))
    else:
        scale_bias, shape = named["SCALE_BIAS"], (-1, *[1] * (data.ndim - 1))

        def take(start, stop):
            sb = scale_bias[indices[start:stop]]
            return data[indices[start:stop]].astype(np.float32) * sb[:, 0].reshape(shape) + sb[:, 1].reshape(shape)
        rows = Rows(take, indices.size, data.shape[1:])
    return reduce_segments(rows, seg, lengths, weights, mean="Mean" in op_type, dtype=np.float32)


REDUCERS = [f"SparseLengths{r}{f}" for f in ("Fused8BitRowwise", "Fused4BitRowwise", "Fused2BitRowwise")
            for r in ("Sum", "WeightedSum", "Mean")] + \
    [f"SparseLengths{r}8BitsRowwise" for r in ("Sum", "WeightedSum", "Mean", "WeightedMean")] + \
    [f"SparseLengths{r}{b}BitRowwiseSparse" for b in (8, 4, 2) for r in ("Sum", "WeightedSum", "Mean")]


@register_cpu("GatherFused8BitRowwise")
def gather_fused8(data, indices):
    check_reducer("GatherFused8BitRowwise", {"DATA": info_of(data), "INDICES": info_of(indices)})
    return dequantize(data[checked_indices(indices, data.shape[0])], fmt("GatherFused8BitRowwise"))


def _register_reducer(op_type: str) -> None:
    @register_cpu(op_type)
    def kernel(*inputs):
        return quantized_reduce(op_type, inputs)


for _type in REDUCERS:
    _register_reducer(_type)
