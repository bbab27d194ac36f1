"""Caffe2's `dyndep`: loading C++ operator libraries at run time.

pycaffe2's ops are Python (schemas + kernels), so there is nothing to load. As in
Caffe2, a library path that does not exist is reported and ignored (scripts name
optional libraries); an existing one is refused, saying why.
"""
from __future__ import annotations

import logging
import os

from pycaffe2.errors import PyCaffe2Error

_log = logging.getLogger(__name__)


def InitOpsLibrary(name: str, trigger_lazy: bool = True) -> None:
    if not os.path.exists(name):
        _log.warning("ignoring %s: the ops library does not exist", name)
        return
    raise PyCaffe2Error(f"cannot load C++ ops library {name}: pycaffe2 ops are YAML schemas with "
                        "Python kernels; add your own with pycaffe2.custom_ops (load_schema_dir, "
                        "register_cpu)")


def GetImportedOpsLibraries() -> set:
    return set()
