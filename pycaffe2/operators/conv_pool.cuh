// Shared by conv.cu and pooling.cu (#include "conv_pool.cuh"): the window geometry both
// take, and how they find an element of an image seen as 3-D (detection_roi.cu's RoI
// kernels find theirs with locate and flat too).
//
// Every image is [N, C, D, H, W] (NCHW) or [N, D, H, W, C] (NHWC): 1-D and 2-D ops come
// in with leading spatial dims of 1 (kernel 1, stride 1, no padding). The host computes
// the window (kernel, stride, dilation, head pads, output size) exactly as the CPU
// kernel does and passes it as ints (_conv_pool.window_params); padded cells are
// simply skipped.
#pragma once

#include "common.cuh"

// The geometry every windowed kernel (pooling, im2col, col2im) takes, in this order.
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
