"""CUDA tests. Each tests/cuda/test_devices*.py module adds the op types its
device checks cover to DEVICE_CHECKED, so one test can hold every registered
CUDA kernel to a check against its CPU twin."""
import pytest

DEVICE_CHECKED: set[str] = set()


def many_rows(shape: tuple):
    """A shape with more rows than a real grid has blocks (65535): each row is a block's
    worth of fibers on the emulator, so such a case runs on a real GPU only. The
    emulator caps grids at 64 blocks, so a few hundred rows test the striding there."""
    return pytest.param(shape, marks=pytest.mark.real_gpu_only, id=str(shape))
