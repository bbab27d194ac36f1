"""Caffe2's scope module: the name and device scopes, which live in core (one
thread-local state); Caffe2's rnn_cell and tests import them from here."""
from pycaffe2.core import CurrentDeviceScope, CurrentNameScope, DeviceScope, NameScope

__all__ = ["CurrentDeviceScope", "CurrentNameScope", "DeviceScope", "NameScope"]
