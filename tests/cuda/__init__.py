"""CUDA tests. Each test module whose device checks cover CUDA kernels lists
their op types in a module-level DEVICE_CHECKED; test_devices.py gathers them
all, so every registered CUDA kernel is held to a check against its CPU twin."""
import pytest


def many_rows(shape: tuple):
    """A shape with more rows than a real grid has blocks (65535): each row is a block's
    worth of fibers on the emulator, so such a case runs on a real GPU only. The
    emulator caps grids at 64 blocks, so a few hundred rows test the striding there."""
    return pytest.param(shape, marks=pytest.mark.real_gpu_only, id=str(shape))
