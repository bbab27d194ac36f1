// CUDA kernels of SpatialBN and its statistics ops, float32 data; norms.py also
// uses the partial sums and affine_grad_finalize for its parameter gradients.
//
// X is seen as [outer][C][inner]: NCHW is [N][C][HxW], NHWC is [N*HxW][C][1].
// Per-channel sums take two kernels and no atomics: a partial-sums kernel whose
// blocks each cover one channel (or a tile of 32 channels when inner == 1) and
// a slice of the outer axis, reduced in shared memory and written as doubles to
// partials[2][G][C] (G = gridDim.y), then a one-thread-per-channel finalize that
// adds the G partials in double and does the per-channel arithmetic.
//
// The partial kernels sum b and a * b with a = x - shift[c] and b = second[i]
// (or b = a when there is no second input):
//   statistics: a = b = x - K, K = the channel's first element, so the sums are
//     of values near zero and E[a^2] - E[a]^2 does not cancel the way
//     E[x^2] - E[x]^2 does when |mean| >> std; the finalize shifts back by K;
//   backward:   a = x - mean, b = dY: sums of dY and of dY * (X - mean).
// Threads accumulate in float (a few hundred terms each), blocks and partials
// in double. The elementwise kernels take per-channel coefficients coef[k*C+c].

#include "common.cuh"

#define BLOCK_THREADS 256

// ---- partial sums --------------------------------------------------------------------------

// Blocks of blockDim.x * blockDim.y == BLOCK_THREADS threads (a power of two):
// the block's sums of s1 and s2 are written by thread 0 to partials[g][c] and
// partials[G + g][c].
__device__ void block_sum_store(float s1, float s2, double* partials, long long g, long long G,
                                long long C, long long c) {
  __shared__ double sh1[BLOCK_THREADS];
  __shared__ double sh2[BLOCK_THREADS];
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  const int threads = blockDim.x * blockDim.y;
  sh1[tid] = s1;
  sh2[tid] = s2;
  __syncthreads();
  for (int half = threads / 2; half > 0; half /= 2) {
    if (tid < half) {
      sh1[tid] += sh1[tid + half];
      sh2[tid] += sh2[tid + half];
    }
    __syncthreads();
  }
  if (tid == 0) {
    partials[g * C + c] = sh1[0];
    partials[(G + g) * C + c] = sh2[0];
  }
}

extern "C" {

// inner > 1. Grid (C, G), block (bx, by), bx * by == BLOCK_THREADS: block (c, g)
// covers outer indices o = g * by + ty (step by * G), threads tx the inner axis.
__global__ void channel_partials_blocks(const float* x, const float* second, const float* shift,
                                        long long has_second, long long shift_from_x,
                                        long long outer, long long C, long long inner,
                                        double* partials) {
  const long long c = blockIdx.x;
  const long long g = blockIdx.y;
  const long long G = gridDim.y;
  const float k = shift_from_x ? x[c * inner] : shift[c];
  float s1 = 0.f, s2 = 0.f;
  for (long long o = g * blockDim.y + threadIdx.y; o < outer; o += (long long)blockDim.y * G) {
    const long long base = (o * C + c) * inner;
    for (long long j = threadIdx.x; j < inner; j += blockDim.x) {
      const float a = x[base + j] - k;
      const float b = has_second ? second[base + j] : a;
      s1 += b;
      s2 += a * b;
    }
  }
  block_sum_store(s1, s2, partials, g, G, C, c);
}

// inner == 1 (X is [rows][C]). Grid (ceil(C / 32), G), block (32, 8): thread tx
// takes channel blockIdx.x * 32 + tx, so a warp reads 32 adjacent floats of a
// row; ty steps over rows r = g * 8 + ty (step 8 * G).
__global__ void channel_partials_rows(const float* x, const float* second, const float* shift,
                                      long long has_second, long long shift_from_x,
                                      long long rows, long long C, double* partials) {
  __shared__ double sh1[BLOCK_THREADS];
  __shared__ double sh2[BLOCK_THREADS];
  const long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long g = blockIdx.y;
  const long long G = gridDim.y;
  float s1 = 0.f, s2 = 0.f;
  if (c < C) {
    const float k = shift_from_x ? x[c] : shift[c];
    for (long long r = g * blockDim.y + threadIdx.y; r < rows; r += (long long)blockDim.y * G) {
      const float a = x[r * C + c] - k;
      const float b = has_second ? second[r * C + c] : a;
      s1 += b;
      s2 += a * b;
    }
  }
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  sh1[tid] = s1;
  sh2[tid] = s2;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t1 = 0.0, t2 = 0.0;
    for (int t = 0; t < (int)blockDim.y; ++t) {
      t1 += sh1[t * blockDim.x + threadIdx.x];
      t2 += sh2[t * blockDim.x + threadIdx.x];
    }
    partials[g * C + c] = t1;
    partials[(G + g) * C + c] = t2;
  }
}

}  // extern "C"

// ---- finalize: one thread per channel ------------------------------------------------------

__device__ void sum_partials(const double* partials, long long G, long long C, long long c,
                             double* s1, double* s2) {
  double t1 = 0.0, t2 = 0.0;
  for (long long g = 0; g < G; ++g) {
    t1 += partials[g * C + c];
    t2 += partials[(G + g) * C + c];
  }
  *s1 = t1;
  *s2 = t2;
}

extern "C" {

// ChannelStats: sum = S1 + M K, sumsq = sum (a + K)^2 = S2 + 2 K S1 + M K^2.
__global__ void channel_stats_finalize(const double* partials, const float* x, long long G,
                                       long long C, long long inner, double count, float* sum,
                                       float* sumsq) {
  FOR_EACH(c, C) {
    const double k = x[c * inner];
    double s1, s2;
    sum_partials(partials, G, C, c, &s1, &s2);
    sum[c] = (float)(s1 + count * k);
    sumsq[c] = (float)(s2 + 2.0 * k * s1 + count * k * k);
  }
}

// ChannelBackpropStats: scale_grad = sum dY (X - mean) * inv_std, bias_grad = sum dY.
__global__ void backprop_stats_finalize(const double* partials, const float* inv_std, long long G,
                                        long long C, float* scale_grad, float* bias_grad) {
  FOR_EACH(c, C) {
    double s1, s2;
    sum_partials(partials, G, C, c, &s1, &s2);
    scale_grad[c] = (float)(s2 * (double)inv_std[c]);
    bias_grad[c] = (float)s1;
  }
}

// LayerNorm / GroupNorm / InstanceNorm gradients (norms.py): dgamma = sum dY * xhat,
// dbeta = sum dY per channel, from the partials of
// channel_partials_* over xhat (a = xhat - K, K = xhat[c * inner]) and dY:
// sum dY * xhat = S2 + K * S1.
__global__ void affine_grad_finalize(const double* partials, const float* xhat, long long G,
                                     long long C, long long inner, float* dgamma, float* dbeta) {
  FOR_EACH(c, C) {
    double s1, s2;
    sum_partials(partials, G, C, c, &s1, &s2);
    dgamma[c] = (float)(s2 + (double)xhat[c * inner] * s1);
    dbeta[c] = (float)s1;
  }
}

// SpatialBN test mode: coef = (0, alpha, bias - mean * alpha), alpha = scale / sqrt(var + eps),
// so Y = X * alpha + (bias - mean * alpha) as on the CPU.
__global__ void bn_test_coef(const float* scale, const float* bias, const float* mean,
                             const float* var, long long C, double epsilon, float* coef) {
  FOR_EACH(c, C) {
    const double alpha = (double)scale[c] / sqrt((double)var[c] + epsilon);
    coef[c] = 0.f;
    coef[C + c] = (float)alpha;
    coef[2 * C + c] = (float)((double)bias[c] - (double)mean[c] * alpha);
  }
}

// SpatialBN training: the batch mean and biased variance from the partials of the
// shifted sums (from_sums == 0; count = M) or from the all-reduced sums and sumsq
// inputs (from_sums == 1; count = M * num_batches); then the running statistics,
// the saved ones, and coef = (mean, scale * inv_std, bias) for
// Y = (X - mean) * scale * inv_std + bias.
__global__ void bn_train_finalize(const double* partials, const float* x, const float* sums,
                                  const float* sumsq, const float* scale, const float* bias,
                                  const float* running_mean, const float* running_var,
                                  long long from_sums, long long G,
                                  long long C, long long inner, double count, double momentum,
                                  double epsilon, float* new_mean, float* new_var,
                                  float* saved_mean, float* saved_inv_std, float* coef) {
  FOR_EACH(c, C) {
    double mean, var;
    if (from_sums) {
      mean = (double)sums[c] / count;
      var = (double)sumsq[c] / count - mean * mean;
    } else {
      double s1, s2;
      sum_partials(partials, G, C, c, &s1, &s2);
      const double shifted_mean = s1 / count;  // mean - K
      mean = (double)x[c * inner] + shifted_mean;
      var = s2 / count - shifted_mean * shifted_mean;
    }
    var = var > 0.0 ? var : 0.0;  // a rounded difference may dip below zero; a variance cannot
    const double inv_std = 1.0 / sqrt(var + epsilon);
    new_mean[c] = (float)(momentum * (double)running_mean[c] + (1.0 - momentum) * mean);
    new_var[c] = (float)(momentum * (double)running_var[c] + (1.0 - momentum) * var);
    saved_mean[c] = (float)mean;
    saved_inv_std[c] = (float)inv_std;
    coef[c] = (float)mean;
    coef[C + c] = (float)((double)scale[c] * inv_std);
    coef[2 * C + c] = bias[c];
  }
}

// SpatialBNGradient: dbias = sum dY, dscale = sum dY (X - mean) * inv_std (or, with
// from_aggregates, the aggregate inputs divided by num_batches); inv_std is the
// saved one, or 1 / sqrt(var + eps) in test mode (stat is then the running var).
// coef = (mean, A, B, D) for dX = dY * A + (X - mean) * B + D with A = scale * inv_std,
// B = -A * inv_std * dscale / M, D = -A * dbias / M; test mode: (0, A, 0, 0), whose
// first three rows make the affine kernel give dX = dY * A.
__global__ void bn_grad_finalize(const double* partials, const float* scale, const float* mean,
                                 const float* stat, const float* aggregate_scale_grad,
                                 const float* aggregate_bias_grad, long long is_test,
                                 long long from_aggregates, long long G, long long C,
                                 double count, double num_batches, double epsilon,
                                 float* dscale_out, float* dbias_out, float* coef) {
  FOR_EACH(c, C) {
    const double inv_std = is_test ? 1.0 / sqrt((double)stat[c] + epsilon) : (double)stat[c];
    double dscale, dbias;
    if (from_aggregates) {
      dscale = (double)aggregate_scale_grad[c] / num_batches;
      dbias = (double)aggregate_bias_grad[c] / num_batches;
    } else {
      double s1, s2;
      sum_partials(partials, G, C, c, &s1, &s2);
      dscale = s2 * inv_std;
      dbias = s1;
    }
    const double alpha = (double)scale[c] * inv_std;
    dscale_out[c] = (float)dscale;
    dbias_out[c] = (float)dbias;
    coef[c] = is_test ? 0.f : mean[c];
    coef[C + c] = (float)alpha;
    coef[2 * C + c] = is_test ? 0.f : (float)(-alpha * inv_std * dscale / count);
    coef[3 * C + c] = is_test ? 0.f : (float)(-alpha * dbias / count);
  }
}

}  // extern "C"

// ---- elementwise with per-channel coefficients ---------------------------------------------

// inner > 1: grid (bx, by); block row r = n * C + c of [outer * C][inner] steps by
// gridDim.y, threads cover its inner elements.
template <class Op>
__device__ void map_blocks(const Op& op, long long rows, long long C, long long inner) {
  for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
    const long long c = r % C;
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < inner;
         j += (long long)blockDim.x * gridDim.x) {
      op(r * inner + j, c);
    }
  }
}

// inner == 1: a 1-D grid-stride loop over n elements of [rows][C]; the channel
// i % C advances by stride % C each step instead of dividing again.
template <class Op>
__device__ void map_rows(const Op& op, long long n, long long C) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  const long long step = stride % C;
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  long long c = i % C;
  for (; i < n; i += stride) {
    op(i, c);
    c += step;
    if (c >= C) c -= C;
  }
}

// out = (in - coef[0][c]) * coef[1][c] + coef[2][c]
struct Affine {
  const float* in;
  const float* coef;
  float* out;
  long long C;
  __device__ void operator()(long long i, long long c) const {
    out[i] = (in[i] - coef[c]) * coef[C + c] + coef[2 * C + c];
  }
};

// dx = dy * coef[1][c] + ((x - coef[0][c]) * coef[2][c] + coef[3][c])
struct BNGradient {
  const float* x;
  const float* dy;
  const float* coef;
  float* dx;
  long long C;
  __device__ void operator()(long long i, long long c) const {
    dx[i] = dy[i] * coef[C + c] + ((x[i] - coef[c]) * coef[2 * C + c] + coef[3 * C + c]);
  }
};

extern "C" {

__global__ void channel_affine_blocks(const float* in, const float* coef, float* out,
                                      long long rows, long long C, long long inner) {
  map_blocks(Affine{in, coef, out, C}, rows, C, inner);
}

__global__ void channel_affine_rows(const float* in, const float* coef, float* out, long long n,
                                    long long C) {
  map_rows(Affine{in, coef, out, C}, n, C);
}

__global__ void bn_gradient_blocks(const float* x, const float* dy, const float* coef, float* dx,
                                   long long rows, long long C, long long inner) {
  map_blocks(BNGradient{x, dy, coef, dx, C}, rows, C, inner);
}

__global__ void bn_gradient_rows(const float* x, const float* dy, const float* coef, float* dx,
                                 long long n, long long C) {
  map_rows(BNGradient{x, dy, coef, dx, C}, n, C);
}

}  // extern "C"
