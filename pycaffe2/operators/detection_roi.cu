// CUDA kernels of the RoI detection ops, float32. The host resolves each RoI's geometry
// exactly as the CPU kernel does (detection_roi.py) and passes it as arrays, so both
// devices sample and clip alike: RoIAlign gets per RoI [batch, start_h, start_w, bin_h,
// bin_w, grid_h, grid_w], RoIAlignRotated that with the rotation; RoIPool gets its bins'
// clipped bounds.
//
// Forward ops run one thread per output element. Gradient ops run one thread per dY
// element and add into dX atomically (several bins and RoIs read one cell of X).
// Products and sums that decide a sample's position are rounded one by one (_rn), so
// nvcc's fused multiply-adds cannot move a sample across a cell border the CPU sees.

#include "conv_pool.cuh"

#define ROI_GEOMETRY 7
#define ROTATED_GEOMETRY 11

// Output element i of [R, C, PH, PW] (NCHW) or [R, PH, PW, C] (NHWC): conv_pool.cuh's
// locate with a depth of 1.
__device__ void locate_pooled(long long i, int nhwc, int C, int PH, int PW, long long* r, int* c,
                              int* ph, int* pw) {
  int depth;
  locate(i, nhwc, C, 1, PH, PW, r, c, &depth, ph, pw);
}

// Cell (h, w) of channel c of image b: conv_pool.cuh's flat with a depth of 1.
__device__ long long image_offset(int nhwc, long long b, int c, int C, int H, int W, int h, int w) {
  return flat(nhwc, b, c, C, 1, H, W, 0, h, w);
}

// One axis of a bilinear sample at coordinate v over [0, size): the two cells and
// their weights, or false when v lies more than a cell outside.
struct AxisSample {
  int low, high;
  float w_low, w_high;
};

__device__ bool axis_weights(float v, int size, AxisSample* a) {
  if (v < -1.0f || v > (float)size) return false;
  if (v <= 0.f) v = 0.f;
  a->low = (int)v;
  if (a->low >= size - 1) {
    a->low = a->high = size - 1;
    v = (float)a->low;
  } else {
    a->high = a->low + 1;
  }
  float l = __fsub_rn(v, (float)a->low);
  a->w_high = l;
  a->w_low = __fsub_rn(1.f, l);
  return true;
}

// The bilinear value of channel c of image b at the sample (ys, xs).
__device__ float bilinear_read(const float* x, int nhwc, long long b, int c, int C, int H, int W,
                               const AxisSample* ys, const AxisSample* xs) {
  return ys->w_low * xs->w_low * x[image_offset(nhwc, b, c, C, H, W, ys->low, xs->low)] +
         ys->w_low * xs->w_high * x[image_offset(nhwc, b, c, C, H, W, ys->low, xs->high)] +
         ys->w_high * xs->w_low * x[image_offset(nhwc, b, c, C, H, W, ys->high, xs->low)] +
         ys->w_high * xs->w_high * x[image_offset(nhwc, b, c, C, H, W, ys->high, xs->high)];
}

// The gradient of bilinear_read: adds v times each corner's weight into dx, atomically.
__device__ void bilinear_scatter(float* dx, float v, int nhwc, long long b, int c, int C, int H, int W,
                                 const AxisSample* ys, const AxisSample* xs) {
  atomicAdd(dx + image_offset(nhwc, b, c, C, H, W, ys->low, xs->low), v * ys->w_low * xs->w_low);
  atomicAdd(dx + image_offset(nhwc, b, c, C, H, W, ys->low, xs->high), v * ys->w_low * xs->w_high);
  atomicAdd(dx + image_offset(nhwc, b, c, C, H, W, ys->high, xs->low), v * ys->w_high * xs->w_low);
  atomicAdd(dx + image_offset(nhwc, b, c, C, H, W, ys->high, xs->high), v * ys->w_high * xs->w_high);
}

// Sample coordinate `k` of `grid` in bin `p`: start + p * bin + (k + 0.5) * bin / grid.
__device__ float sample_at(float start, int p, float bin, int k, int grid) {
  return __fadd_rn(__fadd_rn(start, __fmul_rn((float)p, bin)),
                   __fdiv_rn(__fmul_rn((float)k + 0.5f, bin), (float)grid));
}

extern "C" {

__global__ void fill_zero(float* y, long long n) {
  FOR_EACH(i, n) { y[i] = 0.f; }
}

// One output bin's samples, walked once for both directions: without dx it returns their
// mean read from x; with dx it adds dy_value's share (dy_value / samples) back to each.
__device__ float align_bin(const float* x, float* dx, float dy_value, const float* g, int ph, int pw,
                           int nhwc, int c, int C, int H, int W) {
  long long b = (long long)g[0];
  int grid_h = (int)g[5], grid_w = (int)g[6];
  float samples = (float)max(grid_h * grid_w, 1), share = dy_value / samples, sum = 0.f;
  for (int iy = 0; iy < grid_h; ++iy) {
    AxisSample ys;
    if (!axis_weights(sample_at(g[1], ph, g[3], iy, grid_h), H, &ys)) continue;
    for (int ix = 0; ix < grid_w; ++ix) {
      AxisSample xs;
      if (!axis_weights(sample_at(g[2], pw, g[4], ix, grid_w), W, &xs)) continue;
      if (dx) {
        bilinear_scatter(dx, share, nhwc, b, c, C, H, W, &ys, &xs);
      } else {
        sum += bilinear_read(x, nhwc, b, c, C, H, W, &ys, &xs);
      }
    }
  }
  return sum / samples;
}

__global__ void roi_align(const float* x, const float* geometry, float* y, int nhwc, int C, int H,
                          int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    y[i] = align_bin(x, nullptr, 0.f, geometry + r * ROI_GEOMETRY, ph, pw, nhwc, c, C, H, W);
  }
}

__global__ void roi_align_gradient(const float* dy, const float* geometry, float* dx, int nhwc, int C,
                                   int H, int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    align_bin(nullptr, dx, dy[i], geometry + r * ROI_GEOMETRY, ph, pw, nhwc, c, C, H, W);
  }
}

// RoIAlignRotated: geometry per RoI [batch, centre_h, centre_w, bin_h, bin_w, grid_h, grid_w,
// cos, sin, start_h, start_w]; a sample (yy, xx) on the RoI's axes lands at
// (yy cos - xx sin + centre_h, xx cos + yy sin + centre_w).
__device__ void rotated_sample(const float* g, int ph, int pw, int iy, int ix, int grid_h, int grid_w,
                               float* y, float* x) {
  float yy = sample_at(g[9], ph, g[3], iy, grid_h);
  float xx = sample_at(g[10], pw, g[4], ix, grid_w);
  *x = __fadd_rn(__fadd_rn(__fmul_rn(xx, g[7]), __fmul_rn(yy, g[8])), g[2]);
  *y = __fadd_rn(__fsub_rn(__fmul_rn(yy, g[7]), __fmul_rn(xx, g[8])), g[1]);
}

// align_bin for a rotated RoI.
__device__ float align_rotated_bin(const float* x, float* dx, float dy_value, const float* g, int ph, int pw,
                                   int nhwc, int c, int C, int H, int W) {
  long long b = (long long)g[0];
  int grid_h = (int)g[5], grid_w = (int)g[6];
  float samples = (float)max(grid_h * grid_w, 1), share = dy_value / samples, sum = 0.f;
  for (int iy = 0; iy < grid_h; ++iy) {
    for (int ix = 0; ix < grid_w; ++ix) {
      float sy, sx;
      AxisSample ys, xs;
      rotated_sample(g, ph, pw, iy, ix, grid_h, grid_w, &sy, &sx);
      if (!axis_weights(sy, H, &ys) || !axis_weights(sx, W, &xs)) continue;
      if (dx) {
        bilinear_scatter(dx, share, nhwc, b, c, C, H, W, &ys, &xs);
      } else {
        sum += bilinear_read(x, nhwc, b, c, C, H, W, &ys, &xs);
      }
    }
  }
  return sum / samples;
}

__global__ void roi_align_rotated(const float* x, const float* geometry, float* y, int nhwc, int C, int H,
                                  int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    y[i] = align_rotated_bin(x, nullptr, 0.f, geometry + r * ROTATED_GEOMETRY, ph, pw, nhwc, c, C, H, W);
  }
}

__global__ void roi_align_rotated_gradient(const float* dy, const float* geometry, float* dx, int nhwc, int C,
                                           int H, int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    align_rotated_bin(nullptr, dx, dy[i], geometry + r * ROTATED_GEOMETRY, ph, pw, nhwc, c, C, H, W);
  }
}

// RoIPool: `batch` [R]; `rows` [R, PH, 2] and `cols` [R, PW, 2] the bins' clipped
// [start, end) bounds. The max scans rows then columns and keeps the first maximum, so
// argmaxes match the CPU's on ties.
__global__ void roi_pool(const float* x, const int* batch, const int* rows, const int* cols, float* y,
                         int* argmaxes, int nhwc, int C, int H, int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    const int* rb = rows + (r * PH + ph) * 2;
    const int* cb = cols + (r * PW + pw) * 2;
    bool empty = rb[1] <= rb[0] || cb[1] <= cb[0];
    float best = empty ? 0.f : -3.402823466e+38f;
    int where = -1;
    for (int h = rb[0]; h < rb[1]; ++h) {
      for (int w = cb[0]; w < cb[1]; ++w) {
        float v = x[image_offset(nhwc, batch[r], c, C, H, W, h, w)];
        if (v > best) {
          best = v;
          where = h * W + w;
        }
      }
    }
    y[i] = best;
    if (argmaxes) argmaxes[i] = where;
  }
}

__global__ void roi_pool_gradient(const float* dy, const int* batch, const int* argmaxes, float* dx,
                                  int nhwc, int C, int H, int W, int PH, int PW, long long count) {
  FOR_EACH(i, count) {
    long long r;
    int c, ph, pw;
    locate_pooled(i, nhwc, C, PH, PW, &r, &c, &ph, &pw);
    int where = argmaxes[i];
    if (where < 0) continue;
    atomicAdd(dx + image_offset(nhwc, batch[r], c, C, H, W, where / W, where % W), dy[i]);
  }
}

// BatchPermutation over rows of K elements: Y[n] = X[indices[n]], and its gradient
// dX[indices[n]] += dY[n].
__global__ void batch_permutation(const float* x, const int* indices, float* y, long long K, long long count) {
  FOR_EACH(i, count) { y[i] = x[indices[i / K] * K + i % K]; }
}

__global__ void batch_permutation_gradient(const float* dy, const int* indices, float* dx, long long K,
                                           long long count) {
  FOR_EACH(i, count) { atomicAdd(dx + indices[i / K] * K + i % K, dy[i]); }
}

}  // extern "C"
