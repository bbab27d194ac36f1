"""CUDA tests. Each tests/cuda/test_devices*.py module adds the op types its
device checks cover to DEVICE_CHECKED, so one test can hold every registered
CUDA kernel to a check against its CPU twin."""
DEVICE_CHECKED: set[str] = set()
