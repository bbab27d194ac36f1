// CUDA kernels of the activation family, float32, one grid-stride loop each.
// Gradients read Y where the forward op may run in place, as on the CPU.

#include "common.cuh"

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
  // exp of -|x| never overflows; the halves recombine to 1 / (1 + exp(-x)).
  FOR_EACH(i, n) {
    float e = expf(-fabsf(x[i]));
    y[i] = x[i] >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
  }
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

}  // extern "C"
