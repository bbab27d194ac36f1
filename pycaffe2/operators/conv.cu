// CUDA kernels of the conv family, float32: im2col / col2im and layout moves for the
// convolutions; their products run on linalg's gemm.
//
// The windowed image (X of a Conv, or the output side of its adjoint) comes with
// conv_pool.cuh's geometry (POOL_PARAMS). Columns are [group, C/group * KD*KH*KW,
// N * OD*OH*OW]; a row is (channel, kernel offset) in NCHW and (kernel offset, channel)
// in NHWC, the filter's own order, so the filter as stored is the product's left factor.

#include "conv_pool.cuh"

extern "C" {

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

}  // extern "C"
