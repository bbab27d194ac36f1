// CUDA kernels of the activation family, float32, one grid-stride loop each
// (PRelu's dSlope: one block per channel). Gradients read Y where the forward
// op may run in place, as on the CPU.

#include "common.cuh"

// 1 / (1 + exp(-x)); exp of -|x| never overflows, the halves recombine.
__device__ float stable_sigmoid(float x) {
  float e = expf(-fabsf(x));
  return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}

// log(exp(x) + 1) as np.logaddexp(x, 0) computes it: the larger term plus
// log1p of the smaller's ratio; NaN stays NaN.
__device__ float log_add_exp_zero(float x) {
  if (x == 0.f) return 0.69314718055994531f;  // ln 2
  if (x > 0.f) return x + log1pf(expf(-x));
  if (x < 0.f) return log1pf(expf(x));
  return x;
}

extern "C" {

__global__ void relu(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] > 0.f ? x[i] : 0.f; }
}

__global__ void relu_gradient(const float* y, const float* dy, float* dx, long long n) {
  FOR_EACH(i, n) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; }
}

__global__ void leaky_relu(const float* x, float* y, float alpha, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] >= 0.f ? x[i] : alpha * x[i]; }
}

__global__ void leaky_relu_gradient(const float* y, const float* dy, float* dx, float alpha,
                                    long long n) {
  FOR_EACH(i, n) { dx[i] = y[i] >= 0.f ? dy[i] : alpha * dy[i]; }
}

__global__ void sigmoid(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = stable_sigmoid(x[i]); }
}

__global__ void sigmoid_gradient(const float* y, const float* dy, float* dx, long long n) {
  FOR_EACH(i, n) { dx[i] = dy[i] * y[i] * (1.f - y[i]); }
}

__global__ void tanh_forward(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = tanhf(x[i]); }
}

__global__ void tanh_gradient(const float* y, const float* dy, float* dx, long long n) {
  FOR_EACH(i, n) { dx[i] = dy[i] * (1.f - y[i] * y[i]); }
}

__global__ void elu(const float* x, float* y, float alpha, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] > 0.f ? x[i] : alpha * expm1f(x[i]); }
}

__global__ void elu_gradient(const float* y, const float* dy, float* dx, float alpha, long long n) {
  FOR_EACH(i, n) { dx[i] = y[i] > 0.f ? dy[i] : dy[i] * (y[i] + alpha); }
}

__global__ void softsign(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] / (1.f + fabsf(x[i])); }
}

__global__ void softsign_gradient(const float* x, const float* dy, float* dx, long long n) {
  FOR_EACH(i, n) {
    float d = 1.f + fabsf(x[i]);
    dx[i] = dy[i] / (d * d);
  }
}

__global__ void hard_sigmoid(const float* x, float* y, float alpha, float beta, long long n) {
  FOR_EACH(i, n) { y[i] = fminf(fmaxf(alpha * x[i] + beta, 0.f), 1.f); }
}

__global__ void hard_sigmoid_gradient(const float* y, const float* dy, float* dx, float alpha,
                                      long long n) {
  FOR_EACH(i, n) { dx[i] = (y[i] > 0.f && y[i] < 1.f) ? alpha * dy[i] : 0.f; }
}

__global__ void selu(const float* x, float* y, float alpha, float scale, long long n) {
  FOR_EACH(i, n) { y[i] = scale * (x[i] > 0.f ? x[i] : alpha * expm1f(x[i])); }
}

__global__ void selu_gradient(const float* y, const float* dy, float* dx, float alpha, float scale,
                              long long n) {
  float scaled_alpha = scale * alpha;
  FOR_EACH(i, n) { dx[i] = y[i] > 0.f ? scale * dy[i] : dy[i] * (y[i] + scaled_alpha); }
}

__global__ void softplus(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = log_add_exp_zero(x[i]); }
}

__global__ void softplus_gradient(const float* y, const float* dy, float* dx, long long n) {
  FOR_EACH(i, n) { dx[i] = dy[i] * -expm1f(-y[i]); }
}

__global__ void swish(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] * stable_sigmoid(x[i]); }
}

__global__ void swish_gradient(const float* x, const float* y, const float* dy, float* dx,
                               long long n) {
  FOR_EACH(i, n) { dx[i] = dy[i] * (y[i] + stable_sigmoid(x[i]) * (1.f - y[i])); }
}

// PRelu over X seen as [outer, channels, inner] (NCHW: inner is H*W; NHWC: 1;
// a shared slope: one channel).
__global__ void prelu(const float* x, const float* slope, float* y, long long channels,
                      long long inner, long long n) {
  FOR_EACH(i, n) {
    float v = x[i];
    y[i] = v >= 0.f ? v : v * slope[(i / inner) % channels];
  }
}

__global__ void prelu_gradient_x(const float* x, const float* slope, const float* dy, float* dx,
                                 long long channels, long long inner, long long n) {
  FOR_EACH(i, n) { dx[i] = x[i] >= 0.f ? dy[i] : dy[i] * slope[(i / inner) % channels]; }
}

// dSlope[c] = sum of x * dy over channel c where x < 0: one block per channel,
// summed in double.
__global__ void prelu_gradient_slope(const float* x, const float* dy, float* dslope,
                                     long long channels, long long inner, long long outer) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(c, channels) {
    double sum = 0.0;
    FOR_EACH_IN_BLOCK(j, outer * inner) {
      long long i = ((j / inner) * channels + c) * inner + j % inner;
      float v = x[i];
      sum += v >= 0.f ? 0.f : v * dy[i];
    }
    sum = block_sum(sum, buf);
    if (threadIdx.x == 0) dslope[c] = (float)sum;
  }
}

}  // extern "C"
