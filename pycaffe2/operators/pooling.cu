// CUDA kernels of the pooling family, float32: max and average pooling over
// conv_pool.cuh's geometry, and LRN.
//
// Forward ops run one thread per output element; gradient ops one thread per input
// element, looping over the output windows that hold it (no atomics), in the CPU
// kernel's order (kernel offsets ascending, i.e. window positions descending), so sums
// round alike. LRN runs one thread per element along a channel axis of stride `cstride`.

#include "conv_pool.cuh"

#define LOWEST_FLOAT (-3.402823466e+38f)  // np.finfo(np.float32).min: padding never wins

// Along one axis: how many cells of the window at output o lie inside [0, size).
__device__ int cells_inside(int o, int s, int p, int k, int d, int size) {
  int count = 0;
  for (int j = 0; j < k; ++j) {
    int q = o * s - p + j * d;
    count += (q >= 0 && q < size) ? 1 : 0;
  }
  return count;
}

// Along one axis: the outputs whose windows may hold input position i are
// lo..hi (empty when lo > hi); `on_grid` says whether o's window really does
// (with dilation the window skips cells).
__device__ void window_range(int i, int s, int p, int k, int d, int out, int* lo, int* hi) {
  int last = i + p;                   // o * s <= i + p (offset 0 reaches i)
  int first = i + p - (k - 1) * d;    // o * s >= i + p - (k - 1) * d (the last offset reaches i)
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = min(last / s, out - 1);
}

__device__ bool on_grid(int i, int s, int p, int d, int o) { return (i + p - o * s) % d == 0; }

extern "C" {

__global__ void max_pool(const float* x, float* y, POOL_PARAMS, long long count) {
  FOR_EACH(i, count) {
    long long n;
    int c, od, oh, ow;
    locate(i, nhwc, C, OD, OH, OW, &n, &c, &od, &oh, &ow);
    float best = LOWEST_FLOAT;
    for (int a = 0; a < KD; ++a) {
      int id = od * SD - PD + a * DD;
      if (id < 0 || id >= D) continue;
      for (int b = 0; b < KH; ++b) {
        int ih = oh * SH - PH + b * DH;
        if (ih < 0 || ih >= H) continue;
        for (int e = 0; e < KW; ++e) {
          int iw = ow * SW - PW + e * DW;
          if (iw < 0 || iw >= W) continue;
          float v = x[flat(nhwc, n, c, C, D, H, W, id, ih, iw)];
          if (v > best || isnan(v)) best = v;  // NaN sticks, as with np.maximum
        }
      }
    }
    y[i] = best;
  }
}

__global__ void average_pool(const float* x, float* y, POOL_PARAMS, int count_include_pad,
                             long long count) {
  FOR_EACH(i, count) {
    long long n;
    int c, od, oh, ow;
    locate(i, nhwc, C, OD, OH, OW, &n, &c, &od, &oh, &ow);
    float sum = 0.f;
    int cells = 0;
    for (int a = 0; a < KD; ++a) {
      int id = od * SD - PD + a * DD;
      if (id < 0 || id >= D) continue;
      for (int b = 0; b < KH; ++b) {
        int ih = oh * SH - PH + b * DH;
        if (ih < 0 || ih >= H) continue;
        for (int e = 0; e < KW; ++e) {
          int iw = ow * SW - PW + e * DW;
          if (iw < 0 || iw >= W) continue;
          sum = __fadd_rn(sum, x[flat(nhwc, n, c, C, D, H, W, id, ih, iw)]);
          ++cells;
        }
      }
    }
    // A window wholly in padding averages to 0 (the CPU divides its zero sum by 1).
    int divisor = count_include_pad ? KD * KH * KW : max(cells, 1);
    y[i] = sum / (float)divisor;
  }
}

// dX: every input cell equal to its window's max gets that window's dY (ties all do).
__global__ void max_pool_gradient(const float* x, const float* y, const float* dy, float* dx,
                                  POOL_PARAMS, long long count) {
  FOR_EACH(i, count) {
    long long n;
    int c, id, ih, iw;
    locate(i, nhwc, C, D, H, W, &n, &c, &id, &ih, &iw);
    int d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
    window_range(id, SD, PD, KD, DD, OD, &d_lo, &d_hi);
    window_range(ih, SH, PH, KH, DH, OH, &h_lo, &h_hi);
    window_range(iw, SW, PW, KW, DW, OW, &w_lo, &w_hi);
    float xv = x[i];
    float g = 0.f;
    for (int od = d_hi; od >= d_lo; --od) {
      if (!on_grid(id, SD, PD, DD, od)) continue;
      for (int oh = h_hi; oh >= h_lo; --oh) {
        if (!on_grid(ih, SH, PH, DH, oh)) continue;
        for (int ow = w_hi; ow >= w_lo; --ow) {
          if (!on_grid(iw, SW, PW, DW, ow)) continue;
          long long o = flat(nhwc, n, c, C, OD, OH, OW, od, oh, ow);
          if (xv == y[o]) g = __fadd_rn(g, dy[o]);
        }
      }
    }
    dx[i] = g;
  }
}

// dX: each window's dY divided by its count, summed over the windows holding the cell.
__global__ void average_pool_gradient(const float* dy, float* dx, POOL_PARAMS, int count_include_pad,
                                      long long count) {
  FOR_EACH(i, count) {
    long long n;
    int c, id, ih, iw;
    locate(i, nhwc, C, D, H, W, &n, &c, &id, &ih, &iw);
    int d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
    window_range(id, SD, PD, KD, DD, OD, &d_lo, &d_hi);
    window_range(ih, SH, PH, KH, DH, OH, &h_lo, &h_hi);
    window_range(iw, SW, PW, KW, DW, OW, &w_lo, &w_hi);
    float g = 0.f;
    for (int od = d_hi; od >= d_lo; --od) {
      if (!on_grid(id, SD, PD, DD, od)) continue;
      int in_d = cells_inside(od, SD, PD, KD, DD, D);
      for (int oh = h_hi; oh >= h_lo; --oh) {
        if (!on_grid(ih, SH, PH, DH, oh)) continue;
        int in_h = cells_inside(oh, SH, PH, KH, DH, H);
        for (int ow = w_hi; ow >= w_lo; --ow) {
          if (!on_grid(iw, SW, PW, DW, ow)) continue;
          int in_w = cells_inside(ow, SW, PW, KW, DW, W);
          int divisor = count_include_pad ? KD * KH * KW : max(in_d * in_h * in_w, 1);
          long long o = flat(nhwc, n, c, C, OD, OH, OW, od, oh, ow);
          g = __fadd_rn(g, dy[o] / (float)divisor);
        }
      }
    }
    dx[i] = g;
  }
}

// LRN scale at flat element i of channel c: bias + alpha / size * (sum of x^2 over
// channels c - lead ... c - lead + size - 1 that exist). Channels are cstride apart.
__device__ float lrn_scale_at(const float* x, long long i, int c, int C, long long cstride, int size,
                              int lead, float alpha_over_size, float bias) {
  float sum = 0.f;
  for (int j = 0; j < size; ++j) {
    int other = c - lead + j;
    if (other < 0 || other >= C) continue;
    float v = x[i + (long long)(other - c) * cstride];
    sum = __fadd_rn(sum, __fmul_rn(v, v));
  }
  return __fadd_rn(bias, __fmul_rn(alpha_over_size, sum));
}

__global__ void lrn(const float* x, float* y, float* scale, int C, long long cstride, int size,
                    int lead, float alpha_over_size, float bias, float neg_beta, long long n) {
  FOR_EACH(i, n) {
    int c = (int)((i / cstride) % C);
    float s = lrn_scale_at(x, i, c, C, cstride, size, lead, alpha_over_size, bias);
    scale[i] = s;
    y[i] = __fmul_rn(x[i], powf(s, neg_beta));
  }
}

__global__ void lrn_scale(const float* x, float* scale, int C, long long cstride, int size, int lead,
                          float alpha_over_size, float bias, long long n) {
  FOR_EACH(i, n) {
    int c = (int)((i / cstride) % C);
    scale[i] = lrn_scale_at(x, i, c, C, cstride, size, lead, alpha_over_size, bias);
  }
}

// dX = dY * scale^-beta - coef * X * (sum of dY * Y / scale over the channels whose
// windows hold c: c - lead ... c - lead + size - 1), coef = 2 * alpha * beta / size.
// `scale` comes from lrn_scale, run before this kernel.
__global__ void lrn_gradient(const float* x, const float* y, const float* dy, const float* scale,
                             float* dx, int C, long long cstride, int size, int lead, float neg_beta,
                             float coef, long long n) {
  FOR_EACH(i, n) {
    int c = (int)((i / cstride) % C);
    float feedback = 0.f;
    for (int j = 0; j < size; ++j) {
      int other = c - lead + j;
      if (other < 0 || other >= C) continue;
      long long k = i + (long long)(other - c) * cstride;
      feedback = __fadd_rn(feedback, __fmul_rn(dy[k], y[k]) / scale[k]);
    }
    float direct = __fmul_rn(dy[i], powf(scale[i], neg_beta));
    dx[i] = __fsub_rn(direct, __fmul_rn(__fmul_rn(coef, x[i]), feedback));
  }
}

}  // extern "C"
