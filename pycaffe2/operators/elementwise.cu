// CUDA kernels of the elementwise family, float32, one grid-stride loop each.
// Each mirrors its NumPy kernel in elementwise.py, NaNs included: comparisons
// rather than fminf/fmaxf, which would drop a NaN that NumPy propagates.

#include "common.cuh"

extern "C" {

__global__ void exp_forward(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = expf(x[i]); }
}

__global__ void log_forward(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = logf(x[i]); }
}

__global__ void sqrt_forward(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = sqrtf(x[i]); }
}

__global__ void abs_forward(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = fabsf(x[i]); }
}

__global__ void abs_gradient(const float* x, const float* dy, float* dx, long long n) {
  // np.sign(x) * dy: sign is x itself when x is 0 (either sign) or NaN.
  FOR_EACH(i, n) {
    float v = x[i];
    float sign = v > 0.f ? 1.f : (v < 0.f ? -1.f : v);
    dx[i] = sign * dy[i];
  }
}

__global__ void negative(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = -x[i]; }
}

__global__ void sqr(const float* x, float* y, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] * x[i]; }
}

__global__ void scale(const float* x, float* y, float factor, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] * factor; }
}

__global__ void clip(const float* x, float* y, float lo, float hi, long long n) {
  // min(max(x, lo), hi) as np.clip computes it, so a NaN stays NaN.
  FOR_EACH(i, n) {
    float v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

__global__ void clip_gradient(const float* y, const float* dy, float* dx, float lo, float hi,
                              long long n) {
  // Strictly inside the bounds: an input clipped to a bound gets no gradient.
  FOR_EACH(i, n) { dx[i] = (y[i] > lo && y[i] < hi) ? dy[i] : 0.f; }
}

}  // extern "C"
