"""Object blobs: blob values that are Python objects rather than tensors, as
Caffe2's std::unique_ptr<...> blobs were (a Counter, an Index). Ops share them by
reference: an op that changes one checks everything first and changes it last,
so a failing op leaves it as it was. FetchBlob gives Caffe2's description of such
a blob (bytes), not the object. Save writes them as Caffe2 did (a BlobProto of
their `type_name` holding a tensor), and Load reads them back (`from_blob_proto`).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2
from pycaffe2.tensor_proto import array_to_tensor, tensor_to_array

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


class ObjectBlob:
    """A blob value that is not a tensor; `type_name` is Caffe2's name of its type."""

    type_name = "object"

    def describe(self, name: str) -> bytes:
        """What Caffe2's FetchBlob gave for a blob it could not fetch as a tensor."""
        return f"{name}, a C++ native class of type {self.type_name}.".encode()

    def blob_proto(self, name: str) -> caffe2_pb2.BlobProto:
        raise PyCaffe2Error(f"blob '{name}' holds a {self.type_name}, which cannot be saved")


class Counter(ObjectBlob):
    """Caffe2's Counter<int64_t>: a thread-safe int64 count."""

    type_name = "std::unique_ptr<Counter<int64_t>>"

    def __init__(self, count: int = 0):
        self.count = check_count(count)
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Counter({self.count})"

    def blob_proto(self, name: str) -> caffe2_pb2.BlobProto:
        tensor = caffe2_pb2.TensorProto(name=name, data_type=caffe2_pb2.TensorProto.INT64, dims=[1],
                                        int64_data=[self.count])
        return caffe2_pb2.BlobProto(name=name, type=self.type_name, tensor=tensor)

    @classmethod
    def from_blob_proto(cls, proto: caffe2_pb2.BlobProto) -> Counter:
        tensor = proto.tensor
        if (list(tensor.dims) != [1] or tensor.data_type != caffe2_pb2.TensorProto.INT64
                or len(tensor.int64_data) != 1):
            raise PyCaffe2Error("a saved counter must be one int64 value, got dims "
                                f"{list(tensor.dims)} with {len(tensor.int64_data)} int64 values")
        return cls(tensor.int64_data[0])


def check_count(count) -> int:
    count = int(count)
    if not INT64_MIN <= count <= INT64_MAX:
        raise PyCaffe2Error(f"count {count} is outside int64")
    return count


# Index key types: Caffe2's IntIndexCreate, LongIndexCreate, StringIndexCreate.
INDEX_KEY_TYPES = {"int32": np.dtype(np.int32), "int64": np.dtype(np.int64), "string": np.dtype(object)}


class Index(ObjectBlob):
    """Caffe2's Index<T>: keys get ids 1, 2, ... as they are first seen (0 is for
    unknown keys); at most max_elements - 1 keys (the count includes entry 0).
    A frozen index gives 0 for unknown keys instead of adding them."""

    type_name = "std::unique_ptr<caffe2::IndexBase>"

    def __init__(self, key_type: str, max_elements: int):
        self.key_type, self.max_elements = key_type, int(max_elements)
        self.ids: dict = {}
        self.keys: list = []
        self.frozen = False
        self.lock = threading.Lock()  # ops of a concurrent net may share the index

    def __repr__(self) -> str:
        return f"Index({self.key_type}, {len(self.keys)} keys, max_elements={self.max_elements})"

    @property
    def dtype(self) -> np.dtype:
        return INDEX_KEY_TYPES[self.key_type]

    def size(self) -> int:
        """Entries including the zero entry, as Caffe2's Size()."""
        return len(self.keys) + 1

    def check_keys(self, keys, what: str) -> np.ndarray:
        """The keys as this index holds them; raise unless their type is its key type."""
        keys = np.asarray(keys)
        if self.key_type == "string":
            if keys.dtype.kind not in "OSU" or (keys.dtype.kind == "O" and not all(
                    isinstance(k, (bytes, str)) for k in keys.ravel())):
                raise PyCaffe2Error(f"{what} must be a string tensor for a string index, got {keys.dtype}")
            return np.array([k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys.ravel()],
                            dtype=object).reshape(keys.shape)
        if keys.dtype != self.dtype:
            raise PyCaffe2Error(f"{what} must be {self.key_type} for an {self.key_type} index "
                                f"(wrong dictionary type for the keys), got {keys.dtype}")
        return keys

    def _room(self, new: int) -> None:
        if self.size() + new > self.max_elements:
            raise PyCaffe2Error(f"the index is full: {new} new keys do not fit in max_elements="
                                f"{self.max_elements} (it holds {len(self.keys)} keys and the zero entry)")

    def get(self, keys) -> np.ndarray:
        """Ids of `keys` (int64, their shape); an unfrozen index first adds the
        unknown ones, in order of first appearance, or raises when they do not fit."""
        keys = self.check_keys(keys, "keys")
        flat = [k.item() if isinstance(k, np.generic) else k for k in keys.ravel()]
        with self.lock:
            return self._get(flat, keys.shape)

    def _get(self, flat: list, shape) -> np.ndarray:
        if not self.frozen:
            new = list(dict.fromkeys(k for k in flat if k not in self.ids))
            self._room(len(new))
            for key in new:  # nothing can fail from here on
                self.keys.append(key)
                self.ids[key] = len(self.keys)
        return np.array([self.ids.get(k, 0) for k in flat], dtype=np.int64).reshape(shape)

    def load(self, items) -> None:
        """Adds `items` (1-D, no key twice, none already held) with the next ids."""
        items = self.check_keys(items, "items")
        if items.ndim != 1:
            raise PyCaffe2Error(f"items must be 1-D, got shape {list(items.shape)}")
        flat = [k.item() if isinstance(k, np.generic) else k for k in items]
        with self.lock:
            self._load(flat)

    def _load(self, flat: list) -> None:
        seen = set(self.ids)
        for key in flat:
            if key in seen:
                raise PyCaffe2Error(f"items repeat the key {key!r}")
            seen.add(key)
        self._room(len(flat))
        for key in flat:
            self.keys.append(key)
            self.ids[key] = len(self.keys)

    def store(self) -> np.ndarray:
        """The keys in id order (id 1 first)."""
        return np.array(self.keys, dtype=self.dtype).reshape(len(self.keys))

    def blob_proto(self, name: str) -> caffe2_pb2.BlobProto:
        tensor = array_to_tensor(self.store(), name)
        return caffe2_pb2.BlobProto(name=name, type=self.type_name, tensor=tensor,
                                    content=f"{self.max_elements} {int(self.frozen)}".encode())

    @classmethod
    def from_blob_proto(cls, proto: caffe2_pb2.BlobProto) -> Index:
        parts = proto.content.split()
        try:
            max_elements, frozen = int(parts[0]), bool(int(parts[1])) if len(parts) > 1 else False
        except (IndexError, ValueError):
            raise PyCaffe2Error(f"a saved index needs 'max_elements frozen' as its content, "
                                f"got {proto.content[:40]!r}") from None
        items = tensor_to_array(proto.tensor)
        key_type = {np.dtype(np.int32): "int32", np.dtype(np.int64): "int64",
                    np.dtype(object): "string"}.get(items.dtype)
        if key_type is None:
            raise PyCaffe2Error(f"a saved index holds {items.dtype} keys; only int32, int64 and strings")
        index = cls(key_type, max_elements)
        index.load(items.reshape(-1))
        index.frozen = frozen
        return index


MAP_TYPE_NAMES = {np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}


class Map(ObjectBlob):
    """Caffe2's std::unordered_map<KEY_T, VALUE_T> blob (int32 or int64 keys and
    values): keys in insertion order; a key given twice keeps its first value."""

    def __init__(self, key_dtype, value_dtype):
        self.key_dtype, self.value_dtype = np.dtype(key_dtype), np.dtype(value_dtype)
        for dtype in (self.key_dtype, self.value_dtype):
            if dtype not in MAP_TYPE_NAMES:
                raise PyCaffe2Error(f"map keys and values must be int32 or int64, not {dtype}")
        self.items: dict[int, int] = {}

    @property
    def type_name(self) -> str:
        return map_type_name(self.key_dtype, self.value_dtype)

    def __repr__(self) -> str:
        return f"Map({self.key_dtype}->{self.value_dtype}, {len(self.items)} items)"

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        for key, value in zip(keys.ravel().tolist(), values.ravel().tolist()):
            self.items.setdefault(key, value)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array(list(self.items), self.key_dtype).reshape(len(self.items)),
                np.array(list(self.items.values()), self.value_dtype).reshape(len(self.items)))

    def blob_proto(self, name: str) -> caffe2_pb2.BlobProto:
        protos = caffe2_pb2.TensorProtos(protos=[array_to_tensor(a, name) for a in self.arrays()])
        return caffe2_pb2.BlobProto(name=name, type=self.type_name, content=protos.SerializeToString())

    @classmethod
    def from_blob_proto(cls, proto: caffe2_pb2.BlobProto) -> Map:
        key_dtype, value_dtype = MAP_TYPES[proto.type]
        protos = caffe2_pb2.TensorProtos()
        try:
            protos.ParseFromString(proto.content)
        except Exception:  # noqa: BLE001 - any parse failure is a bad file
            raise PyCaffe2Error("a saved map's content is not a TensorProtos") from None
        if len(protos.protos) != 2:
            raise PyCaffe2Error(f"a saved map holds 2 tensors (keys, values), got {len(protos.protos)}")
        keys, values = (tensor_to_array(t) for t in protos.protos)
        if keys.dtype != key_dtype or values.dtype != value_dtype or keys.size != values.size:
            raise PyCaffe2Error(f"a saved {proto.type} holds {keys.size} {keys.dtype} keys and "
                                f"{values.size} {values.dtype} values")
        result = cls(key_dtype, value_dtype)
        result.add(keys, values)
        return result


def map_type_name(key_dtype, value_dtype) -> str:
    return f"(std::unordered_map<{MAP_TYPE_NAMES[key_dtype]}, {MAP_TYPE_NAMES[value_dtype]}>)"


MAP_TYPES = {map_type_name(k, v): (k, v) for k in MAP_TYPE_NAMES for v in MAP_TYPE_NAMES}

# BlobProto type -> the class that reads it back.
OBJECT_TYPES = {cls.type_name: cls for cls in (Counter, Index)} | dict.fromkeys(MAP_TYPES, Map)


def wrap_int64(value: int) -> int:
    """An integer wrapped into int64, as Caffe2's int64 arithmetic wraps."""
    return (value + 2 ** 63) % 2 ** 64 - 2 ** 63


class StatRegistry(ObjectBlob):
    """Caffe2's StatRegistry: int64 stat values keyed by name. GLOBAL_STATS is the
    process-wide one (Caffe2's StatRegistry::get(), not reset with a workspace)."""

    type_name = "std::unique_ptr<caffe2::StatRegistry>"

    def __init__(self):
        self.values: dict[bytes, int] = {}
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StatRegistry({len(self.values)} stats)"

    def update(self, pairs) -> None:
        """Adds each (key, value) to its stat (a new stat starts at 0)."""
        with self.lock:
            for key, value in pairs:
                self.values[key] = wrap_int64(self.values.get(key, 0) + int(value))

    def publish(self, reset: bool) -> list[tuple[bytes, int]]:
        """(key, value) of every stat, in key order; `reset` sets them back to 0."""
        with self.lock:
            data = sorted(self.values.items())
            if reset:
                self.values = dict.fromkeys(self.values, 0)
        return data


GLOBAL_STATS = StatRegistry()


class Timer(ObjectBlob):
    """Caffe2's TimerInstance: a wall-clock timer owned by its TimerBegin op; ending
    it adds the elapsed nanoseconds to the average stat <name>/time_ns."""

    type_name = "caffe2::TimerInstance*"

    def __init__(self, name: str):
        self.name, self.start = name, None

    def __repr__(self) -> str:
        return f"Timer({self.name!r}, {'running' if self.start is not None else 'stopped'})"

    def begin(self) -> None:
        if self.start is not None:
            raise PyCaffe2Error(f"TimerBegin on timer '{self.name}', which is already running")
        self.start = time.perf_counter_ns()

    def get_ns(self) -> int:
        if self.start is None:
            raise PyCaffe2Error(f"timer '{self.name}' is stopped (TimerBegin starts it)")
        return time.perf_counter_ns() - self.start

    def end(self) -> int:
        nanos = self.get_ns()
        self.start = None
        GLOBAL_STATS.update([(f"{self.name}/time_ns/sum".encode(), nanos),
                             (f"{self.name}/time_ns/count".encode(), 1)])
        return nanos
