// CUDA kernels of the nn family, float32: softmax and log-softmax over the rows
// of a 2-D view, their gradients, and dropout with a counter-based RNG.
//
// Row kernels run one block per row (blocks stride over the rows when there are
// more rows than blocks); the block's threads stride over the columns, and
// block_max / block_sum reduce in shared memory. Launch them with a
// power-of-two block of at most MAX_THREADS threads.

#include "common.cuh"

// The row max and log(sum(exp(x - max))) of one row, known to every thread.
__device__ void row_max_and_log_sum(const float* xr, long long cols, double* buf, float* max_out,
                                    float* log_sum_out) {
  float m = -INFINITY;
  FOR_EACH_IN_BLOCK(c, cols) { m = fmaxf(m, xr[c]); }
  m = block_max(m, buf);
  double s = 0.0;
  FOR_EACH_IN_BLOCK(c, cols) { s += expf(xr[c] - m); }
  *max_out = m;
  *log_sum_out = logf((float)block_sum(s, buf));
}

// splitmix64 at position i of the stream `seed`, as a float in [0, 1) with 24 random bits.
__device__ float uniform01(unsigned long long seed, long long i) {
  unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

extern "C" {

__global__ void softmax_rows(const float* x, float* y, long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float m = -INFINITY;
    FOR_EACH_IN_BLOCK(c, cols) { m = fmaxf(m, xr[c]); }
    m = block_max(m, buf);
    double s = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { s += expf(xr[c] - m); }
    const float sum = (float)block_sum(s, buf);
    FOR_EACH_IN_BLOCK(c, cols) { yr[c] = expf(xr[c] - m) / sum; }
  }
}

__global__ void log_softmax_rows(const float* x, float* y, long long rows, long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float m, log_sum;
    row_max_and_log_sum(xr, cols, buf, &m, &log_sum);
    FOR_EACH_IN_BLOCK(c, cols) { yr[c] = (xr[c] - m) - log_sum; }
  }
}

// dX = (dY - sum(dY * Y)) * Y per row.
__global__ void softmax_gradient_rows(const float* y, const float* dy, float* dx, long long rows,
                                      long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    double partial = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { partial += dy[start + c] * y[start + c]; }
    const float dot = (float)block_sum(partial, buf);
    FOR_EACH_IN_BLOCK(c, cols) { dx[start + c] = (dy[start + c] - dot) * y[start + c]; }
  }
}

// dX = dY - exp(Y) * sum(dY) per row.
__global__ void log_softmax_gradient_rows(const float* y, const float* dy, float* dx, long long rows,
                                          long long cols) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(row, rows) {
    const long long start = row * cols;
    double partial = 0.0;
    FOR_EACH_IN_BLOCK(c, cols) { partial += dy[start + c]; }
    const float total = (float)block_sum(partial, buf);
    FOR_EACH_IN_BLOCK(c, cols) { dx[start + c] = dy[start + c] - expf(y[start + c]) * total; }
  }
}

// Keeps x[i] when uniform01(seed, i) >= ratio, as the CPU keeps rng.random() >= ratio.
// Y = (X * scale) * mask, in that order, so inf and NaN behave as on the CPU.
__global__ void dropout(const float* x, float* y, unsigned char* mask, float scale, float ratio,
                        unsigned long long seed, long long n) {
  FOR_EACH(i, n) {
    const bool keep = uniform01(seed, i) >= ratio;
    mask[i] = keep ? 1 : 0;
    y[i] = (x[i] * scale) * (keep ? 1.f : 0.f);
  }
}

__global__ void mask_all_kept(unsigned char* mask, long long n) {
  FOR_EACH(i, n) { mask[i] = 1; }
}

// dX = (dY * scale) * mask, for a bool/uint8 mask and for a float mask.
__global__ void dropout_grad(const float* dy, const unsigned char* mask, float* dx, float scale,
                             long long n) {
  FOR_EACH(i, n) { dx[i] = (dy[i] * scale) * (float)mask[i]; }
}

__global__ void dropout_grad_float_mask(const float* dy, const float* mask, float* dx, float scale,
                                        long long n) {
  FOR_EACH(i, n) { dx[i] = (dy[i] * scale) * mask[i]; }
}

}  // extern "C"
