"""String test kernels (NumPy): StringStartsWith and StringEndsWith. String
tensors hold bytes (str elements are read as UTF-8); the check of the input is
schema/inference/string_match.py's."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.string_match import string_input


def _as_bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _test(strings: np.ndarray, affix: str, method: str) -> np.ndarray:
    string_input(strings.shape, strings.dtype.name)
    affix = _as_bytes(affix)
    out = np.fromiter((getattr(_as_bytes(s), method)(affix) for s in strings.ravel()), bool, strings.size)
    return out.reshape(strings.shape)


@register_cpu("StringStartsWith")
def string_starts_with(strings, *, prefix):
    return _test(strings, prefix, "startswith")


@register_cpu("StringEndsWith")
def string_ends_with(strings, *, suffix):
    return _test(strings, suffix, "endswith")
