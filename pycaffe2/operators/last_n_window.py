"""LastNWindowCollector: a ring buffer of the last num_to_collect rows, in
tensors it replaces (never changing its inputs), holding the mutex if given."""
from __future__ import annotations

import contextlib

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.operators.counter import describe
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.last_n_window import check_collector


@register_cpu("LastNWindowCollector")
def last_n_window_collector(buffer, cursor, data, *extra, num_to_collect, num_outputs, input_names):
    buffer, cursor, data = np.asarray(buffer), np.asarray(cursor), np.asarray(data)
    mutex = extra[0] if extra else None
    visited = np.asarray(extra[1]) if len(extra) > 1 else None
    check_collector(3 + len(extra), num_outputs, data.shape, (cursor.dtype, cursor.shape),
                    None if visited is None else (visited.dtype, visited.shape))
    if mutex is not None and not hasattr(mutex, "acquire"):
        raise PyCaffe2Error(f"input '{input_names[3]}' must be a mutex made by CreateMutex, got {describe(mutex)}")
    with mutex if mutex is not None else contextlib.nullcontext():
        return _collect(buffer, int(cursor), data, visited, num_to_collect, num_outputs)


def _collect(buffer, cursor, data, visited, limit, num_outputs):
    initialized = buffer.size > 0
    if initialized and (buffer.ndim != data.ndim or buffer.shape[1:] != data.shape[1:]
                        or buffer.dtype != data.dtype):
        raise PyCaffe2Error(f"the buffer {list(buffer.shape)} {buffer.dtype} does not hold rows of DATA "
                            f"{list(data.shape)} {data.dtype}")
    if initialized and buffer.shape[0] > limit:
        raise PyCaffe2Error(f"the buffer holds {buffer.shape[0]} rows, more than num_to_collect={limit}")
    rows = data.shape[0]
    outputs = []
    if num_outputs == 3:
        count = int(visited.reshape(-1)[0]) if initialized else 0
        if count < 0:
            raise PyCaffe2Error(f"NUM_VISITED must be >= 0, got {count}")
        outputs = [np.full(visited.shape, count + rows, np.int64)]
    if rows == 0:
        return (buffer if initialized else data.copy(), np.array(cursor, np.int32), *outputs)
    kept = buffer.shape[0] if initialized else 0
    new_rows = min(limit, kept + min(rows, limit))
    result = np.zeros((new_rows, *data.shape[1:]), data.dtype)
    if initialized:
        result[:kept] = buffer
    cursor = cursor if initialized else 0
    if not 0 <= cursor < new_rows:
        raise PyCaffe2Error(f"next cursor {cursor} is outside the buffer's {new_rows} rows")
    if rows > limit:
        result[:] = data[rows - limit:]
        return (result, np.array(0, np.int32), *outputs)
    first = min(rows + cursor, limit) - cursor
    result[cursor:cursor + first] = data[:first]
    result[:rows - first] = data[first:]
    return (result, np.array((cursor + rows) % limit, np.int32), *outputs)
