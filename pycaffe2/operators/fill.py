"""Filler kernels (NumPy): the ops init nets are made of. Every filler takes
its output shape from `shape`, or from an optional input (its shape, or with
input_as_shape=1 its values) followed by `extra_shape`, as `fill_shape` does.
Random fillers draw from the op's `rng` (a NumPy Generator seeded from the
op's device_option.random_seed when it has one), so seeded nets repeat
exactly. String tensors are object arrays of bytes, as Caffe2 keeps them.
Shape, arg and dtype checks are schema.inference.fill's, shared with the rules.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.files import check_alloc
from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import CPU_KERNELS, register_cpu, register_cuda
from pycaffe2.schema.inference.fill import (
    GIVEN_TENSOR_TYPES,
    byte_string,
    check_bound_input,
    check_bounds,
    check_fan_rank,
    check_lengths,
    check_std,
    check_value_count,
    constant_dtype,
    diagonal_dtype,
    fill_shape,
    given_dtype,
    range_inputs,
    unique_uniform_dtype,
)


def _fill_shape(inputs: tuple, shape, extra_shape, input_as_shape, out_dtype="float32") -> tuple[int, ...]:
    """The output shape from the shape args and the optional input (read on the host); a
    shape read from the input's values is checked against the blob cap."""
    if not inputs:
        return fill_shape(shape, extra_shape, input_as_shape, False)
    source = inputs[0]
    dtype = source.dtype.name if hasattr(source, "dtype") else type(source).__name__
    out_shape = fill_shape(shape, extra_shape, input_as_shape, True, np.shape(source), dtype,
                           source if input_as_shape else None)
    return check_alloc(out_shape, out_dtype) if input_as_shape else out_shape


def _as_bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _strings(values, shape) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [_as_bytes(v) for v in values]
    return array.reshape(shape)


@register_cpu("ConstantFill")
def constant_fill(*inputs, shape, extra_shape, input_as_shape, value, dtype):
    dtype_name = constant_dtype(value, dtype)
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape, dtype_name)
    if dtype_name == "object":
        text = value if isinstance(value, (str, bytes)) else b""
        return _strings([text] * math.prod(out_shape), out_shape)
    return np.full(out_shape, value, dtype=dtype_name)


@register_cpu("GaussianFill")
def gaussian_fill(*inputs, shape, extra_shape, input_as_shape, mean, std, rng):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    check_std(std)
    return _gaussian(rng, out_shape, mean, std)


def _gaussian(rng, shape, mean, std) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(std)
    out += np.float32(mean)
    return out


def _uniform(rng, shape, low, high) -> np.ndarray:
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def uniform_bounds(inputs: tuple, low: float, high: float) -> tuple:
    """(min, max) from the args, or from the one-element inputs 1 and 2 (on the host)."""
    if len(inputs) < 3:
        check_bounds(low, high)
        return low, high
    for name, bound in (("min", inputs[1]), ("max", inputs[2])):
        check_bound_input(name, np.shape(bound))
    return float(np.ravel(inputs[1])[0]), float(np.ravel(inputs[2])[0])


@register_cpu("UniformFill")
def uniform_fill(*inputs, shape, extra_shape, input_as_shape, min, max, rng):
    out_shape = _fill_shape(inputs[:1], shape, extra_shape, input_as_shape)
    low, high = uniform_bounds(inputs, min, max)
    if low > high:  # Caffe2 gives an empty batch (dim 0 is 0) for crossed input bounds
        return np.zeros((0,) + out_shape[1:], dtype=np.float32)
    return _uniform(rng, out_shape, low, high)


@register_cpu("UniformIntFill")
def uniform_int_fill(*inputs, shape, extra_shape, input_as_shape, min, max, rng):
    out_shape = _fill_shape(inputs[:1], shape, extra_shape, input_as_shape)
    low, high = uniform_bounds(inputs, min, max)
    if low > high:
        return np.zeros((0,) + out_shape[1:], dtype=np.int32)
    return rng.integers(int(low), int(high), out_shape, dtype=np.int32, endpoint=True)


@register_cpu("UniqueUniformFill")
def unique_uniform_fill(*inputs, shape, extra_shape, input_as_shape, min, max, dtype, rng):
    dtype_name = unique_uniform_dtype(dtype, min, max)
    out_shape = check_alloc(_fill_shape(inputs[:1], shape, extra_shape, input_as_shape), dtype_name)
    if len(inputs) > 1 and inputs[1].dtype != dtype_name:
        raise ValueError(f"avoid ({inputs[1].dtype}) must have the output's type ({dtype_name})")
    avoid = np.unique(inputs[1]) if len(inputs) > 1 else np.zeros(0, np.int64)
    avoid = avoid[(avoid >= min) & (avoid <= max)].astype(np.int64)
    count, candidates = math.prod(out_shape), (max - min + 1) - len(avoid)
    if count > candidates:
        raise ValueError(f"{count} distinct values cannot be drawn from the {candidates} in [{min}, {max}] "
                         "outside avoid")
    picks = rng.choice(candidates, count, replace=False)  # ranks among the candidates
    below = avoid - min - np.arange(len(avoid))  # candidates below each avoided value
    values = min + picks + np.searchsorted(below, picks, side="right")
    return values.astype(dtype_name).reshape(out_shape)


@register_cpu("DiagonalFill")
def diagonal_fill(*inputs, shape, extra_shape, input_as_shape, value, dtype):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    out = np.zeros(out_shape, dtype=diagonal_dtype(out_shape, dtype))
    step = 1 + sum(math.prod(out_shape[d + 1:]) for d in range(len(out_shape) - 1))  # sum of strides
    out.reshape(-1)[::step] = value
    return out


@register_cpu("LengthsRangeFill")
def lengths_range_fill(lengths):
    check_lengths(lengths.shape, lengths.dtype.name)
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {int(lengths.min())}")
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)  # each element's segment start
    return (np.arange(total) - starts).astype(np.int32)


@register_cpu("Range")
def range_(*inputs):
    range_inputs([np.shape(v) for v in inputs], [np.asarray(v).dtype.name for v in inputs])
    values = [np.ravel(v)[0] for v in inputs]
    if len(values) == 3 and values[2] == 0:
        raise ValueError("Step size cannot be 0")  # Caffe2's words
    start, stop, step = (0, values[0], 1) if len(values) == 1 else (*values, 1)[:3]
    dtype = np.asarray(inputs[0]).dtype
    count = (float(stop) - float(start)) / float(step)
    if not math.isfinite(count):
        raise ValueError(f"start {start}, stop {stop} and step {step} give no finite length")
    check_alloc((max(math.ceil(count), 0),), dtype)
    return np.arange(*values, dtype=dtype)


def xavier_scale(shape: tuple) -> float | None:
    """XavierFill's bound sqrt(3 / fan_in); None for an empty shape (nothing to draw)."""
    check_fan_rank("XavierFill", shape)
    size = math.prod(shape)
    return math.sqrt(3.0 / (size // shape[0])) if size else None  # Caffe2 divides as integers


def msra_std(shape: tuple) -> float | None:
    """MSRAFill's std sqrt(2 / fan_out); None for an empty shape."""
    check_fan_rank("MSRAFill", shape)
    size = math.prod(shape)
    return math.sqrt(2.0 / (size // shape[1])) if size else None


@register_cpu("XavierFill")
def xavier_fill(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    scale = xavier_scale(out_shape)
    if scale is None:
        return np.zeros(out_shape, dtype=np.float32)
    return _uniform(rng, out_shape, -scale, scale)


@register_cpu("MSRAFill")
def msra_fill(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    std = msra_std(out_shape)
    if std is None:
        return np.zeros(out_shape, dtype=np.float32)
    return _gaussian(rng, out_shape, 0.0, std)


@register_cpu("RangeFill")
def range_fill(*inputs, shape, extra_shape, input_as_shape):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    return np.arange(math.prod(out_shape), dtype=np.float32).reshape(out_shape)


def _given(op_type, inputs, shape, extra_shape, input_as_shape, values, dtype=None) -> np.ndarray:
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    values = values or []
    check_value_count(len(values), out_shape)
    dtype_name = given_dtype(op_type, dtype)
    if dtype_name == "object":
        return _strings(values, out_shape)
    return np.array(values, dtype=dtype_name).reshape(out_shape)


@register_cpu("GivenTensorFill")
def given_tensor_fill(*inputs, shape, extra_shape, input_as_shape, values, dtype):
    return _given("GivenTensorFill", inputs, shape, extra_shape, input_as_shape, values, dtype)


def _register_given_variant(op_type: str) -> None:
    def given_variant(*inputs, shape, extra_shape, input_as_shape, values, dtype):
        return _given(op_type, inputs, shape, extra_shape, input_as_shape, values)  # dtype: the op's own

    register_cpu(op_type)(given_variant)


for _variant in GIVEN_TENSOR_TYPES:  # Double, Fp16, Int16, Int, Int64, Bool and String
    _register_given_variant(_variant)


@register_cpu("GivenTensorByteStringToUInt8Fill")
def given_tensor_byte_string_to_uint8_fill(*inputs, shape, extra_shape, input_as_shape, values, dtype):
    out_shape = _fill_shape(inputs, shape, extra_shape, input_as_shape)
    data = byte_string(values, dtype)
    check_value_count(len(data), out_shape)
    return np.frombuffer(data, dtype=np.uint8).reshape(out_shape).copy()


# CUDA launchers (fill.cu): float32 outputs filled on the GPU. Shapes, args and
# errors go through the CPU kernels' checks; a shape input is read on the host
# only when its values are the shape (input_as_shape=1). Random fills draw one
# seed per run from the op's rng for fill.cu's counter-based generator, so the
# numbers differ from the CPU's but follow the same distribution.

def _host_inputs(inputs: tuple, input_as_shape) -> tuple:
    """The inputs as fill_shape reads them: values on the host where they are read."""
    host = [cuda.copy_to_cpu(v) if index or input_as_shape else v for index, v in enumerate(inputs)]
    return tuple(host)


def _filled(kernel: str, shape, *scalars):
    out = cuda.empty(shape)
    cuda.launch("fill.cu", kernel, out.size, out, *scalars, np.int64(out.size))
    return out


def _seed(rng) -> np.uint64:
    return rng.integers(0, 2**64, dtype=np.uint64)


def _uniform_cuda(rng, shape, low, high):
    return _filled("uniform_fill", shape, _seed(rng), np.float32(low), np.float32(high - low))


def _gaussian_cuda(rng, shape, mean, std):
    return _filled("gaussian_fill", shape, _seed(rng), np.float32(mean), np.float32(std))


@register_cuda("ConstantFill")
def constant_fill_cuda(*inputs, shape, extra_shape, input_as_shape, value, dtype):
    out_shape = _fill_shape(_host_inputs(inputs, input_as_shape), shape, extra_shape, input_as_shape)
    dtype_name = constant_dtype(value, dtype)
    if dtype_name == "float32":
        return _filled("constant_fill", out_shape, np.float32(value))
    # integer counters and masks: filled on the host, copied over
    return _uploaded(np.full(out_shape, value, dtype=dtype_name))


def _storable(dtype: np.dtype) -> bool:
    """Whether a CUDA blob holds this type: float32, integers and bools (CUDADevice.put
    refuses other floats; strings are host objects)."""
    return dtype == np.float32 or dtype.kind in "biu"


def _uploaded(array: np.ndarray):
    """A fill made on the host (the CPU kernel's result), copied to the GPU."""
    if not _storable(array.dtype):
        raise ValueError(f"a CUDA blob cannot hold {array.dtype} (float32, integer and bool "
                         "types only); run this fill on the CPU")
    return cuda.copy_to_gpu(array)


@register_cuda("UniformFill")
def uniform_fill_cuda(*inputs, shape, extra_shape, input_as_shape, min, max, rng):
    host = _host_inputs(inputs, input_as_shape)
    out_shape = _fill_shape(host[:1], shape, extra_shape, input_as_shape)
    low, high = uniform_bounds(host, min, max)
    if low > high:  # as on the CPU: an empty batch for crossed input bounds
        return cuda.empty((0,) + out_shape[1:])
    return _uniform_cuda(rng, out_shape, low, high)


@register_cuda("GaussianFill")
def gaussian_fill_cuda(*inputs, shape, extra_shape, input_as_shape, mean, std, rng):
    out_shape = _fill_shape(_host_inputs(inputs, input_as_shape), shape, extra_shape, input_as_shape)
    check_std(std)
    return _gaussian_cuda(rng, out_shape, mean, std)


@register_cuda("XavierFill")
def xavier_fill_cuda(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = _fill_shape(_host_inputs(inputs, input_as_shape), shape, extra_shape, input_as_shape)
    scale = xavier_scale(out_shape)
    return cuda.empty(out_shape) if scale is None else _uniform_cuda(rng, out_shape, -scale, scale)


@register_cuda("MSRAFill")
def msra_fill_cuda(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = _fill_shape(_host_inputs(inputs, input_as_shape), shape, extra_shape, input_as_shape)
    std = msra_std(out_shape)
    return cuda.empty(out_shape) if std is None else _gaussian_cuda(rng, out_shape, 0.0, std)


@register_cuda("RangeFill")
def range_fill_cuda(*inputs, shape, extra_shape, input_as_shape):
    out_shape = _fill_shape(_host_inputs(inputs, input_as_shape), shape, extra_shape, input_as_shape)
    return _filled("range_fill", out_shape)


# GivenTensor fills: the values are args, so the CPU kernel builds the tensor on the
# host and it is uploaded, as Caffe2 copies them over. GivenTensorDoubleFill and
# GivenTensorStringFill stay CPU-only (a CUDA blob holds no float64 or strings).
@register_cuda("GivenTensorFill")
def given_tensor_fill_cuda(*inputs, shape, extra_shape, input_as_shape, values, dtype):
    host = given_tensor_fill(*_host_inputs(inputs, input_as_shape), shape=shape, extra_shape=extra_shape,
                             input_as_shape=input_as_shape, values=values, dtype=dtype)
    return _uploaded(host)


def _register_given_variant_cuda(op_type: str) -> None:
    on_host = CPU_KERNELS[op_type].function

    def given_variant_cuda(*inputs, shape, extra_shape, input_as_shape, values, dtype):
        host = on_host(*_host_inputs(inputs, input_as_shape), shape=shape, extra_shape=extra_shape,
                       input_as_shape=input_as_shape, values=values, dtype=dtype)
        return _uploaded(host)

    register_cuda(op_type)(given_variant_cuda)


for _variant, _dtype_name in GIVEN_TENSOR_TYPES.items():  # Int16, Int, Int64 and Bool (not Double, Fp16)
    if _storable(np.dtype(_dtype_name)):
        _register_given_variant_cuda(_variant)
_register_given_variant_cuda("GivenTensorByteStringToUInt8Fill")
