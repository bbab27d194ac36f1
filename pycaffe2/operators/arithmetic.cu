// CUDA kernels of the arithmetic family, float32.
//
// Binary ops come in two forms: `<op>_same` for operands of the output's shape,
// and `<op>_strided`, where each operand is walked over the output's shape with
// its own strides (0 along the dims it is broadcast on). The host computes those
// strides and merges dims where it can; `meta` holds, for `ndim` dims,
// dims[ndim], a_strides[ndim], b_strides[ndim] (row-major, the last dim fastest).
//
// Gradients sum dC back to an operand's shape. The host splits the output's
// dims into the operand's own ("kept") dims and the dims it was broadcast on
// ("reduced"): meta holds kept_dims[nk], kept_strides[nk], reduced_dims[nr],
// reduced_strides[nr], strides into x. Target element j lies at the kept
// coordinates of j (the target is row-major over its kept dims); the sum runs
// over every reduced coordinate. Sums accumulate in double.

#include "common.cuh"

#define REDUCE_BLOCK 256  // the host launches reduce_blocks with exactly this many threads

// NaN-propagating max and min, as np.maximum and np.minimum.
__device__ float max_nan(float a, float b) { return (a != a || a > b) ? a : b; }
__device__ float min_nan(float a, float b) { return (a != a || a < b) ? a : b; }

#define BINARY(name, expr)                                                                \
  __global__ void name##_same(const float* a, const float* b, float* c, long long n) {    \
    FOR_EACH(i, n) {                                                                      \
      float x = a[i], y = b[i];                                                           \
      c[i] = (expr);                                                                      \
    }                                                                                     \
  }                                                                                       \
  __global__ void name##_strided(const float* a, const float* b, float* c,                \
                                 const long long* meta, int ndim, long long n) {          \
    FOR_EACH(i, n) {                                                                      \
      float x = a[strided_offset(i, meta, meta + ndim, ndim)];                            \
      float y = b[strided_offset(i, meta, meta + 2 * ndim, ndim)];                        \
      c[i] = (expr);                                                                      \
    }                                                                                     \
  }

extern "C" {

BINARY(add, x + y)
BINARY(sub, x - y)
BINARY(mul, x * y)
BINARY(div, x / y)
BINARY(max, max_nan(x, y))
BINARY(min, min_nan(x, y))

// y += x: folds one more input of a variadic Sum or Mean into its fresh output.
__global__ void add_into(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] += x[i]; }
}

// y = x / d (Mean, MeanGradient); x and y may be the same array.
__global__ void divide_by(const float* x, float* y, float d, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] / d; }
}

// y = max(y, x) and y = min(y, x): fold one more input of Max or Min.
__global__ void max_into(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = max_nan(y[i], x[i]); }
}

__global__ void min_into(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = min_nan(y[i], x[i]); }
}

// MaxGradient and MinGradient, one input at a time: dx = dy where x == y, else 0.
__global__ void select_gradient(const float* x, const float* y, const float* dy, float* dx,
                                long long n) {
  FOR_EACH(i, n) { dx[i] = x[i] == y[i] ? dy[i] : 0.f; }
}

// y[j] = scale * (sum of x over the reduced coordinates of target element j):
// one thread per target element, for many targets or short sums.
__global__ void reduce_serial(const float* x, float* y, const long long* meta, int nk, int nr,
                              long long n_out, long long n_red, float scale) {
  const long long* reduced = meta + 2 * nk;
  FOR_EACH(j, n_out) {
    long long base = strided_offset(j, meta, meta + nk, nk);
    double sum = 0.0;
    for (long long r = 0; r < n_red; ++r) {
      sum += x[base + strided_offset(r, reduced, reduced + nr, nr)];
    }
    y[j] = (float)sum * scale;
  }
}

// The same sums, one block of REDUCE_BLOCK threads per target element (a
// grid-stride loop over targets): each thread sums a strided share of the
// reduced coordinates, then a shared-memory tree adds the shares and thread 0
// writes the result.
__global__ void reduce_blocks(const float* x, float* y, const long long* meta, int nk, int nr,
                              long long n_out, long long n_red, float scale) {
  __shared__ double partial[REDUCE_BLOCK];
  const long long* reduced = meta + 2 * nk;
  for (long long j = blockIdx.x; j < n_out; j += gridDim.x) {  // uniform across the block
    long long base = strided_offset(j, meta, meta + nk, nk);
    double sum = 0.0;
    for (long long r = threadIdx.x; r < n_red; r += REDUCE_BLOCK) {
      sum += x[base + strided_offset(r, reduced, reduced + nr, nr)];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = REDUCE_BLOCK / 2; half > 0; half >>= 1) {
      if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) y[j] = (float)partial[0] * scale;
    __syncthreads();  // partial[0] is read before the next target overwrites the shares
  }
}

}  // extern "C"
