// Shared by the CUDA kernel files of pycaffe2/operators (#include "common.cuh").
#pragma once

// One element per thread over a grid-stride loop: any grid size is correct.
#define FOR_EACH(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

// One block per row, blocks looping over the rows past the grid.
#define FOR_EACH_ROW(row, rows) \
  for (long long row = blockIdx.x; row < (rows); row += gridDim.x)

// The columns of a row (one block per row), or all elements of a one-block kernel.
#define FOR_EACH_IN_BLOCK(c, n) \
  for (long long c = threadIdx.x; c < (n); c += blockDim.x)

#define MAX_THREADS 1024

// Offset of row-major index `index` over dims[ndim], with the given strides (the
// broadcasting and reducing kernels walk strided operands with it).
__device__ __forceinline__ long long strided_offset(long long index, const long long* dims,
                                                   const long long* strides, int ndim) {
  long long offset = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    offset += (index % dims[d]) * strides[d];
    index /= dims[d];
  }
  return offset;
}

// Every thread of the block must call these (they synchronise); all get the result.
// `buf` is shared memory of blockDim.x doubles; blockDim.x is a power of two.
// Sums are taken in double, so a row of a million floats sums as well as NumPy's.
__device__ __forceinline__ double block_sum(double v, double* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  double total = buf[0];
  __syncthreads();  // everyone has read buf[0] before buf is written again
  return total;
}

__device__ __forceinline__ float block_max(float v, double* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] = fmax(buf[threadIdx.x], buf[threadIdx.x + s]);
    __syncthreads();
  }
  float top = (float)buf[0];
  __syncthreads();
  return top;
}
