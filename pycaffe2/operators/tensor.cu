// CUDA kernels of the tensor family (and `move` and `zero` for the indexing family's
// slices). Most ops only move elements, so the kernels are typed by element size, not
// meaning: `_f4` moves float32, `_i1`, `_i2`, `_i4`, `_i8` move 1, 2, 4 and 8-byte
// integers or bools, bit for bit.
//
// move_*: for every index k over dims[ndim] (row-major, the last dim fastest),
// y[y_base + k . y_strides] = x[x_base + k . x_strides]. `meta` holds dims[ndim],
// x_strides[ndim], y_strides[ndim]. Transposes, slices, joins, splits, tiles (a
// stride of 0) and channel shuffles are all such a move; the host merges dims.
//
// Sums (TileGradient) accumulate float32 in double and integers in 64 bits (which
// wraps to the output type as NumPy's sums do).

#include "common.cuh"

#define MOVE_TYPES(M) M(f4, float) M(i1, unsigned char) M(i2, unsigned short) \
  M(i4, unsigned int) M(i8, unsigned long long)
#define SUM_TYPES(M) M(f4, float, double) M(i4, int, long long) M(i8, long long, long long)

template <typename T>
__device__ void move(const T* x, T* y, const long long* meta, int ndim, long long x_base,
                     long long y_base, long long n) {
  FOR_EACH(i, n) {
    long long rest = i, xo = x_base, yo = y_base;
    for (int d = ndim - 1; d >= 0; --d) {
      long long k = rest % meta[d];
      rest /= meta[d];
      xo += k * meta[ndim + d];
      yo += k * meta[2 * ndim + d];
    }
    y[yo] = x[xo];
  }
}

// dx[o, r] = sum over t of dy[o, t, r]: [outer, tiles, block] summed over the tiles.
template <typename T, typename Acc>
__device__ void tile_sum(const T* dy, T* dx, long long tiles, long long block, long long n) {
  FOR_EACH(i, n) {
    long long o = i / block, r = i % block;
    Acc acc = 0;
    for (long long t = 0; t < tiles; ++t) acc += dy[(o * tiles + t) * block + r];
    dx[i] = (T)acc;
  }
}

// Cast: C conversions, as NumPy's astype for values the target type can hold (to bool:
// nonzero, NaN included, is true).
#define CAST_TYPES_IN(M) M(f32, float) M(b8, bool) M(u8, unsigned char) M(i8, signed char) \
  M(u16, unsigned short) M(i16, short) M(i32, int) M(i64, long long)
#define CAST_TYPES_OUT(M, in_name, Tin) M(in_name, Tin, f32, float) M(in_name, Tin, b8, bool) \
  M(in_name, Tin, u8, unsigned char) M(in_name, Tin, i8, signed char)                     \
  M(in_name, Tin, u16, unsigned short) M(in_name, Tin, i16, short)                         \
  M(in_name, Tin, i32, int) M(in_name, Tin, i64, long long)

extern "C" {

#define MOVE_KERNELS(code, T)                                                               \
  __global__ void move_##code(const T* x, T* y, const long long* meta, int ndim,           \
                              long long x_base, long long y_base, long long n) {            \
    move<T>(x, y, meta, ndim, x_base, y_base, n);                                           \
  }                                                                                         \
  __global__ void zero_##code(T* y, long long n) {                                          \
    FOR_EACH(i, n) y[i] = 0;                                                                \
  }
MOVE_TYPES(MOVE_KERNELS)

#define SUM_KERNELS(code, T, Acc)                                                           \
  __global__ void tile_sum_##code(const T* dy, T* dx, long long tiles, long long block,     \
                                  long long n) {                                            \
    tile_sum<T, Acc>(dy, dx, tiles, block, n);                                              \
  }
SUM_TYPES(SUM_KERNELS)

#define CAST_KERNEL(in_name, Tin, out_name, Tout)                                           \
  __global__ void cast_##in_name##_##out_name(const Tin* x, Tout* y, long long n) {         \
    FOR_EACH(i, n) y[i] = (Tout)x[i];                                                       \
  }
#define CAST_FROM(in_name, Tin) CAST_TYPES_OUT(CAST_KERNEL, in_name, Tin)
CAST_TYPES_IN(CAST_FROM)

}  // extern "C"
