// CUDA kernels of LayerNorm, GroupNorm and InstanceNorm, float32 data: one block per
// normalized row. Their per-channel parameter gradients use the partial sums of
// batch_norm.cu (affine_grad_finalize).

#include "common.cuh"

// ---- LayerNorm, GroupNorm, InstanceNorm: one block per normalized row ----------------------
//
// A row is one normalized part: a leading index of LayerNorm, or an (n, g) group of
// GroupNorm (InstanceNorm: a group per channel, K = 1). Element j < L of row r lies at
//   (r / G) * G * L + (r % G) * seg + (j / seg) * stride + j % seg
// and takes the affine parameter of channel (r % G) * K + (j / pdiv) % K:
//   LayerNorm: G = 1, L = seg = K = inner, pdiv = 1: row r is x[r * L .. r * L + L);
//   NCHW:      L = seg = K * HxW, pdiv = HxW: the group is contiguous;
//   NHWC:      L = K * HxW, seg = K, stride = C, pdiv = 1: HxW runs of K channels.
struct GroupRows {
  long long G, L, seg, stride, K, pdiv;
  __device__ long long offset(long long r, long long j) const {
    return (r / G) * G * L + (r % G) * seg + (j / seg) * stride + j % seg;
  }
  __device__ long long channel(long long r, long long j) const {
    return (r % G) * K + (j / pdiv) % K;
  }
};

extern "C" {

// Y = (X - mean) * inv_std * gamma + beta per row, two-pass statistics in double.
// save_std (LayerNorm): stat = sqrt(var + eps) and Y divides by it, else stat = inv_std.
// gamma / beta may be NULL (LayerNorm without elementwise_affine), y NULL (statistics only).
__global__ void group_norm_rows(const float* x, const float* gamma, const float* beta, float* y,
                                float* mean_out, float* stat_out, long long rows, long long G,
                                long long L, long long seg, long long stride, long long K,
                                long long pdiv, double epsilon, long long save_std) {
  __shared__ double buf[MAX_THREADS];
  const GroupRows g{G, L, seg, stride, K, pdiv};
  FOR_EACH_ROW(r, rows) {
    double s = 0.0;
    FOR_EACH_IN_BLOCK(j, L) s += x[g.offset(r, j)];
    const float mean = (float)(block_sum(s, buf) / L);
    s = 0.0;
    FOR_EACH_IN_BLOCK(j, L) {
      const float d = x[g.offset(r, j)] - mean;
      s += (double)d * d;
    }
    const double var = block_sum(s, buf) / L;
    const float std_dev = (float)sqrt(var + epsilon);
    const float inv_std = (float)(1.0 / sqrt(var + epsilon));
    if (threadIdx.x == 0) {
      mean_out[r] = mean;
      stat_out[r] = save_std ? std_dev : inv_std;
    }
    if (y) {
      FOR_EACH_IN_BLOCK(j, L) {
        const long long i = g.offset(r, j);
        const float d = x[i] - mean;
        float v = save_std ? d / std_dev : d * inv_std;
        if (gamma) {
          const long long c = g.channel(r, j);
          v = v * gamma[c] + beta[c];
        }
        y[i] = v;
      }
    }
  }
}

// dX = (h - mean(h) - xhat * mean(h * xhat)) * inv_std per row, h = dY * gamma (dY when
// gamma is NULL), xhat = (X - mean) * inv_std; stat_is_std: stat is the std, divided by.
// xhat_out (when not NULL) receives xhat, for the parameter gradients.
__global__ void group_norm_gradient_rows(const float* x, const float* dy, const float* gamma,
                                         const float* mean, const float* stat, float* dx,
                                         float* xhat_out, long long rows, long long G, long long L,
                                         long long seg, long long stride, long long K,
                                         long long pdiv, long long stat_is_std) {
  __shared__ double buf[MAX_THREADS];
  const GroupRows g{G, L, seg, stride, K, pdiv};
  FOR_EACH_ROW(r, rows) {
    const float m = mean[r], st = stat[r];
    double s1 = 0.0, s2 = 0.0;
    FOR_EACH_IN_BLOCK(j, L) {
      const long long i = g.offset(r, j);
      const float xhat = stat_is_std ? (x[i] - m) / st : (x[i] - m) * st;
      const float h = gamma ? dy[i] * gamma[g.channel(r, j)] : dy[i];
      s1 += h;
      s2 += (double)h * xhat;
      if (xhat_out) xhat_out[i] = xhat;
    }
    const float mean_h = (float)(block_sum(s1, buf) / L);
    const float mean_hx = (float)(block_sum(s2, buf) / L);
    FOR_EACH_IN_BLOCK(j, L) {
      const long long i = g.offset(r, j);
      const float xhat = stat_is_std ? (x[i] - m) / st : (x[i] - m) * st;
      const float h = gamma ? dy[i] * gamma[g.channel(r, j)] : dy[i];
      const float v = h - mean_h - xhat * mean_hx;
      dx[i] = stat_is_std ? v / st : v * st;
    }
  }
}

}  // extern "C"

extern "C" {

// AffineChannel: y = x * scale[c] + bias[c] (bias NULL: no bias, the gradient's dX),
// c = (i / inner) % C over X as [outer][C][inner].
__global__ void affine_channel(const float* x, const float* scale, const float* bias, float* y,
                               long long n, long long C, long long inner) {
  FOR_EACH(i, n) {
    const long long c = (i / inner) % C;
    y[i] = bias ? x[i] * scale[c] + bias[c] : x[i] * scale[c];
  }
}

}  // extern "C"
