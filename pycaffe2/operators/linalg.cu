// CUDA kernels of the linalg family, float32: one tiled, register-blocked SGEMM
// (row-major, C = alpha * op(A) * op(B) + beta * C, batched over gridDim.z) that FC,
// MatMul, BatchMatMul (and other families, through linalg.gemm) run on; FC's bias add;
// and the column sums of FC's gradient.
//
// GEMM: a block of 256 threads computes a 128 x 128 tile of C, each thread an 8 x 8
// register block (rows tr*4 + {0..3} and 64 + tr*4 + {0..3}, columns likewise with tc, so
// shared-memory reads are conflict-free float4s). K advances 8 at a time through
// shared memory, both operands held k-major (As[k][m], Bs[k][n]); the next K slice is
// loaded into registers while the current one is multiplied. Elements outside the matrices
// load as 0 and outputs outside C are never written, so any M, N, K is correct.

#include "common.cuh"

namespace {

constexpr int TILE = 128;                      // rows and columns of C per block
constexpr int TILE_K = 8;                      // K per shared-memory step
constexpr int THREADS = 256;                   // 16 x 16 threads, 8 x 8 outputs each
constexpr int PAD = 4;                         // keeps rows 16-byte aligned, spreads banks
constexpr int LOADS = TILE * TILE_K / THREADS;  // elements per thread per operand per step
constexpr int HALF = TILE / 2;

// Where element e (0 <= e < TILE * TILE_K) of a tile goes: (k, i), i the row of op(A)
// or the column of op(B). Consecutive threads take consecutive addresses in memory:
// along k when the operand is stored with k contiguous, else along i.
template <bool ALONG_K>
__device__ __forceinline__ void tile_coords(int e, int& k, int& i) {
  if (ALONG_K) {
    k = e % TILE_K;
    i = e / TILE_K;
  } else {
    i = e % TILE;
    k = e / TILE;
  }
}

// This thread's share of the tile rows [i0, i0 + TILE) x k in [k0, k0 + TILE_K) of an
// operand with `extent` rows (i) and K columns (k): x[i * ld + k] when k is contiguous
// (ALONG_K), else x[k * ld + i]. Outside the operand: 0.
template <bool ALONG_K>
__device__ __forceinline__ void load_tile(const float* x, int ld, int extent, int K,
                                          int i0, int k0, float (&reg)[LOADS]) {
#pragma unroll
  for (int r = 0; r < LOADS; ++r) {
    int k, i;
    tile_coords<ALONG_K>(threadIdx.x + r * THREADS, k, i);
    const int row = i0 + i, col = k0 + k;
    reg[r] = 0.f;
    if (row < extent && col < K) {
      reg[r] = ALONG_K ? x[row * ld + col] : x[col * ld + row];
    }
  }
}

template <bool ALONG_K>
__device__ __forceinline__ void store_tile(float (*tile)[TILE + PAD], const float (&reg)[LOADS]) {
#pragma unroll
  for (int r = 0; r < LOADS; ++r) {
    int k, i;
    tile_coords<ALONG_K>(threadIdx.x + r * THREADS, k, i);
    tile[k][i] = reg[r];
  }
}

// The 8 values a thread reads from one k row of a tile: offsets t*4 .. t*4+3 and
// HALF + t*4 .. HALF + t*4 + 3.
__device__ __forceinline__ void read_fragment(const float* row, int t, float (&v)[8]) {
  const float4 lo = *reinterpret_cast<const float4*>(row + t * 4);
  const float4 hi = *reinterpret_cast<const float4*>(row + HALF + t * 4);
  v[0] = lo.x; v[1] = lo.y; v[2] = lo.z; v[3] = lo.w;
  v[4] = hi.x; v[5] = hi.y; v[6] = hi.z; v[7] = hi.w;
}

// Offset within the tile of the thread's j-th row (or column), j in 0..7.
__device__ __forceinline__ int fragment_offset(int t, int j) {
  return (j < 4 ? 0 : HALF) + t * 4 + (j & 3);
}

// op(A) is [M, K], op(B) is [K, N], C is [M, N], all row-major and contiguous; matrix z of
// a batch starts at z * stride (a stride of 0 reuses one matrix for every z). Within one
// matrix, indices are ints: the host allows at most 2^31 - 1 elements per matrix.
template <bool TRANS_A, bool TRANS_B>
__device__ __forceinline__ void gemm_body(const float* A, const float* B, float* C,
                                          long long batch, long long stride_a,
                                          long long stride_b, long long stride_c, int M, int N,
                                          int K, float alpha, float beta) {
  __shared__ __align__(16) float As[TILE_K][TILE + PAD];
  __shared__ __align__(16) float Bs[TILE_K][TILE + PAD];
  // A stored [M, K] (or [K, M] transposed); B stored [K, N] (or [N, K] transposed).
  const int lda = TRANS_A ? M : K;
  const int ldb = TRANS_B ? K : N;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  const int tiles_m = (M + TILE - 1) / TILE;
  const int col0 = blockIdx.x * TILE;
  // Loops over z and row tiles are uniform across the block (no thread skips a barrier).
  for (long long z = blockIdx.z; z < batch; z += gridDim.z) {
    const float* a = A + z * stride_a;
    const float* b = B + z * stride_b;
    float* c = C + z * stride_c;
    for (int tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
      const int row0 = tm * TILE;
      float acc[8][8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
      }
      float ra[LOADS], rb[LOADS];
      load_tile<!TRANS_A>(a, lda, M, K, row0, 0, ra);
      load_tile<TRANS_B>(b, ldb, N, K, col0, 0, rb);
      for (int k0 = 0; k0 < K; k0 += TILE_K) {
        store_tile<!TRANS_A>(As, ra);
        store_tile<TRANS_B>(Bs, rb);
        __syncthreads();
        if (k0 + TILE_K < K) {  // the next slice travels while this one is multiplied
          load_tile<!TRANS_A>(a, lda, M, K, row0, k0 + TILE_K, ra);
          load_tile<TRANS_B>(b, ldb, N, K, col0, k0 + TILE_K, rb);
        }
#pragma unroll
        for (int k = 0; k < TILE_K; ++k) {
          float av[8], bv[8];
          read_fragment(As[k], tr, av);
          read_fragment(Bs[k], tc, bv);
#pragma unroll
          for (int i = 0; i < 8; ++i) {
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
          }
        }
        __syncthreads();  // everyone is done reading As and Bs before they are refilled
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int row = row0 + fragment_offset(tr, i);
        if (row >= M) continue;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int col = col0 + fragment_offset(tc, j);
          if (col >= N) continue;
          const int at = row * N + col;
          float value = alpha * acc[i][j];
          if (beta != 0.f) value += beta * c[at];  // beta 0 never reads C (it may hold NaN)
          c[at] = value;
        }
      }
    }
  }
}

}  // namespace

extern "C" {

// gemm_<op A><op B>: n as stored, t transposed. Grid: (ceil(N / 128), row tiles, batch),
// 256 threads; any grid y and z are correct (the kernel strides over row tiles and batch).
__global__ void __launch_bounds__(THREADS, 2)
gemm_nn(const float* a, const float* b, float* c, long long batch, long long stride_a,
        long long stride_b, long long stride_c, int m, int n, int k, float alpha, float beta) {
  gemm_body<false, false>(a, b, c, batch, stride_a, stride_b, stride_c, m, n, k, alpha, beta);
}

__global__ void __launch_bounds__(THREADS, 2)
gemm_nt(const float* a, const float* b, float* c, long long batch, long long stride_a,
        long long stride_b, long long stride_c, int m, int n, int k, float alpha, float beta) {
  gemm_body<false, true>(a, b, c, batch, stride_a, stride_b, stride_c, m, n, k, alpha, beta);
}

__global__ void __launch_bounds__(THREADS, 2)
gemm_tn(const float* a, const float* b, float* c, long long batch, long long stride_a,
        long long stride_b, long long stride_c, int m, int n, int k, float alpha, float beta) {
  gemm_body<true, false>(a, b, c, batch, stride_a, stride_b, stride_c, m, n, k, alpha, beta);
}

__global__ void __launch_bounds__(THREADS, 2)
gemm_tt(const float* a, const float* b, float* c, long long batch, long long stride_a,
        long long stride_b, long long stride_c, int m, int n, int k, float alpha, float beta) {
  gemm_body<true, true>(a, b, c, batch, stride_a, stride_b, stride_c, m, n, k, alpha, beta);
}

// y[i, j] += bias[j] for y of `count` elements in rows of n.
__global__ void add_bias(float* y, const float* bias, long long n, long long count) {
  FOR_EACH(i, count) { y[i] += bias[i % n]; }
}

// out[blockIdx.y, j] = sum of x[i, j] over rows i = blockIdx.y * 16 + threadIdx.y, stepping
// 16 * gridDim.y: with gridDim.y == 1 these are x's column sums, else per-chunk partial sums
// that a second launch over out (gridDim.y rows) adds up. Block: 32 x 16 threads, 32
// columns; each thread sums its rows, then thread row 0 adds the 16 partial sums in a
// fixed order (deterministic, no atomics).
__global__ void column_sums(const float* x, float* out, long long rows, long long cols) {
  __shared__ float partial[16][33];
  const long long step = 16LL * gridDim.y;
  for (long long c0 = blockIdx.x * 32LL; c0 < cols; c0 += 32LL * gridDim.x) {
    const long long col = c0 + threadIdx.x;
    float sum = 0.f;
    if (col < cols) {
      for (long long r = blockIdx.y * 16LL + threadIdx.y; r < rows; r += step) {
        sum += x[r * cols + col];
      }
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
      float total = 0.f;
      for (int t = 0; t < 16; ++t) total += partial[t][threadIdx.x];
      out[blockIdx.y * cols + col] = total;
    }
    __syncthreads();  // partial is rewritten by the next column group
  }
}

}  // extern "C"
