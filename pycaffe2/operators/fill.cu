// CUDA kernels of the fill family, float32, one grid-stride loop each.
// Random fills use a counter-based generator: element i's bits are a hash
// (SplitMix64's finaliser) of the op's seed and a counter, so any grid gives
// the same numbers for one seed; the host draws one seed per run from the op's
// rng. Uniforms take the top 24 bits (exact in float32, in [0, 1)); Gaussians
// are Box-Muller's cosine branch over counters 2i and 2i + 1.

#include "common.cuh"

__device__ unsigned long long mix64(unsigned long long seed, unsigned long long counter) {
  unsigned long long z = seed + (counter + 1ULL) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

#define TWO_TO_MINUS_24 5.9604644775390625e-8f

// In [0, 1): k / 2^24 for k = 0 ... 2^24 - 1.
__device__ float uniform01(unsigned long long seed, unsigned long long counter) {
  return (float)(mix64(seed, counter) >> 40) * TWO_TO_MINUS_24;
}

extern "C" {

__global__ void constant_fill(float* y, float value, long long n) {
  FOR_EACH(i, n) { y[i] = value; }
}

// RangeFill: y[i] = i as float (rounded to nearest, as NumPy's float32 arange).
__global__ void range_fill(float* y, long long n) {
  FOR_EACH(i, n) { y[i] = (float)i; }
}

// y = low + (high - low) * u, as the CPU kernel scales rng.random().
__global__ void uniform_fill(float* y, unsigned long long seed, float low, float width, long long n) {
  FOR_EACH(i, n) { y[i] = __fadd_rn(__fmul_rn(uniform01(seed, (unsigned long long)i), width), low); }
}

__global__ void gaussian_fill(float* y, unsigned long long seed, float mean, float std, long long n) {
  FOR_EACH(i, n) {
    unsigned long long k = 2ULL * (unsigned long long)i;
    float u1 = 1.f - uniform01(seed, k);  // in (0, 1]: the log stays finite
    float u2 = uniform01(seed, k + 1ULL);
    float z = sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
    y[i] = __fadd_rn(__fmul_rn(z, std), mean);
  }
}

}  // extern "C"
