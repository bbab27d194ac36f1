"""Counter kernels: CreateCounter, ResetCounter, CountDown, CheckCounterDone,
CountUp, RetrieveCount over pycaffe2.objects.Counter. Each holds the counter's
lock, checks first and changes the count last, so a failing op changes nothing."""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.objects import INT64_MAX, INT64_MIN, Counter, check_count
from pycaffe2.operators.registry import register_cpu


def describe(value) -> str:
    """What a blob holds, for error messages."""
    if isinstance(value, np.ndarray):
        return f"a {list(value.shape)} {value.dtype} tensor"
    return f"a {type(value).__name__}"


def counter_of(value, name: str) -> Counter:
    if not isinstance(value, Counter):
        raise PyCaffe2Error(f"input '{name}' must be a counter made by CreateCounter, got {describe(value)}")
    return value


@register_cpu("CreateCounter")
def create_counter(*, init_count):
    return Counter(init_count)


@register_cpu("ResetCounter")
def reset_counter(counter, *, init_count, num_outputs, input_names):
    counter = counter_of(counter, input_names[0])
    init_count = check_count(init_count)
    with counter.lock:
        previous, counter.count = counter.count, init_count
    return np.array(previous, np.int64) if num_outputs else ()


@register_cpu("CountDown")
def count_down(counter, *, input_names):
    counter = counter_of(counter, input_names[0])
    with counter.lock:
        if counter.count == INT64_MIN:
            raise PyCaffe2Error(f"counter '{input_names[0]}' is at the int64 minimum and would overflow")
        done = counter.count <= 0
        counter.count -= 1
    return np.array(done)


@register_cpu("CheckCounterDone")
def check_counter_done(counter, *, input_names):
    counter = counter_of(counter, input_names[0])
    with counter.lock:
        return np.array(counter.count <= 0)


@register_cpu("CountUp")
def count_up(counter, *, input_names):
    counter = counter_of(counter, input_names[0])
    with counter.lock:
        if counter.count == INT64_MAX:
            raise PyCaffe2Error(f"counter '{input_names[0]}' is at the int64 maximum and would overflow")
        previous = counter.count
        counter.count += 1
    return np.array(previous, np.int64)


@register_cpu("RetrieveCount")
def retrieve_count(counter, *, input_names):
    counter = counter_of(counter, input_names[0])
    with counter.lock:
        return np.array(counter.count, np.int64)
