// CUDA kernels of the resize family (ResizeNearest, UpsampleBilinear and their
// gradients), float32 data. Source positions are computed in float exactly as the
// CPU kernels do. The gradients gather instead of scattering: each dX element sums
// the dY elements that read it, found as a run of output rows and one of output
// columns (the source position is monotone in the output position), so no atomics.

#include "common.cuh"

// ResizeNearest's source index of output index o: min(int(o / scale), in - 1).
__device__ __forceinline__ long long nearest_source(long long o, float scale, long long in) {
  const float s = (float)o / scale;  // clamped before the conversion, which could overflow
  const long long i = s < 2147483648.f ? (long long)s : 2147483648LL;
  return i < in - 1 ? i : in - 1;
}

// The first output index o in [0, out] whose nearest source is >= target (out if none).
__device__ long long nearest_first(long long target, float scale, long long in, long long out) {
  long long o = (long long)((float)target * scale);
  o = o < 0 ? 0 : (o > out ? out : o);
  while (o > 0 && nearest_source(o - 1, scale, in) >= target) --o;
  while (o < out && nearest_source(o, scale, in) < target) ++o;
  return o;
}

// UpsampleBilinear's lower source row of output row o: int(ratio * o).
__device__ __forceinline__ long long bilinear_source(long long o, float ratio) {
  return (long long)(ratio * (float)o);
}

// The first output index o in [0, out] whose lower source is >= target (out if none).
__device__ long long bilinear_first(long long target, float ratio, long long out) {
  long long o = ratio > 0.f ? (long long)((float)target / ratio) : (target <= 0 ? 0 : out);
  o = o < 0 ? 0 : (o > out ? out : o);
  while (o > 0 && bilinear_source(o - 1, ratio) >= target) --o;
  while (o < out && bilinear_source(o, ratio) < target) ++o;
  return o;
}

// The weight with which output index o (lower source s, fraction lambda) reads input i.
__device__ __forceinline__ float bilinear_weight(long long o, float ratio, long long in, long long i) {
  const float r = ratio * (float)o;
  const long long s = (long long)r;
  const long long p = s < in - 1 ? 1 : 0;
  const float lambda1 = r - (float)s;
  const float lambda0 = 1.f - lambda1;
  return (s == i ? lambda0 : 0.f) + (s + p == i ? lambda1 : 0.f);
}

// Image n, channel ch, row y and column x of element i of an [N, C, H, W] tensor
// (nhwc: [N, H, W, C]).
__device__ __forceinline__ void image_position(long long i, long long nhwc, long long c, long long h,
                                               long long w, long long* n, long long* ch, long long* y,
                                               long long* x) {
  if (nhwc) {
    *ch = i % c; i /= c;
  }
  *x = i % w; i /= w;
  *y = i % h; i /= h;
  if (!nhwc) {
    *ch = i % c; i /= c;
  }
  *n = i;
}

extern "C" {

// Y[n, c, y, x] = X[n, c, src(y), src(x)] (nhwc: [n, y, x, c]).
__global__ void resize_nearest(const float* x, float* y, long long n, long long c, long long h,
                               long long w, long long oh, long long ow, float height_scale,
                               float width_scale, long long nhwc) {
  FOR_EACH(i, n * c * oh * ow) {
    long long rest, ch, oy, ox;
    image_position(i, nhwc, c, oh, ow, &rest, &ch, &oy, &ox);
    const long long sy = nearest_source(oy, height_scale, h), sx = nearest_source(ox, width_scale, w);
    y[i] = nhwc ? x[((rest * h + sy) * w + sx) * c + ch] : x[((rest * c + ch) * h + sy) * w + sx];
  }
}

// dX[n, c, iy, ix] = sum of dY[n, c, oy, ox] over the outputs that read (iy, ix).
__global__ void resize_nearest_gradient(const float* dy, float* dx, long long n, long long c,
                                        long long h, long long w, long long oh, long long ow,
                                        float height_scale, float width_scale, long long nhwc) {
  FOR_EACH(i, n * c * h * w) {
    long long rest, ch, iy, ix;
    image_position(i, nhwc, c, h, w, &rest, &ch, &iy, &ix);
    const long long y0 = nearest_first(iy, height_scale, h, oh);
    const long long y1 = nearest_first(iy + 1, height_scale, h, oh);
    const long long x0 = nearest_first(ix, width_scale, w, ow);
    const long long x1 = nearest_first(ix + 1, width_scale, w, ow);
    float sum = 0.f;
    for (long long oy = y0; oy < y1; ++oy) {
      for (long long ox = x0; ox < x1; ++ox) {
        sum += nhwc ? dy[((rest * oh + oy) * ow + ox) * c + ch] : dy[((rest * c + ch) * oh + oy) * ow + ox];
      }
    }
    dx[i] = sum;
  }
}

// Y[p, oy, ox] bilinear from X[p] (p = n * C + c), aligned corners.
__global__ void upsample_bilinear(const float* x, float* y, long long planes, long long h, long long w,
                                  long long oh, long long ow, float rheight, float rwidth) {
  FOR_EACH(i, planes * oh * ow) {
    const long long ox = i % ow, oy = (i / ow) % oh, p = i / (ow * oh);
    const float hr = rheight * (float)oy, wr = rwidth * (float)ox;
    const long long h1 = (long long)hr, w1 = (long long)wr;
    const long long down = h1 < h - 1 ? w : 0, right = w1 < w - 1 ? 1 : 0;  // next row, column
    const float h1l = hr - (float)h1, w1l = wr - (float)w1;
    const float h0l = 1.f - h1l, w0l = 1.f - w1l;
    const float* at = x + (p * h + h1) * w + w1;
    y[i] = h0l * (w0l * at[0] + w1l * at[right]) + h1l * (w0l * at[down] + w1l * at[down + right]);
  }
}

// dX[p, iy, ix] = sum of weight(oy, iy) * weight(ox, ix) * dY[p, oy, ox] over the outputs
// whose lower source row is iy - 1 or iy (and likewise for columns).
__global__ void upsample_bilinear_gradient(const float* dy, float* dx, long long planes, long long h,
                                           long long w, long long oh, long long ow, float rheight,
                                           float rwidth) {
  FOR_EACH(i, planes * h * w) {
    const long long ix = i % w, iy = (i / w) % h, p = i / (w * h);
    const long long y0 = bilinear_first(iy - 1, rheight, oh), y1 = bilinear_first(iy + 1, rheight, oh);
    const long long x0 = bilinear_first(ix - 1, rwidth, ow), x1 = bilinear_first(ix + 1, rwidth, ow);
    float sum = 0.f;
    for (long long oy = y0; oy < y1; ++oy) {
      const float wy = bilinear_weight(oy, rheight, h, iy);
      if (wy == 0.f) continue;
      float row = 0.f;
      for (long long ox = x0; ox < x1; ++ox) {
        row += bilinear_weight(ox, rwidth, w, ix) * dy[(p * oh + oy) * ow + ox];
      }
      sum += wy * row;
    }
    dx[i] = sum;
  }
}

}  // extern "C"
