"""The CUDA device: blobs are PyCUDA GPUArrays, kernels are this project's CUDA C.

PyCUDA is imported lazily, on the first request for the device, and the
reason it cannot be used (no PyCUDA, no driver, no GPU) is remembered, so
everything on the CPU works without it and asking for CUDA gives one clear
error. Kernel sources live beside their op family (`operators/<family>.cu`, sharing
`operators/common.cuh`);
each is compiled once per process with PyCUDA's SourceModule, which caches
the binary on disk (`PYCAFFE2_CUDA_CACHE`, default ~/.cache/pycaffe2/cuda).
Kernels take float32 only, as most of Caffe2's CUDA kernels did.
"""
from __future__ import annotations

import atexit
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from pycaffe2.errors import PyCaffe2Error

OPERATORS_DIR = Path(__file__).resolve().parents[2] / "operators"
BLOCK = 256
MAX_BLOCKS = 65535  # grid.x cap of the launchers; grid-stride loops make any cap correct
NULL = np.uintp(0)  # a kernel's pointer argument for an absent or unused input


class CUDAUnavailable(PyCaffe2Error):
    """CUDA was asked for and cannot be used here; the message says why."""


def is_gpu_array(value) -> bool:
    return hasattr(value, "gpudata") and hasattr(value, "get")


@lru_cache(maxsize=1)
def _driver_state():
    """(pycuda modules, None) or (None, reason)."""
    try:
        import pycuda.driver as driver
        import pycuda.gpuarray as gpuarray
        from pycuda.compiler import SourceModule
    except ImportError as exc:
        return None, f"PyCUDA is not installed ({exc}); pip install 'pycaffe2[cuda]' needs a CUDA toolkit"
    except Exception as exc:  # PyCUDA present but its driver library is not: an OSError or ImportError
        return None, f"PyCUDA cannot load the CUDA driver library: {exc}"
    try:
        driver.init()
        count = driver.Device.count()
    except Exception as exc:  # pycuda.driver.Error subclasses: no driver, wrong version
        return None, f"the CUDA driver does not start: {exc}"
    if count == 0:
        return None, "the CUDA driver found no GPU"
    context = driver.Device(0).make_context()
    atexit.register(context.pop)
    return (driver, gpuarray, SourceModule), None


def unavailable_reason() -> str | None:
    """None when CUDA works here, else why not."""
    return _driver_state()[1]


def _modules():
    modules, reason = _driver_state()
    if modules is None:
        raise CUDAUnavailable(f"CUDA is not available: {reason}")
    return modules


class CUDADevice:
    name = "cuda"

    @staticmethod
    def put(value):
        """A fed value as a float32 GPUArray (a private copy)."""
        array = np.array(value, order="C")  # a copy; keeps 0-d arrays 0-d
        if array.dtype != np.float32 and array.dtype.kind == "f":
            raise PyCaffe2Error(f"CUDA blobs are float32, got {array.dtype}")
        return _modules()[1].to_gpu(array)

    @staticmethod
    def fetch(value) -> np.ndarray:
        return value.get()


def reshape(array, shape):
    """array.reshape(shape) for NumPy and GPU arrays alike. PyCUDA cannot reshape an
    empty GPUArray (its gpudata is None): that gets a new empty array."""
    shape = tuple(int(d) for d in shape)
    if is_gpu_array(array) and array.size == 0:
        return array if array.shape == shape else empty(shape, array.dtype)
    return array.reshape(shape)


def as_gpu(value):
    """A kernel input on the GPU: GPUArrays as they are, NumPy arrays copied over."""
    return value if is_gpu_array(value) else CUDADevice.put(value)


def copy_to_gpu(value):
    """CopyCPUToGPU: a new GPUArray holding the value."""
    return CUDADevice.put(value.get() if is_gpu_array(value) else value)


def copy_to_cpu(value) -> np.ndarray:
    """CopyGPUToCPU: a NumPy copy."""
    return value.get() if is_gpu_array(value) else np.array(value, copy=True)


def empty_like(array):
    return _modules()[1].empty(array.shape, array.dtype)


def empty(shape, dtype=np.float32):
    return _modules()[1].empty(tuple(shape), dtype)


def source(source_name: str) -> str:
    return (OPERATORS_DIR / source_name).read_text()


def cache_dir() -> str:
    cache = Path(os.environ.get("PYCAFFE2_CUDA_CACHE", Path.home() / ".cache" / "pycaffe2" / "cuda"))
    cache.mkdir(parents=True, exist_ok=True)
    return str(cache)


@lru_cache(maxsize=None)
def _module(source_name: str):
    return _modules()[2](source(source_name), cache_dir=cache_dir(), no_extern_c=True,
                         include_dirs=[str(OPERATORS_DIR)])


_running = threading.local()  # .stream: the stream of the net this thread runs, if any


def synchronize() -> None:
    """Wait for every kernel and copy queued on the GPU."""
    _modules()[0].Context.synchronize()


def new_stream():
    return _modules()[0].Stream()


@contextmanager
def on_stream(stream):
    """Launches of this thread go to `stream` (a net's own) inside the block. Copies made
    by to_gpu and get stay on the default stream, which waits for every other, so they
    need no event to see a net's results."""
    previous = getattr(_running, "stream", None)
    _running.stream = stream
    try:
        yield
    finally:
        _running.stream = previous


def function(source_name: str, kernel: str):
    """A compiled kernel of operators/<source_name>, launched on the running net's stream."""
    compiled = _module(source_name).get_function(kernel)

    def launch_on_stream(*args, block, grid):
        compiled(*args, block=block, grid=grid, stream=getattr(_running, "stream", None))
    return launch_on_stream


def launch(source_name: str, kernel: str, count: int, *args) -> None:
    """Run a one-thread-per-element kernel over `count` elements (grid-stride loops
    inside the kernels make any grid size correct). Pass GPUArrays themselves, not
    their .gpudata: a reshaped view's gpudata is a bare int, which PyCUDA refuses."""
    if count == 0:
        return
    blocks = min((count + BLOCK - 1) // BLOCK, MAX_BLOCKS)
    function(source_name, kernel)(*args, block=(BLOCK, 1, 1), grid=(blocks, 1))


ROW_THREADS = 256  # a power of two, at most common.cuh's MAX_THREADS


def launch_rows(source_name: str, kernel: str, rows: int, *args) -> None:
    """Run a row kernel: one block of ROW_THREADS per row (blocks stride over the
    rows when there are more than MAX_BLOCKS)."""
    if rows == 0:
        return
    function(source_name, kernel)(*args, block=(ROW_THREADS, 1, 1), grid=(min(rows, MAX_BLOCKS), 1))


def require_float32(op_type: str, *arrays) -> None:
    for array in arrays:
        if array.dtype != np.float32:
            raise ValueError(f"{op_type}: the CUDA kernel takes float32, got {array.dtype}")


def float32_inputs(op_type: str, *values) -> list:
    """A launcher's inputs on the GPU, refused unless float32."""
    arrays = [as_gpu(value) for value in values]
    require_float32(op_type, *arrays)
    return arrays


def elementwise(op_type: str, source_name: str, kernel: str, arg_names=()):
    """A launcher for a kernel(inputs..., output, float args..., n) over inputs of one shape."""
    def run(*inputs, **args):
        inputs = float32_inputs(op_type, *inputs)
        for name, value in zip("ABCD", inputs[1:]):
            if value.shape != inputs[0].shape:
                raise ValueError(f"{op_type}: input {name} is {list(value.shape)} but input 0 is "
                                 f"{list(inputs[0].shape)}: they must match")
        out = empty_like(inputs[0])
        launch(source_name, kernel, out.size, *inputs, out,
               *[np.float32(args[name]) for name in arg_names], np.int64(out.size))
        return out
    run.__name__ = f"{kernel}_cuda"
    return run
