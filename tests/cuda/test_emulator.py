"""The CPU emulation of the CUDA kernels finds what it is there to find: missing
barriers, writes out of bounds, unwritten outputs and mistyped arguments."""
import numpy as np
import pytest

from pycaffe2.operators._cuda import OPERATORS_DIR
from tests.cuda import emulator

# Slow: each test builds kernels with g++ and runs them on the CPU emulation; left out by -m "not slow".
pytestmark = [pytest.mark.slow, pytest.mark.skipif(emulator.unavailable_reason() is not None,
                                                   reason=str(emulator.unavailable_reason()))]

SOURCE = r"""
#include "common.cuh"
extern "C" {
// out[i] = x[i] + x[i + 1] (cyclic) within one block, through shared memory.
__global__ void neighbour_sum(const float* x, float* out, int barrier) {
  __shared__ float tile[256];
  tile[threadIdx.x] = x[threadIdx.x];
  if (barrier) __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x] + tile[(threadIdx.x + 1) % blockDim.x];
}
__global__ void row_sums(const float* x, float* out, long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(r, rows) {
    double s = 0;
    FOR_EACH_IN_BLOCK(c, cols) s += x[r * cols + c];
    s = block_sum(s, buf);
    if (threadIdx.x == 0) out[r] = (float)s;
  }
}
__global__ void fill_past_end(float* y, long long n) {
  FOR_EACH(i, n + 1) { y[i] = 1.f; }
}
__global__ void fill_even(float* y, long long n) {
  FOR_EACH(i, n) { if (i % 2 == 0) y[i] = 1.f; }
}
// A race: every thread of every block writes y[0].
__global__ void last_writer(float* y) { y[0] = blockIdx.x * blockDim.x + threadIdx.x; }
}
"""


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return emulator.EmulatedModule(SOURCE, cache_dir=tmp_path_factory.mktemp("emulated"),
                                   include_dirs=[str(OPERATORS_DIR)])


def test_barriers_order_shared_memory(module):
    x = np.arange(256, dtype=np.float32)
    out = emulator.gpuarray.empty((256,), np.float32)
    module.get_function("neighbour_sum")(emulator.gpuarray.to_gpu(x), out, np.int32(1), block=(256, 1, 1))
    np.testing.assert_array_equal(out.get(), x + np.roll(x, -1))


def test_a_missing_barrier_reads_stale_shared_memory(module):
    x = np.arange(256, dtype=np.float32)
    out = emulator.gpuarray.empty((256,), np.float32)
    module.get_function("neighbour_sum")(emulator.gpuarray.to_gpu(x), out, np.int32(0), block=(256, 1, 1))
    assert not np.array_equal(out.get(), x + np.roll(x, -1))


@pytest.mark.parametrize("rows, cols, blocks", [(1, 1000, 1), (70, 3, 64), (5, 300, 2)])
def test_block_reductions_over_strided_rows(module, rows, cols, blocks):
    x = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    out = emulator.gpuarray.empty((rows,), np.float32)
    module.get_function("row_sums")(emulator.gpuarray.to_gpu(x), out, np.int64(rows), np.int64(cols),
                                    block=(128, 1, 1), grid=(blocks, 1))
    np.testing.assert_allclose(out.get(), x.sum(axis=1, dtype=np.float64), rtol=1e-6)


def test_a_write_out_of_bounds_is_an_error(module):
    y = emulator.gpuarray.empty((10,), np.float32)
    with pytest.raises(RuntimeError, match="fill_past_end wrote outside argument 0"):
        module.get_function("fill_past_end")(y, np.int64(10), block=(32, 1, 1))


def test_unwritten_elements_are_nan(module):
    y = emulator.gpuarray.empty((5,), np.float32)
    module.get_function("fill_even")(y, np.int64(5), block=(32, 1, 1))
    np.testing.assert_array_equal(np.isnan(y.get()), [False, True, False, True, False])


@pytest.mark.parametrize("args, message", [
    ((np.zeros(5, np.float32), np.int64(5)), "pointer parameter needs a GPU array"),
    ((emulator.gpuarray.empty((5,), np.float64), np.int64(5)), "reads f4 elements, the array is float64"),
    ((emulator.gpuarray.empty((5,), np.float32), np.int32(5)), "the parameter is i8, got int32"),
    ((emulator.gpuarray.empty((5,), np.float32), 5), "the parameter is i8, got int"),
    ((emulator.gpuarray.empty((5,), np.float32),), "takes 2 arguments, got 1"),
])
def test_arguments_are_checked_against_the_kernel(module, args, message):
    with pytest.raises(TypeError, match=message):
        module.get_function("fill_even")(*args, block=(32, 1, 1))


def test_launches_beyond_cuda_limits_are_refused(module):
    y = emulator.gpuarray.empty((5,), np.float32)
    with pytest.raises(ValueError, match="beyond CUDA's limits"):
        module.get_function("fill_even")(y, np.int64(5), block=(2048, 1, 1))


def test_emulated_arrays_do_not_pass_for_numpy_arrays():
    with pytest.raises(TypeError, match=r"call \.get\(\)"):
        np.asarray(emulator.gpuarray.to_gpu(np.ones(3, np.float32)))


@pytest.mark.parametrize("method, args", [("reshape", (3, 0)), ("copy", ()), ("fill", (0,))])
def test_empty_arrays_refuse_what_pycuda_cannot_do_with_them(method, args):
    empty = emulator.gpuarray.empty((0, 3), np.float32)
    with pytest.raises(TypeError, match=f"cannot {method} an empty GPUArray"):
        getattr(empty, method)(*args)


def test_the_reverse_order_shows_a_race(tmp_path, monkeypatch):
    results = []
    for order in ("forward", "reverse"):
        monkeypatch.setenv("PYCAFFE2_CUDA_EMULATOR_ORDER", order)
        module = emulator.EmulatedModule(SOURCE, cache_dir=tmp_path,
                                         include_dirs=[str(OPERATORS_DIR)])
        y = emulator.gpuarray.empty((1,), np.float32)
        module.get_function("last_writer")(y, block=(32, 1, 1), grid=(3, 1))
        results.append(float(y.get()[0]))
    assert results == [95.0, 0.0]
