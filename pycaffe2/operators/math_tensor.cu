// CUDA kernels of the math_tensor family (float32), one grid-stride loop each,
// mirroring the NumPy kernels in math_tensor.py.

#include "common.cuh"

extern "C" {

__global__ void replace_nan(const float* x, float* y, float value, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] != x[i] ? value : x[i]; }  // only a NaN differs from itself
}

}  // extern "C"
