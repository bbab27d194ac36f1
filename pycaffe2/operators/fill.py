"""Filler kernels (NumPy): the ops init nets are made of. Every filler takes
its output shape from `shape`, or from an optional input (its shape, or with
input_as_shape=1 its values) followed by `extra_shape`, as `fill_shape` does.
Random fillers draw from the op's `rng` (a NumPy Generator seeded from the
op's device_option.random_seed when it has one), so seeded nets repeat
exactly. String tensors are object arrays of bytes, as Caffe2 keeps them.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import CPU_KERNELS, register_cpu, register_cuda
from pycaffe2.schema.args import DTYPE_BY_NUMBER
from pycaffe2.schema.inference.fill import GIVEN_TENSOR_DTYPES, GIVEN_TENSOR_TYPES, NUMPY_NAMES


def fill_shape(op_type: str, inputs: tuple, shape, extra_shape, input_as_shape) -> tuple[int, ...]:
    """The output shape from the shape args and the optional input."""
    extra = tuple(extra_shape or ())
    if not inputs:
        if extra:
            raise ValueError(f"{op_type}: extra_shape {list(extra)} needs an input to extend")
        if input_as_shape:
            raise ValueError(f"{op_type}: input_as_shape=1 needs an input holding the shape")
        return _checked(op_type, tuple(shape or ()))
    if shape:
        raise ValueError(f"{op_type}: give the shape {list(shape)} or an input, not both")
    source = inputs[0]
    if not input_as_shape:
        return np.shape(source) + _checked(op_type, extra)
    if not isinstance(source, np.ndarray) or source.ndim != 1 or source.dtype != np.int64:
        described = (f"{list(source.shape)} {source.dtype}" if isinstance(source, np.ndarray)
                     else type(source).__name__)
        raise ValueError(f"{op_type}: with input_as_shape=1 the input must be a 1-D int64 "
                         f"tensor, got {described}")
    return _checked(op_type, tuple(int(d) for d in source) + extra)


def _checked(op_type: str, shape: tuple) -> tuple:
    if any(d < 0 for d in shape):
        raise ValueError(f"{op_type}: shape {list(shape)} has a negative dim")
    return shape


def _as_bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _strings(values, shape) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [_as_bytes(v) for v in values]
    return array.reshape(shape)


@register_cpu("ConstantFill")
def constant_fill(*inputs, shape, extra_shape, input_as_shape, value, dtype):
    out_shape = fill_shape("ConstantFill", inputs, shape, extra_shape, input_as_shape)
    if dtype is None:  # Caffe2 infers it from the value's type: float -> FLOAT, int -> INT64
        if isinstance(value, (str, bytes)):
            raise ValueError("ConstantFill: a string value needs dtype=STRING")
        dtype_name = "int64" if isinstance(value, int) else "float32"
    else:
        dtype_name = NUMPY_NAMES.get(DTYPE_BY_NUMBER.get(dtype, ""))
        if dtype_name is None:
            raise ValueError(f"ConstantFill: dtype {DTYPE_BY_NUMBER.get(dtype, dtype)} cannot be filled")
    if dtype_name == "object":
        text = value if isinstance(value, (str, bytes)) else b""
        return _strings([text] * math.prod(out_shape), out_shape)
    if isinstance(value, (str, bytes)):
        raise ValueError(f"ConstantFill: string value {value!r} cannot fill a {dtype_name} tensor")
    if isinstance(value, float) and np.dtype(dtype_name).kind in "biu" and not value.is_integer():
        raise ValueError(f"ConstantFill: value {value} is not a whole number, as {dtype_name} needs")
    return np.full(out_shape, value, dtype=dtype_name)


@register_cpu("GaussianFill")
def gaussian_fill(*inputs, shape, extra_shape, input_as_shape, mean, std, rng):
    out_shape = fill_shape("GaussianFill", inputs, shape, extra_shape, input_as_shape)
    if std < 0:
        raise ValueError(f"GaussianFill: std must not be negative, got {std}")
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


@register_cpu("UniformFill")
def uniform_fill(*inputs, shape, extra_shape, input_as_shape, min, max, rng):
    out_shape = fill_shape("UniformFill", inputs[:1], shape, extra_shape, input_as_shape)
    if len(inputs) == 3:
        for name, bound in (("min", inputs[1]), ("max", inputs[2])):
            if np.size(bound) != 1:
                raise ValueError(f"UniformFill: input {name} must hold one element, "
                                 f"got {list(np.shape(bound))}")
        low, high = float(np.ravel(inputs[1])[0]), float(np.ravel(inputs[2])[0])
        if low > high:  # Caffe2 gives an empty batch (dim 0 is 0) for crossed input bounds
            return np.zeros((0,) + out_shape[1:], dtype=np.float32)
    else:
        low, high = min, max
        if low > high:
            raise ValueError(f"UniformFill: min {low} is above max {high}")
    return _uniform(rng, out_shape, low, high)


@register_cpu("XavierFill")
def xavier_fill(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = fill_shape("XavierFill", inputs, shape, extra_shape, input_as_shape)
    if len(out_shape) < 1:
        raise ValueError("XavierFill: needs a shape of at least 1 dim (fan_in = size / dim 0)")
    size = math.prod(out_shape)
    if size == 0:
        return np.zeros(out_shape, dtype=np.float32)
    scale = math.sqrt(3.0 / (size // out_shape[0]))  # Caffe2 divides as integers
    return _uniform(rng, out_shape, -scale, scale)


@register_cpu("MSRAFill")
def msra_fill(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = fill_shape("MSRAFill", inputs, shape, extra_shape, input_as_shape)
    if len(out_shape) < 2:
        raise ValueError(f"MSRAFill: needs a shape of at least 2 dims (fan_out = size / dim 1), "
                         f"got {list(out_shape)}")
    size = math.prod(out_shape)
    if size == 0:
        return np.zeros(out_shape, dtype=np.float32)
    return _gaussian(rng, out_shape, 0.0, math.sqrt(2.0 / (size // out_shape[1])))


@register_cpu("RangeFill")
def range_fill(*inputs, shape, extra_shape, input_as_shape):
    out_shape = fill_shape("RangeFill", inputs, shape, extra_shape, input_as_shape)
    return np.arange(math.prod(out_shape), dtype=np.float32).reshape(out_shape)


def _given(op_type, inputs, shape, extra_shape, input_as_shape, values, dtype_name) -> np.ndarray:
    out_shape = fill_shape(op_type, inputs, shape, extra_shape, input_as_shape)
    values = values or []
    if len(values) != math.prod(out_shape):
        raise ValueError(f"{op_type}: {len(values)} values cannot fill shape {list(out_shape)} "
                         f"({math.prod(out_shape)} elements)")
    if dtype_name == "object":
        return _strings(values, out_shape)
    return np.array(values, dtype=dtype_name).reshape(out_shape)


@register_cpu("GivenTensorFill")
def given_tensor_fill(*inputs, shape, extra_shape, input_as_shape, values, dtype):
    dtype_name = "float32"
    if dtype is not None:
        name = DTYPE_BY_NUMBER.get(dtype, str(dtype))
        if name not in GIVEN_TENSOR_DTYPES:
            raise ValueError(f"GivenTensorFill: dtype {name} is not one of {', '.join(GIVEN_TENSOR_DTYPES)}")
        dtype_name = NUMPY_NAMES[name]
    return _given("GivenTensorFill", inputs, shape, extra_shape, input_as_shape, values, dtype_name)


def _register_given_variant(op_type: str) -> None:
    dtype_name = GIVEN_TENSOR_TYPES[op_type]

    def given_variant(*inputs, shape, extra_shape, input_as_shape, values):
        return _given(op_type, inputs, shape, extra_shape, input_as_shape, values, dtype_name)

    register_cpu(op_type)(given_variant)


for _variant in GIVEN_TENSOR_TYPES:  # Double, Int, Int64, Bool and String
    _register_given_variant(_variant)


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
    host = _host_inputs(inputs, input_as_shape)
    out_shape = fill_shape("ConstantFill", host, shape, extra_shape, input_as_shape)
    # The CPU kernel checks value and dtype and gives the dtype, on a 0-d probe.
    probe = constant_fill(shape=[], extra_shape=None, input_as_shape=0, value=value, dtype=dtype)
    if probe.dtype == np.float32:
        return _filled("constant_fill", out_shape, probe[()])
    # integer counters and masks: filled on the host, copied over
    return _uploaded("ConstantFill", np.full(out_shape, probe[()], dtype=probe.dtype))


def _storable(dtype: np.dtype) -> bool:
    """Whether a CUDA blob holds this type: float32, integers and bools (CUDADevice.put
    refuses other floats; strings are host objects)."""
    return dtype == np.float32 or dtype.kind in "biu"


def _uploaded(op_type: str, array: np.ndarray):
    """A fill made on the host (the CPU kernel's result), copied to the GPU."""
    if not _storable(array.dtype):
        raise ValueError(f"{op_type}: a CUDA blob cannot hold {array.dtype} (float32, integer and bool "
                         "types only); run this fill on the CPU")
    return cuda.copy_to_gpu(array)


@register_cuda("UniformFill")
def uniform_fill_cuda(*inputs, shape, extra_shape, input_as_shape, min, max, rng):
    host = _host_inputs(inputs, input_as_shape)
    out_shape = fill_shape("UniformFill", host[:1], shape, extra_shape, input_as_shape)
    if len(host) == 3:
        for name, bound in (("min", host[1]), ("max", host[2])):
            if np.size(bound) != 1:
                raise ValueError(f"UniformFill: input {name} must hold one element, "
                                 f"got {list(np.shape(bound))}")
        low, high = float(np.ravel(host[1])[0]), float(np.ravel(host[2])[0])
        if low > high:  # as on the CPU: an empty batch for crossed input bounds
            return cuda.empty((0,) + out_shape[1:])
    else:
        low, high = min, max
        if low > high:
            raise ValueError(f"UniformFill: min {low} is above max {high}")
    return _uniform_cuda(rng, out_shape, low, high)


@register_cuda("GaussianFill")
def gaussian_fill_cuda(*inputs, shape, extra_shape, input_as_shape, mean, std, rng):
    out_shape = fill_shape("GaussianFill", _host_inputs(inputs, input_as_shape), shape, extra_shape,
                           input_as_shape)
    if std < 0:
        raise ValueError(f"GaussianFill: std must not be negative, got {std}")
    return _gaussian_cuda(rng, out_shape, mean, std)


@register_cuda("XavierFill")
def xavier_fill_cuda(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = fill_shape("XavierFill", _host_inputs(inputs, input_as_shape), shape, extra_shape,
                           input_as_shape)
    if len(out_shape) < 1:
        raise ValueError("XavierFill: needs a shape of at least 1 dim (fan_in = size / dim 0)")
    size = math.prod(out_shape)
    if size == 0:
        return cuda.empty(out_shape)
    scale = math.sqrt(3.0 / (size // out_shape[0]))  # Caffe2 divides as integers
    return _uniform_cuda(rng, out_shape, -scale, scale)


@register_cuda("MSRAFill")
def msra_fill_cuda(*inputs, shape, extra_shape, input_as_shape, rng):
    out_shape = fill_shape("MSRAFill", _host_inputs(inputs, input_as_shape), shape, extra_shape,
                           input_as_shape)
    if len(out_shape) < 2:
        raise ValueError(f"MSRAFill: needs a shape of at least 2 dims (fan_out = size / dim 1), "
                         f"got {list(out_shape)}")
    size = math.prod(out_shape)
    if size == 0:
        return cuda.empty(out_shape)
    return _gaussian_cuda(rng, out_shape, 0.0, math.sqrt(2.0 / (size // out_shape[1])))


@register_cuda("RangeFill")
def range_fill_cuda(*inputs, shape, extra_shape, input_as_shape):
    out_shape = fill_shape("RangeFill", _host_inputs(inputs, input_as_shape), shape, extra_shape,
                           input_as_shape)
    return _filled("range_fill", out_shape)


# GivenTensor fills: the values are args, so the CPU kernel builds the tensor on the
# host and it is uploaded, as Caffe2 copies them over. GivenTensorDoubleFill and
# GivenTensorStringFill stay CPU-only (a CUDA blob holds no float64 or strings).
@register_cuda("GivenTensorFill")
def given_tensor_fill_cuda(*inputs, shape, extra_shape, input_as_shape, values, dtype):
    host = given_tensor_fill(*_host_inputs(inputs, input_as_shape), shape=shape, extra_shape=extra_shape,
                             input_as_shape=input_as_shape, values=values, dtype=dtype)
    return _uploaded("GivenTensorFill", host)


def _register_given_variant_cuda(op_type: str) -> None:
    on_host = CPU_KERNELS[op_type].function

    def given_variant_cuda(*inputs, shape, extra_shape, input_as_shape, values):
        host = on_host(*_host_inputs(inputs, input_as_shape), shape=shape, extra_shape=extra_shape,
                       input_as_shape=input_as_shape, values=values)
        return _uploaded(op_type, host)

    register_cuda(op_type)(given_variant_cuda)


for _variant, _dtype_name in GIVEN_TENSOR_TYPES.items():  # Int, Int64 and Bool
    if _storable(np.dtype(_dtype_name)):
        _register_given_variant_cuda(_variant)
