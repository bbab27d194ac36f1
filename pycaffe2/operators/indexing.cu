// CUDA kernels of the indexing family: gathers and scatter-adds (Slice moves with
// tensor.cu's `move`). Gathers are typed by element size, as tensor.cu's moves:
// `_f4` float32, `_i1`, `_i2`, `_i4`, `_i8` 1, 2, 4 and 8-byte integers or bools. The
// scatter-adds (SparseToDense) accumulate float32 in double and integers in 64 bits
// (which wraps to the output type as NumPy's sums do).

#include "common.cuh"

#define GATHER_TYPES(M) M(f4, float) M(i1, unsigned char) M(i2, unsigned short) \
  M(i4, unsigned int) M(i8, unsigned long long)
#define SUM_TYPES(M) M(f4, float, double) M(i4, int, long long) M(i8, long long, long long)

// y[o, j, k] = x[o, idx[o * idx_stride + j], k] over [outer, count, inner]; the
// indices are already checked and wrapped to [0, dim) on the host.
template <typename T>
__device__ void gather(const T* x, const long long* idx, T* y, long long count, long long dim,
                       long long inner, long long idx_stride, long long n) {
  FOR_EACH(i, n) {
    long long k = i % inner, j = (i / inner) % count, o = i / (inner * count);
    y[i] = x[(o * dim + idx[o * idx_stride + j]) * inner + k];
  }
}

// out[r, c] = sum of values[order[k], c] for k in [row_start[r], row_start[r + 1]): the
// rows whose index is r, in their input order (the host sorts the indices stably).
template <typename T, typename Acc>
__device__ void sparse_to_dense(const T* values, const long long* order,
                                const long long* row_start, T* out, long long inner,
                                long long n) {
  FOR_EACH(i, n) {
    long long r = i / inner, c = i % inner;
    Acc acc = 0;
    for (long long k = row_start[r]; k < row_start[r + 1]; ++k) acc += values[order[k] * inner + c];
    out[i] = (T)acc;
  }
}

extern "C" {

#define GATHER_KERNEL(code, T)                                                              \
  __global__ void gather_##code(const T* x, const long long* idx, T* y, long long count,   \
                                long long dim, long long inner, long long idx_stride,       \
                                long long n) {                                              \
    gather<T>(x, idx, y, count, dim, inner, idx_stride, n);                                 \
  }
GATHER_TYPES(GATHER_KERNEL)

#define SPARSE_TO_DENSE_KERNEL(code, T, Acc)                                                \
  __global__ void sparse_to_dense_##code(const T* values, const long long* order,          \
                                         const long long* row_start, T* out,                \
                                         long long inner, long long n) {                    \
    sparse_to_dense<T, Acc>(values, order, row_start, out, inner, n);                       \
  }
SUM_TYPES(SPARSE_TO_DENSE_KERNEL)

}  // extern "C"
