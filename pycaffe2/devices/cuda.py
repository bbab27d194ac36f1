"""The CUDA device: blobs are PyCUDA GPUArrays; a net's launches go to its stream.

PyCUDA is imported lazily, on the first request for the device, and the
reason it cannot be used (no PyCUDA, no driver, no GPU) is remembered, so
everything on the CPU works without it and asking for CUDA gives one clear
error. What the device runs on is a Backend (PyCUDA's driver, gpuarray and
SourceModule, or stand-ins with the same calls, and the launchers' grid cap);
`use_backend` swaps it, e.g. for the CPU emulation the tests run kernels on.
The kernels and their launch helpers live in operators/ (operators/_cuda.py).
"""
from __future__ import annotations

import atexit
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pycaffe2.errors import CUDAUnavailable, PyCaffe2Error
from pycaffe2.qtensor import Int8Tensor

MAX_BLOCKS = 65535  # grid.x cap of the launchers; grid-stride loops make any cap correct


@dataclass(frozen=True)
class Backend:
    """What the CUDA device runs on. `driver`, `gpuarray` and `SourceModule` are
    PyCUDA's modules (or stand-ins offering the same calls); `max_blocks` caps
    the launchers' grids."""
    driver: object
    gpuarray: object
    SourceModule: object
    max_blocks: int = MAX_BLOCKS

    def compile(self, source: str, include_dirs, cache_dir: str):
        """A compiled module of CUDA C source; its get_function(name) gives kernels."""
        return self.SourceModule(source, cache_dir=cache_dir, no_extern_c=True,
                                 include_dirs=list(include_dirs))


def is_gpu_array(value) -> bool:
    return hasattr(value, "gpudata") and hasattr(value, "get")


@lru_cache(maxsize=1)
def _pycuda():
    """(PyCUDA's Backend, None) or (None, why it cannot be used)."""
    try:
        from pycuda import driver, gpuarray
        from pycuda.compiler import SourceModule
    except ImportError as exc:
        return None, f"PyCUDA is not installed ({exc}); pip install 'pycaffe2[cuda]' needs a CUDA toolkit"
    except OSError as exc:  # PyCUDA present but its driver library is not
        return None, f"PyCUDA cannot load the CUDA driver library: {exc}"
    try:
        driver.init()
        count = driver.Device.count()
    except driver.Error as exc:  # no driver, wrong version
        return None, f"the CUDA driver does not start: {exc}"
    if count == 0:
        return None, "the CUDA driver found no GPU"
    context = driver.Device(0).make_context()
    atexit.register(context.pop)
    return Backend(driver, gpuarray, SourceModule), None


_chosen: Backend | None = None  # set by use_backend; None: real PyCUDA


def use_backend(backend: Backend | None) -> Backend | None:
    """Run the CUDA device on `backend` from now on (None: the real PyCUDA);
    returns the backend chosen before, so a caller can put it back."""
    global _chosen
    previous, _chosen = _chosen, backend
    return previous


def _state():
    return (_chosen, None) if _chosen is not None else _pycuda()


def unavailable_reason() -> str | None:
    """None when CUDA works here, else why not."""
    return _state()[1]


def backend() -> Backend:
    """The backend in use; raises CUDAUnavailable, saying why, when there is none."""
    chosen, reason = _state()
    if chosen is None:
        raise CUDAUnavailable(f"CUDA is not available: {reason}")
    return chosen


class CUDADevice:
    name = "cuda"

    @staticmethod
    def put(value):
        """A fed value as a float32 GPUArray (a private copy)."""
        if isinstance(value, Int8Tensor):
            raise TypeError("an Int8 blob lives on the CPU (Caffe2's Int8TensorCPU); feed it without "
                            "a CUDA device option")
        array = np.array(value, order="C")  # a copy; keeps 0-d arrays 0-d
        if array.dtype != np.float32 and array.dtype.kind == "f":
            raise PyCaffe2Error(f"CUDA blobs are float32, got {array.dtype}")
        return backend().gpuarray.to_gpu(array)

    @staticmethod
    def fetch(value) -> np.ndarray:
        return value.get()


_running = threading.local()  # .stream: the stream of the net this thread runs, if any


def synchronize() -> None:
    """Wait for every kernel and copy queued on the GPU."""
    backend().driver.Context.synchronize()


def new_stream():
    return backend().driver.Stream()


def current_stream():
    """The stream this thread's launches go to (None: the default stream)."""
    return getattr(_running, "stream", None)


@contextmanager
def on_stream(stream):
    """Launches of this thread go to `stream` (a net's own) inside the block. Copies made
    by to_gpu and get stay on the default stream, which waits for every other, so they
    need no event to see a net's results."""
    previous = current_stream()
    _running.stream = stream
    try:
        yield
    finally:
        _running.stream = previous
