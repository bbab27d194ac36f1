// CUDA kernels of the elementwise family, one grid-stride loop each. Math is
// float32; comparisons, logic and Where also take int32, int64 and bool (one
// instantiation per type, suffixed _f32, _i32, _i64, _b8). Each mirrors its
// NumPy kernel in elementwise.py, NaNs included: comparisons rather than
// fminf/fmaxf, which would drop a NaN that NumPy propagates.
//
// Binary ops come as `<op>_same` (both operands of the output's shape) and
// `<op>_strided`, where each operand is walked over the output's shape with its
// own strides (0 along its broadcast dims); `meta` holds, for `ndim` dims,
// dims[ndim], a_strides[ndim], b_strides[ndim], as arithmetic.cu's kernels.

#include "common.cuh"

#define BINARY(name, T, R, expr)                                                          \
  __global__ void name##_same(const T* a, const T* b, R* c, long long n) {                \
    FOR_EACH(i, n) {                                                                      \
      T x = a[i], y = b[i];                                                               \
      c[i] = (expr);                                                                      \
    }                                                                                     \
  }                                                                                       \
  __global__ void name##_strided(const T* a, const T* b, R* c, const long long* meta,     \
                                 int ndim, long long n) {                                 \
    FOR_EACH(i, n) {                                                                      \
      T x = a[strided_offset(i, meta, meta + ndim, ndim)];                                \
      T y = b[strided_offset(i, meta, meta + 2 * ndim, ndim)];                            \
      c[i] = (expr);                                                                      \
    }                                                                                     \
  }

// np.power with one exponent for the whole array takes sqrt for 0.5, so that
// (-inf)^0.5 is NaN and (-0)^0.5 is -0 where powf gives +inf and +0.
__device__ float power_of_one_exponent(float x, float e) {
  return e == 0.5f ? sqrtf(x) : powf(x, e);
}

// The comparisons for one element type (a NaN compares false, as in NumPy).
#define COMPARISONS(T, suffix)          \
  BINARY(eq_##suffix, T, bool, x == y)  \
  BINARY(lt_##suffix, T, bool, x < y)   \
  BINARY(gt_##suffix, T, bool, x > y)   \
  BINARY(le_##suffix, T, bool, x <= y)  \
  BINARY(ge_##suffix, T, bool, x >= y)

// Z = C ? X : Y, C holding one entry per `inner` elements (1: C has X's shape;
// X's row size under broadcast_on_rows).
#define WHERE(T, suffix)                                                                 \
  __global__ void where_##suffix(const bool* c, const T* x, const T* y, T* z,            \
                                 long long inner, long long n) {                         \
    FOR_EACH(i, n) { z[i] = c[i / inner] ? x[i] : y[i]; }                                \
  }

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

COMPARISONS(float, f32)
COMPARISONS(int, i32)
COMPARISONS(long long, i64)
COMPARISONS(bool, b8)
BINARY(and_b8, bool, bool, x && y)
BINARY(or_b8, bool, bool, x || y)
BINARY(pow, float, float, powf(x, y))
BINARY(pow_one_exponent, float, float, power_of_one_exponent(x, y))  // an exponent tensor of size 1

__global__ void not_b8(const bool* x, bool* y, long long n) {
  FOR_EACH(i, n) { y[i] = !x[i]; }
}

__global__ void pow_scalar(const float* x, float* y, float exponent, long long n) {
  FOR_EACH(i, n) { y[i] = power_of_one_exponent(x[i], exponent); }
}

WHERE(float, f32)
WHERE(int, i32)
WHERE(long long, i64)
WHERE(bool, b8)

}  // extern "C"
