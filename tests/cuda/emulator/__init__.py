"""PyCUDA's part that pycaffe2 uses, emulated on the CPU, so the device checks
(tests marked gpu) run this project's CUDA C kernels on machines without a GPU.

Kernels are compiled by g++ with cuda_on_cpu.h (threads of a block as fibers,
__syncthreads a barrier between rounds) and called through ctypes. The emulator
is stricter than a GPU where that finds bugs a GPU would hide or make random:
- every argument is checked against the kernel's parameter types: an array for a
  pointer of its element type, a NumPy scalar of the parameter's kind and size
  (PyCUDA packs whatever it is given, so a mismatch reads garbage on a GPU);
- fresh device memory is all one bits (NaN as float32), so an output element a
  kernel never writes shows up;
- every allocation is fenced by canary bytes, checked after each launch, so a
  write out of bounds is an error naming the kernel and the argument.
It is not a GPU: warps do not exist (a kernel relying on lockstep would pass
here), and launches are serialised.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pycaffe2.devices.cuda import Backend, use_backend

HEADER = Path(__file__).with_name("cuda_on_cpu.h")
FENCE = 4096      # canary bytes before and after every allocation
GARBAGE = 0xFF    # fresh memory and canaries: NaN as float32 and float64
MAX_BLOCKS = 64   # the launchers' grid cap while emulating: rows stride over blocks sooner
KERNEL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")
_launch_lock = threading.Lock()  # the fibers share one scheduler: one launch at a time


def compiler() -> str | None:
    return shutil.which("g++")


def unavailable_reason() -> str | None:
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the emulation's fiber switch is x86-64 assembly; this is {platform.machine()}"
    return None if compiler() else "no g++ to build the CPU emulation of the kernels"


class EmulatedArray:
    """Device memory: a fenced NumPy buffer offering only the part of PyCUDA's
    GPUArray this project uses (NumPy cannot read it by accident: no __array__)."""
    __array_ufunc__ = None

    def __init__(self, shape, dtype, _buffer=None, _data=None):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        if _buffer is None:
            nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
            _buffer = np.full(nbytes + 2 * FENCE, GARBAGE, np.uint8)
            _data = _buffer[FENCE:FENCE + nbytes].view(self.dtype).reshape(self.shape)
        self._buffer, self._data = _buffer, _data

    size = property(lambda self: self._data.size)
    ndim = property(lambda self: self._data.ndim)
    nbytes = property(lambda self: self._data.nbytes)
    gpudata = property(lambda self: self._data.ctypes.data)
    flags = property(lambda self: self._data.flags)

    def __len__(self):
        return len(self._data)

    def __array__(self, *args, **kwargs):
        raise TypeError("a GPU array was used as a NumPy array; call .get() to copy it to the host")

    def get(self) -> np.ndarray:
        return self._data.copy()

    def set(self, array) -> None:
        array = np.asarray(array)
        if array.shape != self.shape or array.dtype != self.dtype:
            raise ValueError(f"set: {array.dtype}{list(array.shape)} into {self.dtype}{list(self.shape)}")
        self._data[...] = array

    def _no_memory(self, method: str) -> None:
        """PyCUDA gives an empty GPUArray no memory (gpudata None): methods that pass
        it on fail there, so they fail here. Kernels get NULL for it, which is fine."""
        if self.size == 0:
            raise TypeError(f"PyCUDA cannot {method} an empty GPUArray (its gpudata is None)")

    def reshape(self, *shape):
        self._no_memory("reshape")
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        data = self._data.reshape(shape)
        return EmulatedArray(data.shape, self.dtype, self._buffer, data)

    def fill(self, value):
        self._no_memory("fill")
        self._data[...] = value
        return self

    def copy(self):
        self._no_memory("copy")
        out = EmulatedArray(self.shape, self.dtype)
        out._data[...] = self._data
        return out

    def fenced(self) -> bool:
        return bool((self._buffer[:FENCE] == GARBAGE).all() and (self._buffer[-FENCE:] == GARBAGE).all())

    def __repr__(self):
        return f"EmulatedArray({self.dtype}{list(self.shape)})"


class gpuarray:  # stands in for the module pycuda.gpuarray
    GPUArray = EmulatedArray

    @staticmethod
    def empty(shape, dtype=np.float32):
        return EmulatedArray(shape, dtype)

    @staticmethod
    def to_gpu(array):
        array = np.asarray(array, order="C")  # 0-d stays 0-d
        out = EmulatedArray(array.shape, array.dtype)
        out._data[...] = array
        return out


def _element_code(dtype: np.dtype) -> str:
    """As cuda_on_cpu.h's emu::code; NumPy's bools are bytes, as a kernel's bool or char."""
    return f"{'f' if dtype.kind == 'f' else 'i'}{dtype.itemsize}"


class EmulatedFunction:
    def __init__(self, library, name: str):
        self.name = name
        signature = library[f"emu_signature_{name}"]
        signature.restype = ctypes.c_char_p
        self.params = [code for code in signature().decode().split(",") if code]
        self._launch = library[f"emu_launch_{name}"]

    def _check(self, index: int, param: str, arg) -> None:
        where = f"kernel {self.name}, argument {index}"
        if param.startswith("p"):
            if isinstance(arg, np.integer) and arg.dtype.itemsize == 8 and arg == 0:
                return  # NULL: PyCUDA packs a pointer-sized integer as the pointer
            if not isinstance(arg, EmulatedArray):
                raise TypeError(f"{where}: a pointer parameter needs a GPU array, got {type(arg).__name__}")
            if _element_code(arg.dtype) != param[1:]:
                raise TypeError(f"{where}: the kernel reads {param[1:]} elements, the array is {arg.dtype}")
        elif not isinstance(arg, np.generic) or _element_code(arg.dtype) != param:
            kind = arg.dtype if isinstance(arg, np.generic) else type(arg).__name__
            raise TypeError(f"{where}: the parameter is {param}, got {kind} (pass a NumPy scalar of that type)")

    def __call__(self, *args, block, grid=(1, 1), stream=None, shared=0):
        if len(args) != len(self.params):
            raise TypeError(f"kernel {self.name} takes {len(self.params)} arguments, got {len(args)}")
        for index, (param, arg) in enumerate(zip(self.params, args)):
            self._check(index, param, arg)
        block, grid = tuple(block) + (1,) * (3 - len(block)), tuple(grid) + (1,) * (3 - len(grid))
        if np.prod(block) > 1024 or block[2] > 64 or max(grid[1:]) > 65535 or grid[0] >= 2**31:
            raise ValueError(f"kernel {self.name}: launch block {block} grid {grid} is beyond CUDA's limits")
        if 0 in block or 0 in grid:
            raise ValueError(f"kernel {self.name}: an empty launch (block {block}, grid {grid}) is a CUDA error")
        # Each argument's bytes: arrays by their address, scalars by value.
        values = [np.array([arg.gpudata], np.uintp) if isinstance(arg, EmulatedArray) else np.array(arg)
                  for arg in args]
        pointers = (ctypes.c_void_p * max(len(values), 1))(*[v.ctypes.data for v in values])
        dims = (ctypes.c_uint * 6)(*grid, *block)
        with _launch_lock:
            self._launch(pointers, dims)
        for index, arg in enumerate(args):
            if isinstance(arg, EmulatedArray) and not arg.fenced():
                raise RuntimeError(f"kernel {self.name} wrote outside argument {index} ({arg!r})")


def _preprocessed(source: str, include_dirs) -> str:
    """The source with its macros expanded and __global__ left standing (no shim)."""
    result = subprocess.run([compiler(), "-E", "-P", "-x", "c++", *(f"-I{d}" for d in include_dirs), "-"],
                            input=source, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"g++ could not preprocess the kernels:\n{result.stderr[-4000:]}")
    return result.stdout


class EmulatedModule:
    """SourceModule's stand-in: the source built as a shared library by g++ (cached)."""

    def __init__(self, source: str, cache_dir=None, no_extern_c=True, include_dirs=()):
        names = KERNEL.findall(_preprocessed(source, include_dirs))
        exports = "".join(
            f'\nextern "C" __attribute__((visibility("default"))) const char* emu_signature_{n}()'
            f" {{ return emu::signature(&{n}); }}"
            f'\nextern "C" __attribute__((visibility("default"))) void emu_launch_{n}(void** a, const unsigned* d)'
            f" {{ emu::launch(&{n}, a, d); }}" for n in names)
        text = source + "\n" + exports + "\n"
        flags = ["-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off",
                 "-w", "-include", str(HEADER)] + (
            ["-DEMU_REVERSE"] if os.environ.get("PYCAFFE2_CUDA_EMULATOR_ORDER") == "reverse" else []) + [f"-I{d}" for d in include_dirs]
        digest = hashlib.sha256("\0".join(
            [text, HEADER.read_text(), *flags,
             *(p.read_text() for d in include_dirs for p in sorted(Path(d).glob("*.cuh")))]).encode())
        build = Path(cache_dir or tempfile.gettempdir()) / "emulated"
        build.mkdir(parents=True, exist_ok=True)
        library = build / f"{digest.hexdigest()[:24]}.so"
        if not library.exists():
            unique = f"{os.getpid()}.{threading.get_ident()}"  # processes may build it at once
            source_file = library.with_suffix(f".{unique}.cpp")
            source_file.write_text(text)
            partial = library.with_suffix(f".{unique}.partial")
            result = subprocess.run([compiler(), *flags, str(source_file), "-o", str(partial)],
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"g++ could not build the emulated kernels:\n{result.stderr[-4000:]}")
            partial.replace(library)
            source_file.unlink()
        self._library = ctypes.CDLL(str(library))
        self._functions = {}

    def get_function(self, name: str) -> EmulatedFunction:
        if name not in self._functions:
            self._functions[name] = EmulatedFunction(self._library, name)
        return self._functions[name]


class driver:  # stands in for the module pycuda.driver
    class Context:
        @staticmethod
        def synchronize():
            pass  # launches run as they are made

    class Stream:
        """Launches run as they are made, so a stream has nothing to wait for."""
        def synchronize(self):
            pass


BACKEND = Backend(driver, gpuarray, EmulatedModule, max_blocks=MAX_BLOCKS)


@contextmanager
def emulated():
    """Run pycaffe2's CUDA device on the emulator inside the block."""
    previous = use_backend(BACKEND)
    try:
        yield
    finally:
        use_backend(previous)
