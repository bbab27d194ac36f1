// CUDA kernels of the lengths_reducer family (float32). The host checks LENGTHS and
// INDICES and turns LENGTHS into segment offsets; each thread sums one output element
// over its segment's rows in order, as the CPU kernel does.

#include "common.cuh"

extern "C" {

// out[r, c] = sum over k in [offsets[r], offsets[r + 1]) of w[k] * data[row(k), c], where
// row(k) = idx[k] (SparseLengths) or k (Lengths) and w[k] = 1 without weights; with
// `mean` each sum is divided by its segment's length (empty segments give 0).
__global__ void lengths_reduce(const float* data, const long long* idx, const float* w,
                               const long long* offsets, float* out, long long inner, int mean,
                               long long n) {
  FOR_EACH(i, n) {
    long long r = i / inner, c = i % inner;
    long long start = offsets[r], end = offsets[r + 1];
    float acc = 0.f;
    for (long long k = start; k < end; ++k) {
      long long row = idx ? idx[k] : k;
      float v = data[row * inner + c];
      acc += w ? w[k] * v : v;
    }
    if (mean && end > start) acc /= (float)(end - start);
    out[i] = acc;
  }
}

// out[k, c] = go[seg[k], c] * (w ? w[k] : 1) * (scale ? scale[k] : 1): the values rows of
// a SparseLengths op's sparse DATA gradient.
__global__ void lengths_expand(const float* go, const long long* seg, const float* w,
                               const float* scale, float* out, long long inner, long long n) {
  FOR_EACH(i, n) {
    long long k = i / inner, c = i % inner;
    float v = go[seg[k] * inner + c];
    if (w) v *= w[k];
    if (scale) v *= scale[k];
    out[i] = v;
  }
}

}  // extern "C"
