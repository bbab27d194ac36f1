"""Map kernels: CreateMap, KeyValueToMap, MapToKeyValue over pycaffe2.objects.Map."""
from __future__ import annotations

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.objects import Map
from pycaffe2.operators.counter import describe
from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.map import key_values, map_dtype


@register_cpu("CreateMap")
def create_map(*, key_dtype, value_dtype):
    return Map(map_dtype(key_dtype, "key_dtype"), map_dtype(value_dtype, "value_dtype"))


@register_cpu("KeyValueToMap")
def key_value_to_map(keys, values):
    keys, values = np.asarray(keys), np.asarray(values)
    key_values((keys.dtype, keys.shape), (values.dtype, values.shape))
    result = Map(keys.dtype, values.dtype)
    result.add(keys, values)
    return result


@register_cpu("MapToKeyValue")
def map_to_key_value(value, *, input_names):
    if not isinstance(value, Map):
        raise PyCaffe2Error(f"input '{input_names[0]}' must be a map made by CreateMap or KeyValueToMap, "
                            f"got {describe(value)}")
    return value.arrays()
