// CUDA kernels of the math_unary family (float32), one grid-stride loop each. Each
// mirrors its NumPy kernel in math_unary.py, NaNs included: the clamps compare rather
// than call fminf/fmaxf, which would drop a NaN that NumPy propagates.

#include "common.cuh"

// Y = expr(x), and the gradient op dX = expr(x, dy) from the forward op's X and dY.
#define UNARY(name, expr)                                                      \
  __global__ void name##_forward(const float* in, float* out, long long n) {   \
    FOR_EACH(i, n) {                                                           \
      float x = in[i];                                                         \
      out[i] = (expr);                                                         \
    }                                                                          \
  }
#define GRADIENT(name, expr)                                                                 \
  __global__ void name##_gradient(const float* xs, const float* dys, float* dx, long long n) { \
    FOR_EACH(i, n) {                                                                         \
      float x = xs[i], dy = dys[i];                                                          \
      dx[i] = (expr);                                                                        \
    }                                                                                        \
  }

// 2 / sqrt(pi)
#define TWO_OVER_SQRT_PI 1.1283791670955126f

extern "C" {

UNARY(log1p, log1pf(x))
UNARY(sin, sinf(x))
UNARY(cos, cosf(x))
UNARY(tan, tanf(x))
UNARY(asin, asinf(x))
UNARY(acos, acosf(x))
UNARY(atan, atanf(x))
UNARY(erf, erff(x))
UNARY(floor, floorf(x))
UNARY(ceil, ceilf(x))

GRADIENT(log1p, dy / (1.f + x))
GRADIENT(sin, dy * cosf(x))
GRADIENT(cos, -dy * sinf(x))
GRADIENT(tan, dy / (cosf(x) * cosf(x)))
GRADIENT(asin, dy / sqrtf(1.f - x * x))
GRADIENT(acos, -dy / sqrtf(1.f - x * x))
GRADIENT(atan, dy / (1.f + x * x))
GRADIENT(erf, TWO_OVER_SQRT_PI * expf(-x * x) * dy)

__global__ void logit_forward(const float* x, float* y, float eps, long long n) {
  float hi = 1.f - eps;
  FOR_EACH(i, n) {
    float v = x[i] > hi ? hi : x[i];
    v = v < eps ? eps : v;
    y[i] = logf(v / (1.f - v));
  }
}

__global__ void logit_gradient(const float* x, const float* dy, float* dx, float eps,
                               long long n) {
  // Zero outside [eps, 1 - eps], where the forward op clamped X.
  float hi = 1.f - eps;
  FOR_EACH(i, n) {
    float v = x[i];
    dx[i] = (v >= eps && v <= hi) ? dy[i] / ((1.f - v) * v) : 0.f;
  }
}

__global__ void thresholded_relu(const float* x, float* y, float alpha, long long n) {
  FOR_EACH(i, n) { y[i] = x[i] > alpha ? x[i] : 0.f; }
}

__global__ void thresholded_relu_gradient(const float* y, const float* dy, float* dx,
                                          long long n) {
  // dY * sign(Y), as Caffe2 computes it; sign is Y itself when Y is 0 or NaN.
  FOR_EACH(i, n) {
    float v = y[i];
    float sign = v > 0.f ? 1.f : (v < 0.f ? -1.f : v);
    dx[i] = dy[i] * sign;
  }
}

}  // extern "C"
