"""TensorProto <-> NumPy arrays, by Caffe2's DataType rules.

int32_data also carries the small integer types, bool and float16 (as uint16
bits); raw_data, when present, holds the little-endian bytes.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2

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
