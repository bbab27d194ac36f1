// CUDA kernels of the reduction family. ReduceSum and ReduceMean use the
// strided sums of arithmetic.cu; this file holds the maximum searches
// (ReduceMax, ArgMax) and the gradients, which broadcast dY back over X.
//
// Maximum searches take the layout of arithmetic.cu's reduce_*: the host splits
// X's (merged) dims into kept and reduced ones, and meta holds kept_dims[nk],
// kept_strides[nk], reduced_dims[nr], reduced_strides[nr], strides into x.
// Output element j lies at the kept coordinates of j; the search runs over the
// reduced coordinates in row-major order r = 0, 1, ... (ArgMax: the one axis).
//
// Gradients walk X (row-major, one thread per element) and read dY (and Y) at
// the element's kept coordinates: meta holds dims[ndim] of X and the strides of
// dY over them, 0 along the reduced dims.

#include "common.cuh"

#define SEARCH_BLOCK 256  // the host launches the *_blocks kernels with exactly this many threads

// A candidate maximum: its value and position r in the search (-1: none yet).
// As np.max and np.argmax: NaN beats any number (the first NaN wins), then the
// larger value, and among equals the first. This order is associative, so
// threads may search shares of the positions and combine in any grouping.
template <typename T>
struct Best {
  T value;
  long long r;
};

template <typename T>
__device__ bool is_nan(T v) { return v != v; }  // never true for integers

template <typename T>
__device__ Best<T> better(Best<T> a, Best<T> b) {
  if (a.r < 0 || b.r < 0) return a.r < 0 ? b : a;
  bool a_nan = is_nan(a.value), b_nan = is_nan(b.value);
  if (a_nan != b_nan) return a_nan ? a : b;
  if (!a_nan && a.value != b.value) return a.value > b.value ? a : b;
  return a.r < b.r ? a : b;
}

// The best of target j's reduced positions first, first + step, ... (< n_red).
template <typename T>
__device__ Best<T> search(const T* x, const long long* meta, int nk, int nr, long long j,
                          long long n_red, long long first, long long step) {
  const long long* reduced = meta + 2 * nk;
  long long base = strided_offset(j, meta, meta + nk, nk);
  Best<T> best = {T(0), -1};
  for (long long r = first; r < n_red; r += step) {
    Best<T> here = {x[base + strided_offset(r, reduced, reduced + nr, nr)], r};
    best = better(best, here);
  }
  return best;
}

// Either output may be absent (NULL): ReduceMax writes values, ArgMax positions.
template <typename T>
__device__ void store(Best<T> best, T* y, long long* index, long long j) {
  if (y) y[j] = best.value;
  if (index) index[j] = best.r;
}

// One thread per target element: for many targets or short searches.
template <typename T>
__device__ void max_serial(const T* x, T* y, long long* index, const long long* meta, int nk,
                           int nr, long long n_out, long long n_red) {
  FOR_EACH(j, n_out) { store(search(x, meta, nk, nr, j, n_red, 0, 1), y, index, j); }
}

// One block of SEARCH_BLOCK threads per target element (a grid-stride loop over
// targets): each thread searches a strided share, a shared-memory tree combines.
template <typename T>
__device__ void max_blocks(const T* x, T* y, long long* index, const long long* meta, int nk,
                           int nr, long long n_out, long long n_red) {
  __shared__ T values[SEARCH_BLOCK];
  __shared__ long long positions[SEARCH_BLOCK];
  for (long long j = blockIdx.x; j < n_out; j += gridDim.x) {  // uniform across the block
    Best<T> mine = search(x, meta, nk, nr, j, n_red, threadIdx.x, SEARCH_BLOCK);
    values[threadIdx.x] = mine.value;
    positions[threadIdx.x] = mine.r;
    __syncthreads();
    for (int half = SEARCH_BLOCK / 2; half > 0; half >>= 1) {
      if (threadIdx.x < half) {
        Best<T> a = {values[threadIdx.x], positions[threadIdx.x]};
        Best<T> b = {values[threadIdx.x + half], positions[threadIdx.x + half]};
        Best<T> top = better(a, b);
        values[threadIdx.x] = top.value;
        positions[threadIdx.x] = top.r;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) store(Best<T>{values[0], positions[0]}, y, index, j);
    __syncthreads();  // the result is read before the next target overwrites the shares
  }
}

#define MAX_KERNELS(T)                                                                        \
  __global__ void max_serial_##T(const T* x, T* y, long long* index, const long long* meta,  \
                                 int nk, int nr, long long n_out, long long n_red) {          \
    max_serial(x, y, index, meta, nk, nr, n_out, n_red);                                      \
  }                                                                                           \
  __global__ void max_blocks_##T(const T* x, T* y, long long* index, const long long* meta,  \
                                 int nk, int nr, long long n_out, long long n_red) {          \
    max_blocks(x, y, index, meta, nk, nr, n_out, n_red);                                      \
  }

typedef long long int64;

extern "C" {

// float for ReduceMax and ArgMax; the integer types for ArgMax of indices or labels.
MAX_KERNELS(float)
MAX_KERNELS(int)
MAX_KERNELS(int64)

// ReduceSumGradient (d = 1) and ReduceMeanGradient (d = the count): dx = dy / d.
__global__ void broadcast_divide(const float* dy, float* dx, const long long* meta, int ndim,
                                 float d, long long n) {
  FOR_EACH(i, n) { dx[i] = dy[strided_offset(i, meta, meta + ndim, ndim)] / d; }
}

// ReduceMaxGradient: dx = dy where x equals its maximum y (ties all get it), else 0.
__global__ void max_gradient(const float* dy, const float* x, const float* y, float* dx,
                             const long long* meta, int ndim, long long n) {
  FOR_EACH(i, n) {
    long long o = strided_offset(i, meta, meta + ndim, ndim);
    dx[i] = x[i] == y[o] ? dy[o] : 0.f;
  }
}

}  // extern "C"
