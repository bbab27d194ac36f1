"""Stats kernels: StatRegistryCreate, StatRegistryUpdate, StatRegistryExport and
the Put ops (AveragePut, IncrementPut, StdDevPut) over pycaffe2.objects.StatRegistry
(a registry blob, or GLOBAL_STATS). Values are checked before any stat changes."""
from __future__ import annotations

import math
import time

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.objects import GLOBAL_STATS, INT64_MAX, INT64_MIN, StatRegistry, Timer, wrap_int64
from pycaffe2.operators.counter import describe
from pycaffe2.operators.registry import register_cpu

PUT_TYPES = "iuf"  # Caffe2's Put ops take integer and float tensors (not bool)


def registry_of(handle, input_names, position: int) -> StatRegistry:
    if len(input_names) <= position:
        return GLOBAL_STATS
    if not isinstance(handle, StatRegistry):
        raise PyCaffe2Error(f"input '{input_names[position]}' must be a stat registry made by "
                            f"StatRegistryCreate, got {describe(handle)}")
    return handle


def _keys(keys) -> list[bytes]:
    keys = np.asarray(keys)
    if keys.dtype.kind not in "OSU" or not all(isinstance(k, (bytes, str)) for k in keys.ravel()):
        raise PyCaffe2Error(f"keys must be a string tensor, got {keys.dtype}")
    return [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys.ravel()]


@register_cpu("StatRegistryCreate")
def stat_registry_create():
    return StatRegistry()


@register_cpu("StatRegistryUpdate")
def stat_registry_update(keys, values, *handle, input_names):
    registry = registry_of(handle[0] if handle else None, input_names, 2)
    keys, values = _keys(keys), np.asarray(values)
    if values.dtype != np.int64:
        raise PyCaffe2Error(f"values must be int64, got {values.dtype}")
    if values.size != len(keys):
        raise PyCaffe2Error(f"keys and values must hold as many elements, got {len(keys)} and {values.size}")
    registry.update(zip(keys, values.ravel().tolist()))
    return ()


@register_cpu("StatRegistryExport")
def stat_registry_export(*handle, reset, input_names):
    registry = registry_of(handle[0] if handle else None, input_names, 0)
    data = registry.publish(bool(reset))
    now = time.time_ns()
    keys = np.empty(len(data), dtype=object)
    keys[:] = [key for key, _ in data]
    return (keys, np.array([value for _, value in data], np.int64).reshape(len(data)),
            np.full(len(data), now, np.int64))


def event(value, *, name, magnitude_expand, bound, default_value) -> int:
    """Caffe2's TemplatePutOp: the int64 event of the value's first element."""
    value = np.asarray(value)
    if value.dtype.kind not in PUT_TYPES:
        raise PyCaffe2Error(f"value of stat '{name}' must be a numeric tensor, got {value.dtype}")
    if value.size:
        x = value.reshape(-1)[0]
    elif default_value is None:
        raise PyCaffe2Error(f"default_value must be given for the empty tensor of stat '{name}'")
    else:
        x = value.dtype.type(default_value) if value.dtype.kind == "f" else value.dtype.type(int(default_value))
    limit = INT64_MAX // magnitude_expand
    if value.dtype.kind == "f":
        if math.isnan(x):
            if bound:
                return 0
            raise PyCaffe2Error(f"value of stat '{name}' cannot be NaN")
        if bound and x <= -limit:
            return INT64_MIN
        if bound and x >= limit:
            return INT64_MAX
        if not bound and (math.isinf(x) or abs(math.trunc(float(x))) >= limit):
            raise PyCaffe2Error(f"value {x} of stat '{name}' is too large for magnitude_expand={magnitude_expand}")
        with np.errstate(over="ignore"):
            product = float(x * value.dtype.type(magnitude_expand))
        return max(INT64_MIN, min(INT64_MAX, math.trunc(product)))
    x = int(x)
    if bound:
        return INT64_MIN if x <= -limit else INT64_MAX if x >= limit else x * magnitude_expand
    if abs(x) >= limit:
        raise PyCaffe2Error(f"value {x} of stat '{name}' is too large for magnitude_expand={magnitude_expand}")
    return x * magnitude_expand


def _put(kind: str):
    def factory(*, stat_name, magnitude_expand, bound, default_value, input_names):
        name = stat_name if stat_name is not None else input_names[0]
        group = f"{name}/stat_value"
        first = []  # StdDevPut: the op's first event, the offset of later ones

        def run(value):
            v = event(value, name=name, magnitude_expand=magnitude_expand, bound=bound,
                      default_value=default_value)
            if kind == "increment":
                updates = [(group, v)]
            elif kind == "average":
                updates = [(f"{group}/sum", v), (f"{group}/count", 1)]
            else:
                offset = wrap_int64(v - (first or [v])[0])
                updates = [(f"{group}/sum", v), (f"{group}/count", 1), (f"{group}/sumoffset", offset),
                           (f"{group}/sumsqoffset", wrap_int64(offset * offset))]
                first[:] = first or [v]
            GLOBAL_STATS.update((key.encode("utf-8"), inc) for key, inc in updates)
            return ()
        return run
    return factory


register_cpu("AveragePut", specialize=True)(_put("average"))
register_cpu("IncrementPut", specialize=True)(_put("increment"))
register_cpu("StdDevPut", specialize=True)(_put("stddev"))


@register_cpu("TimerBegin", specialize=True)
def timer_begin(*, counter_name, output_names):
    timer = Timer(counter_name if counter_name is not None else output_names[0])

    def run():
        timer.begin()
        return timer
    return run


def timer_of(value, name: str) -> Timer:
    if not isinstance(value, Timer):
        raise PyCaffe2Error(f"input '{name}' must be a timer made by TimerBegin, got {describe(value)}")
    return value


@register_cpu("TimerEnd")
def timer_end(timer, *, input_names):
    timer_of(timer, input_names[0]).end()
    return ()


@register_cpu("TimerGetAndEnd")
def timer_get_and_end(timer, *, input_names):
    return np.array([timer_of(timer, input_names[0]).end()], np.int64)


@register_cpu("TimerGet")
def timer_get(timer, *, input_names):
    return np.array(timer_of(timer, input_names[0]).get_ns(), np.int64)
