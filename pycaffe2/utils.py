"""Caffe2's `utils` names that scripts and op tests use: MakeArgument and the
NCHW <-> NHWC transposes."""
from __future__ import annotations

import numpy as np

from pycaffe2.schema.args import make_argument


def MakeArgument(key: str, value):
    """An Argument by Caffe2's MakeArgument rules (the value's own kind)."""
    return make_argument(str(key), value)


def NCHW2NHWC(tensor) -> np.ndarray:
    """Channels (axis 1) moved last."""
    tensor = np.asarray(tensor)
    return tensor.transpose((0,) + tuple(range(2, tensor.ndim)) + (1,))


def NHWC2NCHW(tensor) -> np.ndarray:
    """Channels (last axis) moved to axis 1."""
    tensor = np.asarray(tensor)
    return tensor.transpose((0, tensor.ndim - 1) + tuple(range(1, tensor.ndim - 1)))


def debug(function):
    """Caffe2 dropped into pdb on an exception; here the function is returned as is."""
    return function
