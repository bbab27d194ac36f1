"""The op tests: one module per op family, each holding the family's reference
checks, gradient checks, shape-inference checks and device checks.

A test taking `device` runs once per entry of DEVICES: on the CPU, and on CUDA
(marked gpu: a real GPU where there is one, else the CPU emulation of the
kernels; slow, so `-m "not slow"` leaves it out).
"""
import pytest

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.slow])]
