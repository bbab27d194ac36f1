"""What the CUDA launchers of the op families use: compiled kernels, launches,
GPU arrays. Family modules import it as `from pycaffe2.operators import _cuda as cuda`.

Kernel sources live beside their op family (`operators/<family>.cu`, sharing
`operators/common.cuh`); each is compiled once per process and backend by the
device's backend (PyCUDA's SourceModule, which caches the binary on disk:
`PYCAFFE2_CUDA_CACHE`, default ~/.cache/pycaffe2/cuda). Kernels take float32
only, as most of Caffe2's CUDA kernels did.
"""
from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from pycaffe2.devices.cuda import CUDADevice, backend, current_stream, is_gpu_array
from pycaffe2.errors import ShapeError

OPERATORS_DIR = Path(__file__).resolve().parent
BLOCK = 256
ROW_THREADS = 256  # a power of two, at most common.cuh's MAX_THREADS
NULL = np.uintp(0)  # a kernel's pointer argument for an absent or unused input


def max_blocks() -> int:
    """The launchers' grid.x cap (the backend's: the emulator's is small, so
    rows stride over blocks sooner); grid-stride loops make any cap correct."""
    return backend().max_blocks


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
    return backend().gpuarray.empty(array.shape, array.dtype)


def empty(shape, dtype=np.float32):
    return backend().gpuarray.empty(tuple(shape), dtype)


def source(source_name: str) -> str:
    return (OPERATORS_DIR / source_name).read_text()


def cache_dir() -> str:
    cache = Path(os.environ.get("PYCAFFE2_CUDA_CACHE", Path.home() / ".cache" / "pycaffe2" / "cuda"))
    cache.mkdir(parents=True, exist_ok=True)
    return str(cache)


@cache
def _compiled(on_backend, source_name: str):
    return on_backend.compile(source(source_name), [str(OPERATORS_DIR)], cache_dir())


def module(source_name: str):
    """operators/<source_name> compiled by the backend in use (once per backend)."""
    return _compiled(backend(), source_name)


def function(source_name: str, kernel: str):
    """A compiled kernel of operators/<source_name>, launched on the running net's stream."""
    compiled = module(source_name).get_function(kernel)

    def launch_on_stream(*args, block, grid):
        compiled(*args, block=block, grid=grid, stream=current_stream())
    return launch_on_stream


def launch(source_name: str, kernel: str, count: int, *args) -> None:
    """Run a one-thread-per-element kernel over `count` elements (grid-stride loops
    inside the kernels make any grid size correct). Pass GPUArrays themselves, not
    their .gpudata: a reshaped view's gpudata is a bare int, which PyCUDA refuses."""
    if count == 0:
        return
    blocks = min((count + BLOCK - 1) // BLOCK, max_blocks())
    function(source_name, kernel)(*args, block=(BLOCK, 1, 1), grid=(blocks, 1))


def launch_rows(source_name: str, kernel: str, rows: int, *args) -> None:
    """Run a row kernel: one block of ROW_THREADS per row (blocks stride over the
    rows when there are more than max_blocks())."""
    if rows == 0:
        return
    function(source_name, kernel)(*args, block=(ROW_THREADS, 1, 1), grid=(min(rows, max_blocks()), 1))


def require_float32(*arrays) -> None:
    for array in arrays:
        if array.dtype != np.float32:
            raise ShapeError(f"the CUDA kernel takes float32, got {array.dtype}")


def float32_inputs(*values) -> list:
    """A launcher's inputs on the GPU, refused unless float32."""
    arrays = [as_gpu(value) for value in values]
    require_float32(*arrays)
    return arrays


def elementwise(source_name: str, kernel: str, arg_names=()):
    """A launcher for a kernel(inputs..., output, float args..., n) over inputs of one shape."""
    def run(*inputs, **args):
        inputs = float32_inputs(*inputs)
        for index, value in enumerate(inputs[1:], 1):
            if value.shape != inputs[0].shape:
                raise ShapeError(f"input {index} is {list(value.shape)} but input 0 is "
                                 f"{list(inputs[0].shape)}: they must match")
        out = empty_like(inputs[0])
        launch(source_name, kernel, out.size, *inputs, out,
               *[np.float32(args[name]) for name in arg_names], np.int64(out.size))
        return out
    run.__name__ = f"{kernel}_cuda"
    return run
