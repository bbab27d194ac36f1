"""TensorProto <-> NumPy arrays, by Caffe2's DataType rules.

int32_data also carries the small integer types, bool and float16 (as uint16
bits); raw_data, when present, holds the little-endian bytes.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor

T = caffe2_pb2.TensorProto
NUMPY_TYPES = {
    T.FLOAT: np.float32, T.DOUBLE: np.float64, T.INT32: np.int32, T.INT64: np.int64,
    T.BOOL: np.bool_, T.UINT8: np.uint8, T.INT8: np.int8, T.UINT16: np.uint16,
    T.INT16: np.int16, T.FLOAT16: np.float16, T.BYTE: np.uint8, T.STRING: object,
}
DATA_TYPES = {np.dtype(v): k for k, v in NUMPY_TYPES.items() if k != T.BYTE}
_NARROW_INTS = {T.INT32, T.BOOL, T.UINT8, T.INT8, T.UINT16, T.INT16}  # carried in int32_data
_FIELDS = {T.FLOAT: "float_data", T.DOUBLE: "double_data", T.INT64: "int64_data"}


def dtype_of(data_type: int) -> np.dtype:
    if data_type not in NUMPY_TYPES:
        raise PyCaffe2Error(f"TensorProto data type {data_type} has no NumPy equivalent")
    return np.dtype(NUMPY_TYPES[data_type])


def tensor_to_array(tensor: caffe2_pb2.TensorProto) -> np.ndarray:
    dtype, shape = dtype_of(tensor.data_type), tuple(tensor.dims)
    if any(d < 0 for d in shape):
        raise PyCaffe2Error(f"tensor '{_name(tensor)}': negative size in dims {list(shape)}")
    if tensor.data_type == T.STRING:
        values = np.array(list(tensor.string_data), dtype=object)
    elif tensor.HasField("raw_data"):
        if len(tensor.raw_data) % dtype.itemsize:
            raise PyCaffe2Error(f"tensor '{_name(tensor)}': raw_data of {len(tensor.raw_data)} bytes "
                                f"is not a whole number of {dtype} values")
        values = np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype)
    elif tensor.data_type == T.BYTE:
        values = np.frombuffer(tensor.byte_data, dtype=np.uint8)
    elif tensor.data_type == T.FLOAT16:
        values = np.array(tensor.int32_data, dtype=np.int64).astype(np.uint16).view(np.float16)
    else:
        stored = getattr(tensor, _FIELDS.get(tensor.data_type, "int32_data"))
        values = np.array(stored, dtype=np.int64).astype(dtype) if tensor.data_type in _NARROW_INTS \
            else np.array(stored, dtype=dtype)  # narrow ints wrap, as Caffe2's casts did
    if values.size != math.prod(shape):  # Python ints: dims cannot overflow
        raise PyCaffe2Error(f"tensor '{_name(tensor)}': {values.size} values do not fill dims {list(shape)}")
    try:
        return values.reshape(shape)
    except ValueError as exc:  # over 64 dims, or sizes past NumPy's range even with a 0 among them
        raise PyCaffe2Error(f"tensor '{_name(tensor)}': dims {list(shape)} are not a NumPy shape: "
                            f"{exc}") from None


def _name(tensor) -> str:
    name = tensor.name
    return name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else name


def array_to_tensor(array, name: str = "") -> caffe2_pb2.TensorProto:
    array = np.asarray(array)
    if array.dtype.kind in "SUO":
        tensor = T(name=name, dims=array.shape, data_type=T.STRING)
        tensor.string_data.extend(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.ravel())
        return tensor
    if array.dtype not in DATA_TYPES:
        raise PyCaffe2Error(f"no TensorProto data type for {array.dtype}")
    tensor = T(name=name, dims=array.shape, data_type=DATA_TYPES[array.dtype])
    flat = array.ravel()
    if array.dtype == np.float16:
        tensor.int32_data.extend(flat.view(np.uint16).tolist())
    elif array.dtype == np.bool_:
        tensor.int32_data.extend(flat.astype(np.int32).tolist())
    else:
        getattr(tensor, _FIELDS.get(tensor.data_type, "int32_data")).extend(flat.tolist())
    return tensor


# Int8 blobs (Caffe2's Int8TensorCPU), as caffe2/core/int8_serialization.cc writes them: a
# QTensorProto with the dims, precision 8, the scale (a float widened to double), the zero
# point as `bias`, is_signed false, data_type UINT8 (codes) or INT32 (biases), and every
# value, either type, in the packed int32 `data`.
Q_DATA_TYPES = {np.dtype(np.uint8): T.UINT8, np.dtype(np.int32): T.INT32}


def int8_to_qtensor(value: Int8Tensor, name: str = "") -> caffe2_pb2.QTensorProto:
    data = np.asarray(value.data)
    if data.dtype not in Q_DATA_TYPES:
        raise PyCaffe2Error(f"Int8 blob '{name}' holds {data.dtype} data; Caffe2's Int8TensorCPU "
                            "holds uint8 or int32")
    proto = caffe2_pb2.QTensorProto(name=name, dims=data.shape, precision=8,
                                    scale=float(np.float32(value.scale)), bias=int(value.zero_point),
                                    is_signed=False, data_type=Q_DATA_TYPES[data.dtype])
    proto.data.extend(data.ravel().astype(np.int32).tolist())
    return proto


def qtensor_to_int8(proto: caffe2_pb2.QTensorProto) -> Int8Tensor:
    """The Int8 blob of a QTensorProto Caffe2 wrote; what Caffe2 would refuse (another
    data_type, too few values) or could not hold (a bias that is no int32) is refused."""
    name = _name(proto)
    dtype = {code: dtype for dtype, code in Q_DATA_TYPES.items()}.get(proto.data_type)
    if dtype is None:
        raise PyCaffe2Error(f"Int8 blob '{name}': data_type {proto.data_type} is not UINT8 or INT32 "
                            "(Caffe2's Int8TensorCPU holds no other)")
    shape = tuple(proto.dims)
    if any(d < 0 for d in shape):
        raise PyCaffe2Error(f"Int8 blob '{name}': negative size in dims {list(shape)}")
    if len(proto.data) != math.prod(shape):
        raise PyCaffe2Error(f"Int8 blob '{name}': {len(proto.data)} values do not fill dims {list(shape)}")
    fits = abs(proto.scale) <= float(np.finfo(np.float32).max)  # NaN does not
    scale = float(np.float32(proto.scale)) if fits else math.inf  # Caffe2 keeps a float
    whole = math.isfinite(proto.bias) and proto.bias == int(proto.bias) and abs(proto.bias) < 2 ** 31
    if not math.isfinite(scale) or not whole:
        raise PyCaffe2Error(f"Int8 blob '{name}': scale {proto.scale} and zero point (bias) "
                            f"{proto.bias} are not a finite float and an int32")
    values = np.array(proto.data, dtype=np.int64).astype(dtype)  # uint8 wraps, as Caffe2's cast
    try:
        data = values.reshape(shape)
    except ValueError as exc:
        raise PyCaffe2Error(f"Int8 blob '{name}': dims {list(shape)} are not a NumPy shape: {exc}") from None
    return Int8Tensor(data, scale, int(proto.bias))
