// Compiles this project's CUDA C kernels as C++ for the CPU (g++ -include this file), so
// the device checks run without a GPU. Each block's threads are fibers on one OS thread:
// a fiber runs until __syncthreads() or its end, then the next one runs; when every live
// fiber has reached the barrier the round starts again. That is exactly the barrier's
// guarantee and nothing more, so a kernel that forgets a __syncthreads reads stale
// shared memory here as it could on a GPU, only deterministically.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
using uint3 = dim3;
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
struct __attribute__((aligned(8))) float2 {
  float x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
// One fiber runs at a time, so a plain read-add-write is atomic here.
inline float atomicAdd(float* address, float value) {
  float old = *address;
  *address = old + value;
  return old;
}

namespace emu {

struct Fiber {
  void* sp = nullptr;  // saved stack pointer while switched out
  dim3 index;
  bool done = false;
};

inline dim3 block_index, block_dim, grid_dim;
inline Fiber* current = nullptr;
inline void* scheduler_sp = nullptr;
inline void (*body)(void*) = nullptr;
inline void* body_data = nullptr;

// switch_to(save, load): store the callee-saved registers and the stack pointer in
// *save, continue where *load was saved. Callee-saved registers only: the rest are
// the caller's to keep across a call, and x86-64's are all it has to keep.
extern "C" void emu_switch(void** save, void* load);
asm(R"(
.text
.globl emu_switch
.hidden emu_switch
.type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size emu_switch, .-emu_switch
)");

[[noreturn]] inline void fiber_entry() {
  body(body_data);
  current->done = true;
  emu_switch(&current->sp, scheduler_sp);
  std::abort();  // a finished fiber is never resumed
}

constexpr std::size_t STACK_BYTES = 64 * 1024;  // kernels keep a few registers' worth

// A fresh stack whose first switch "returns" into fiber_entry, aligned as a call would leave it.
inline void* start_stack(char* stack) {
  auto top = reinterpret_cast<std::uintptr_t>(stack + STACK_BYTES) & ~std::uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                      // fiber_entry's (never used) return address
  *--sp = reinterpret_cast<void*>(&fiber_entry);        // where `ret` goes
  for (int reg = 0; reg < 6; ++reg) *--sp = nullptr;    // rbp rbx r12 r13 r14 r15
  return sp;
}

extern "C" char __start_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_emu_shared[] __attribute__((weak, visibility("hidden")));

// The i-th of n blocks, or of n threads in a round, to run. Any order is one a GPU may
// use; PYCAFFE2_CUDA_EMULATOR_ORDER=reverse (-DEMU_REVERSE) turns both around, so a
// kernel whose results hang on the order (a race) shows as a change.
inline unsigned in_order(unsigned i, unsigned n) {
#ifdef EMU_REVERSE
  return n - 1 - i;
#else
  (void)n;
  return i;
#endif
}

// Runs body(data) as every thread of every block (blocks one after another).
inline void run_grid(dim3 grid, dim3 block, void (*kernel_body)(void*), void* data) {
  static std::vector<std::vector<char>> stacks;
  const unsigned threads = block.x * block.y * block.z;
  const unsigned blocks = grid.x * grid.y * grid.z;
  if (stacks.size() < threads) stacks.resize(threads);
  for (auto& stack : stacks) stack.resize(STACK_BYTES);
  std::vector<Fiber> fibers(threads);
  body = kernel_body;
  body_data = data;
  grid_dim = grid;
  block_dim = block;
  for (unsigned b = 0; b < blocks; ++b) {
    const unsigned linear = in_order(b, blocks);
    block_index = {linear % grid.x, (linear / grid.x) % grid.y, linear / (grid.x * grid.y)};
    if (__start_emu_shared) std::fill(__start_emu_shared, __stop_emu_shared, char(0xFF));
    for (unsigned t = 0; t < threads; ++t) {
      fibers[t].index = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      fibers[t].done = false;
      fibers[t].sp = start_stack(stacks[t].data());
    }
    for (bool live = true; live;) {  // one round: every live fiber to its next barrier
      live = false;
      for (unsigned t = 0; t < threads; ++t) {
        Fiber& fiber = fibers[in_order(t, threads)];
        if (fiber.done) continue;
        current = &fiber;
        emu_switch(&scheduler_sp, fiber.sp);
        live = live || !fiber.done;
      }
    }
  }
}

inline void syncthreads() { emu_switch(&current->sp, scheduler_sp); }

// Signature of a kernel for the Python side's argument checks, one code per parameter:
// p<element code> for a pointer, else the element code: f<bytes> or i<bytes> (bool: i1).
template <typename T>
std::string code() {
  if constexpr (std::is_pointer_v<T>) {
    return "p" + code<std::remove_cv_t<std::remove_pointer_t<T>>>();
  } else {
    return (std::is_floating_point_v<T> ? "f" : "i") + std::to_string(sizeof(T));
  }
}

template <typename... A>
const char* signature(void (*)(A...)) {
  static const std::string text = [] {
    std::string s;
    ((s += code<std::remove_cv_t<A>>() + ","), ...);
    return s;
  }();
  return text.c_str();
}

template <typename... A, std::size_t... I>
void call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <typename... A>
void launch(void (*kernel)(A...), void** args, const unsigned* dims) {
  struct Call {
    void (*kernel)(A...);
    void** args;
  } call_data{kernel, args};
  run_grid({dims[0], dims[1], dims[2]}, {dims[3], dims[4], dims[5]},
           [](void* data) {
             auto* c = static_cast<Call*>(data);
             call(c->kernel, c->args, std::index_sequence_for<A...>{});
           },
           &call_data);
}

}  // namespace emu

#define threadIdx (emu::current->index)
#define blockIdx (emu::block_index)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define __syncthreads() emu::syncthreads()
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// Shared memory: statics in a section of their own, all one bits (NaN) at each block's
// start as a GPU's is undefined, so a read before any write or barrier shows.
#define __shared__ static __attribute__((section("emu_shared")))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// Device intrinsics: the correctly rounded ones are the plain operations here (built
// with -ffp-contract=off, so nothing is fused behind their back).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float rsqrtf(float a) { return 1.f / std::sqrt(a); }
inline float cospif(float a) { return (float)std::cos(M_PI * (double)a); }
inline float sinpif(float a) { return (float)std::sin(M_PI * (double)a); }
inline float __expf(float a) { return std::exp(a); }
inline float __logf(float a) { return std::log(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float a) { return std::min(1.f, std::max(0.f, a)); }
using std::isfinite;
using std::isinf;
using std::isnan;
using std::max;
using std::min;
