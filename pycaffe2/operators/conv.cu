// CUDA kernels of the conv family, float32: im2col / col2im and layout moves for the
// convolutions (their products run on linalg's gemm), pooling, and LRN.
//
// Pooling sees every image as 3-D, [N, C, D, H, W] (NCHW) or [N, D, H, W, C]
// (NHWC): 1-D and 2-D ops come in with leading spatial dims of 1 (kernel 1,
// stride 1, no padding). The host computes the window (kernel, stride,
// dilation, head pads, output size) exactly as the CPU kernel does and passes
// it as ints; padded cells are simply skipped. Forward ops run one thread per
// output element; gradient ops one thread per input element, looping over the
// output windows that hold it (no atomics), in the CPU kernel's order (kernel
// offsets ascending, i.e. window positions descending), so sums round alike.
// LRN runs one thread per element along a channel axis of stride `cstride`.
//
// Convolutions use the same geometry (POOL_PARAMS) for the windowed image: X of a
// Conv, or the output side of its adjoint. Columns are [group, C/group * KD*KH*KW,
// N * OD*OH*OW]; a row is (channel, kernel offset) in NCHW and (kernel offset, channel)
// in NHWC, the filter's own order, so the filter as stored is the product's left factor.

#include "common.cuh"

#define LOWEST_FLOAT (-3.402823466e+38f)  // np.finfo(np.float32).min: padding never wins

// The geometry every pooling kernel takes, in this order.
#define POOL_PARAMS                                                                 \
  int nhwc, int C, int D, int H, int W, int OD, int OH, int OW, int KD, int KH, int KW, \
      int SD, int SH, int SW, int DD, int DH, int DW, int PD, int PH, int PW

// Image n, channel c and spatial position (p0, p1, p2) of flat element i of an
// [N, C, S0, S1, S2] tensor stored NCHW (nhwc = 0) or NHWC (nhwc = 1).
__device__ void locate(long long i, int nhwc, int C, int S0, int S1, int S2, long long* n, int* c,
                       int* p0, int* p1, int* p2) {
  if (nhwc) {
    *c = (int)(i % C);
    i /= C;
  }
  *p2 = (int)(i % S2);
  i /= S2;
  *p1 = (int)(i % S1);
  i /= S1;
  *p0 = (int)(i % S0);
  i /= S0;
  if (nhwc) {
    *n = i;
  } else {
    *c = (int)(i % C);
    *n = i / C;
  }
}

// The flat index of (n, c, p0, p1, p2) in such a tensor.
__device__ long long flat(int nhwc, long long n, int c, int C, int S0, int S1, int S2, int p0, int p1,
                          int p2) {
  if (nhwc) return (((n * S0 + p0) * S1 + p1) * (long long)S2 + p2) * C + c;
  return (((n * C + c) * S0 + p0) * (long long)S1 + p1) * S2 + p2;
}

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

// Row r of a group's columns: channel c (within the group) and kernel offset k.
__device__ void column_row(long long r, int nhwc, int cg, int K, int* c, int* k) {
  if (nhwc) {
    *k = (int)(r / cg);
    *c = (int)(r % cg);
  } else {
    *c = (int)(r / K);
    *k = (int)(r % K);
  }
}

// im2col: col[i] is the image cell that column row (c, k) reads at output position j
// (0 in the padding). `count` = C * K * N * OD*OH*OW.
__global__ void im2col(const float* x, float* col, POOL_PARAMS, int group, long long N,
                       long long count) {
  const int K = KD * KH * KW, cg = C / group;
  const long long P = (long long)OD * OH * OW, cols = N * P;
  FOR_EACH(i, count) {
    long long j = i % cols, row = i / cols;
    int c, k;
    column_row(row % ((long long)cg * K), nhwc, cg, K, &c, &k);
    c += (int)(row / ((long long)cg * K)) * cg;
    long long n = j / P;
    int p = (int)(j % P);
    int id = (p / (OH * OW)) * SD - PD + (k / (KH * KW)) * DD;
    int ih = (p / OW % OH) * SH - PH + (k / KW % KH) * DH;
    int iw = (p % OW) * SW - PW + (k % KW) * DW;
    bool inside = id >= 0 && id < D && ih >= 0 && ih < H && iw >= 0 && iw < W;
    col[i] = inside ? x[flat(nhwc, n, c, C, D, H, W, id, ih, iw)] : 0.f;
  }
}

// col2im, the adjoint: each image cell is the sum of the column entries that read it,
// in the CPU's order (kernel offsets ascending), plus bias[c] when bias is not NULL.
// One thread per image cell (no atomics); `count` = the image's size.
__global__ void col2im(const float* col, float* x, const float* bias, POOL_PARAMS, int group,
                       long long N, long long count) {
  const int K = KD * KH * KW, cg = C / group;
  const long long P = (long long)OD * OH * OW, cols = N * P;
  FOR_EACH(i, count) {
    long long n;
    int c, id, ih, iw;
    locate(i, nhwc, C, D, H, W, &n, &c, &id, &ih, &iw);
    const float* rows = col + (long long)(c / cg) * cg * K * cols;  // this group's columns
    int cl = c % cg;
    float sum = 0.f;
    for (int k = 0; k < K; ++k) {
      int od = id + PD - (k / (KH * KW)) * DD, oh = ih + PH - (k / KW % KH) * DH,
          ow = iw + PW - (k % KW) * DW;  // o * stride when offset k of window o reads the cell
      if (od < 0 || oh < 0 || ow < 0 || od % SD || oh % SH || ow % SW) continue;
      od /= SD;
      oh /= SH;
      ow /= SW;
      if (od >= OD || oh >= OH || ow >= OW) continue;
      long long r = nhwc ? (long long)k * cg + cl : (long long)cl * K + k;
      sum = __fadd_rn(sum, rows[r * cols + n * P + ((long long)od * OH + oh) * OW + ow]);
    }
    x[i] = bias ? __fadd_rn(sum, bias[c]) : sum;
  }
}

// Image cell (n, c, position p) of an [N, C, P] (nhwc = 0) or [N, P, C] image.
__device__ long long image_index(int nhwc, long long n, long long c, long long p, long long C,
                                 long long P) {
  return nhwc ? (n * P + p) * C + c : (n * C + c) * P + p;
}

// cm [C, N, P] (channel-major: a product's rows) from an image.
__global__ void to_channel_major(const float* x, float* cm, int nhwc, long long N, long long C,
                                 long long P, long long count) {
  FOR_EACH(i, count) {
    long long p = i % P, n = i / P % N, c = i / P / N;
    cm[i] = x[image_index(nhwc, n, c, p, C, P)];
  }
}

// The image of cm [C, N, P], plus bias[c] when bias is not NULL.
__global__ void from_channel_major(const float* cm, float* x, const float* bias, int nhwc,
                                   long long N, long long C, long long P, long long count) {
  FOR_EACH(i, count) {
    long long c = nhwc ? i % C : i / P % C;
    long long p = nhwc ? i / C % P : i % P;
    long long n = i / P / C;
    float v = cm[(c * N + n) * P + p];
    x[i] = bias ? __fadd_rn(v, bias[c]) : v;
  }
}

// sums[c]: the sum of channel c of an image over its images and positions (one block
// per channel, ROW_THREADS threads, in double).
__global__ void channel_sums(const float* x, float* sums, int nhwc, long long N, long long C,
                             long long P) {
  __shared__ double buf[MAX_THREADS];
  FOR_EACH_ROW(c, C) {
    double s = 0.0;
    FOR_EACH_IN_BLOCK(j, N * P) s += x[image_index(nhwc, j / P, c, j % P, C, P)];
    double total = block_sum(s, buf);
    if (threadIdx.x == 0) sums[c] = (float)total;
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
