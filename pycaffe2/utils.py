"""Caffe2's `utils` names that scripts, tutorials and op tests use.

Tensors: NumpyArrayToCaffe2Tensor / Caffe2TensorToNumpyArray (TensorProto <->
NumPy; int64 arrays become INT32 tensors, as Caffe2 stored them),
CaffeBlobToNumpyArray (a Caffe1 BlobProto's data). Protos: MakeArgument,
ArgsToDict, OpAlmostEqual, TryReadProtoWithClass, GetContentFromProto(String),
ConvertProtoToBinary. Nets: BuildUniqueMutexIter, ResetBlobs. Misc:
EnumClassKeyVals, raiseIfNotEqual, DebugMode, debug, NCHW2NHWC / NHWC2NCHW.
Caffe2's GetGPUMemoryUsageStats (its C++ allocator's counters) has no
equivalent here.
"""
from __future__ import annotations

import copy
import sys

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import arg_value, make_argument
from pycaffe2.tensor_proto import array_to_tensor, tensor_to_array

OPTIMIZER_ITERATION_NAME = "optimizer_iteration"
ITERATION_MUTEX_NAME = "iteration_mutex"
_INT32 = np.iinfo(np.int32)


def MakeArgument(key: str, value):
    """An Argument by Caffe2's MakeArgument rules (the value's own kind)."""
    return make_argument(str(key), value)


def ArgsToDict(args) -> dict:
    """{name: value} of Arguments (a list field's value as a list; an unset one None);
    Arguments without a name are skipped."""
    found = {}
    for arg in args:
        if arg.name:
            value = arg_value(arg)
            found[arg.name] = None if value == [] and not arg.HasField("n") else value
    return found


def OpAlmostEqual(op_a, op_b, ignore_fields=None) -> bool:
    """Whether two OperatorDefs are equal once the fields in `ignore_fields` are cleared."""
    fields = ignore_fields or []
    fields = [fields] if isinstance(fields, str) else list(fields)

    def cleaned(op):
        op = copy.deepcopy(op)
        for field in fields:
            op.ClearField(field)
        return op
    return cleaned(op_a) == cleaned(op_b)


# ---------------------------------------------------------------- tensors

def NumpyArrayToCaffe2Tensor(arr, name=None) -> caffe2_pb2.TensorProto:
    """A TensorProto holding `arr`; int64 data is stored as INT32, as Caffe2 did."""
    arr = np.asarray(arr)
    if arr.dtype == np.int64:
        if arr.size and (arr.min() < _INT32.min or arr.max() > _INT32.max):
            raise PyCaffe2Error("NumpyArrayToCaffe2Tensor: int64 values outside int32's range "
                                "(Caffe2 stores int64 arrays as INT32 tensors)")
        arr = arr.astype(np.int32)
    return array_to_tensor(arr, name or "")


def Caffe2TensorToNumpyArray(tensor) -> np.ndarray:
    return tensor_to_array(tensor)


def CaffeBlobToNumpyArray(blob) -> np.ndarray:
    """A Caffe1 BlobProto's data as float32: shaped num x channels x height x width in the
    old style (num set), else by `shape.dim`."""
    data = np.asarray(blob.data, dtype=np.float32)
    shape = ((blob.num, blob.channels, blob.height, blob.width) if getattr(blob, "num", 0)
             else tuple(blob.shape.dim))
    if int(np.prod(shape)) != data.size:
        raise PyCaffe2Error(f"CaffeBlobToNumpyArray: {data.size} values do not fill shape {list(shape)}")
    return data.reshape(shape)


# ---------------------------------------------------------------- protos

def TryReadProtoWithClass(cls, s):
    """A `cls` message from text format, or failing that from binary; PyCaffe2Error if neither."""
    obj = cls()
    text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
    try:
        text_format.Parse(text, obj)
        return obj
    except text_format.ParseError:
        obj = cls()
    try:
        obj.ParseFromString(s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s)
    except (DecodeError, UnicodeEncodeError) as exc:
        raise PyCaffe2Error(f"cannot read a {cls.__name__} from the content, as text or binary: {exc}") from None
    return obj


def GetContentFromProto(obj, function_map):
    """function_map[type(obj)](obj), or None when no class in the map is obj's."""
    for cls, func in function_map.items():
        if type(obj) is cls:
            return func(obj)
    return None


def GetContentFromProtoString(s, function_map):
    """The function of the first class in `function_map` that reads `s`, applied to it."""
    for cls, func in function_map.items():
        try:
            obj = TryReadProtoWithClass(cls, s)
        except PyCaffe2Error:
            continue
        return func(obj)
    names = ", ".join(cls.__name__ for cls in function_map)
    raise PyCaffe2Error(f"the content is none of {names}, as text or binary")


def ConvertProtoToBinary(proto_class, filename, out_filename) -> None:
    """Write the binary form of a `proto_class` message read (text or binary) from `filename`."""
    try:
        with open(filename, "rb") as source:
            proto = TryReadProtoWithClass(proto_class, source.read())
        with open(out_filename, "wb") as out:
            out.write(proto.SerializeToString())
    except OSError as exc:
        raise PyCaffe2Error(f"{exc.filename}: {exc.strerror}") from None


# ---------------------------------------------------------------- nets and blobs

def BuildUniqueMutexIter(init_net, net, iter=None, iter_mutex=None, iter_val=0):
    """A mutex-guarded int64 iteration counter: ConstantFill and CreateMutex in init_net,
    AtomicIter in net, added only when init_net does not already make `iter`."""
    from pycaffe2 import core
    iter = iter if iter is not None else OPTIMIZER_ITERATION_NAME
    iter_mutex = iter_mutex if iter_mutex is not None else ITERATION_MUTEX_NAME
    if any(str(iter) in op.output for op in init_net.Proto().op):
        return init_net.GetBlobRef(iter)
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.PROTO_CPU)):
        iteration = init_net.ConstantFill([], iter, shape=[1], value=iter_val, dtype=core.DataType.INT64)
        mutex = init_net.CreateMutex([], [iter_mutex])
        net.AtomicIter([mutex, iteration], [iteration])
    return iteration


def ResetBlobs(blobs) -> None:
    """Drop the values of `blobs` in the current workspace (they stay, empty, as after Caffe2's Free)."""
    from pycaffe2 import workspace
    ws = workspace.C()
    names = [str(b) for b in blobs]
    missing = [name for name in names if not ws.HasBlob(name)]
    if missing:
        raise PyCaffe2Error(f"ResetBlobs: no blob named {', '.join(missing)} in workspace {ws.name!r}")
    for name in names:
        ws.blobs.pop(name, None)
        ws.empty.add(name)


# ---------------------------------------------------------------- misc

def EnumClassKeyVals(cls) -> dict:
    """{NAME: value} of a class's upper-case string attributes; two names with one value is an error."""
    if not isinstance(cls, type):
        raise PyCaffe2Error(f"EnumClassKeyVals: expected a class, got {type(cls).__name__}")
    enum = {}
    for key in dir(cls):
        value = getattr(cls, key)
        if key == key.upper() and isinstance(value, str):
            if value in enum.values():
                other = next(k for k, v in enum.items() if v == value)
                raise PyCaffe2Error(f"EnumClassKeyVals: {cls.__name__}.{key} and .{other} are both {value!r}")
            enum[key] = value
    return enum


def raiseIfNotEqual(a, b, msg) -> None:
    if a != b:
        raise PyCaffe2Error(f"{msg}. {a} != {b}")


class DebugMode:
    """`DebugMode.run(main)`: an unhandled exception opens pdb's post-mortem, then exits 1.
    Only when stdin is a terminal; otherwise (CI, pipes) the exception propagates."""

    @classmethod
    def run(cls, func):
        try:
            return func()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if not sys.stdin.isatty():
                raise
            import pdb  # noqa: T100 (opening the debugger is what DebugMode is for)
            print(f"Entering the debugger after: {exc!r}; 'bt' shows the stack, 'help' the commands.")
            pdb.post_mortem(exc.__traceback__)
            sys.exit(1)


def debug(function):
    """Caffe2 dropped into pdb on an exception; here the function is returned as is."""
    return function


def NCHW2NHWC(tensor) -> np.ndarray:
    """Channels (axis 1) moved last."""
    tensor = np.asarray(tensor)
    return tensor.transpose((0,) + tuple(range(2, tensor.ndim)) + (1,))


def NHWC2NCHW(tensor) -> np.ndarray:
    """Channels (last axis) moved to axis 1."""
    tensor = np.asarray(tensor)
    return tensor.transpose((0, tensor.ndim - 1) + tuple(range(1, tensor.ndim - 1)))
