// torch/kernel_table.hpp: the op library's compute, reached through one
// per-instruction-set kernel module chosen at load time (runtime SIMD dispatch).
//
// The element loops (kernels.cpp, export_kernels.cpp and the library headers
// they instantiate) are compiled three times on x86-64, into
// libstableqat_torch_kernels_{sse2,avx2,avx512}.so, each with its own -m flags
// and a linker version script that exports only stableqat_torch_kernel_table.
// libstableqat_torch.so (the torch glue, compiled for the baseline) dlopen()s
// the best module the CPU supports (or $STABLEQAT_TORCH_ARCH) with RTLD_LOCAL
// and calls it through this table. No object file of one instruction set ever
// shares a shared object with another, so the linker can never merge an
// AVX-512 copy of an inline/template function (ours, xsimd's or the standard
// library's) into code that runs on an SSE2 machine (docs/torch.md, "SIMD dispatch").
#pragma once

#include <cstddef>
#include <cstdint>

#include "export_kernels.hpp"
#include "kernels.hpp"
#include "options.hpp"

namespace stableqat::torch_adapter {

/// Bumped whenever kernel_table or the buffer structs change: a stale module is refused.
inline constexpr int kernel_table_version = 3;

/// Entry points of one kernel module (all torch-free, raw contiguous buffers).
struct kernel_table {
  int version;
  const char* arch;  ///< "sse2", "avx2", "avx512" (or "generic" off x86-64)
  void (*forward_f)(op_options const&, forward_buffers<float> const&, int);
  void (*forward_d)(op_options const&, forward_buffers<double> const&, int);
  void (*backward_f)(op_options const&, backward_buffers<float> const&, int);
  void (*backward_d)(op_options const&, backward_buffers<double> const&, int);
  void (*forward_bf16)(op_options const&, forward_buffers<float, bfloat16> const&, int);
  void (*forward_f16)(op_options const&, forward_buffers<float, float16> const&, int);
  void (*backward_bf16)(op_options const&, backward_buffers<float, bfloat16> const&, int);
  void (*backward_f16)(op_options const&, backward_buffers<float, float16> const&, int);
  void (*init_steps_f)(op_options const&, const char*, const float*, std::size_t, float*);
  void (*init_steps_d)(op_options const&, const char*, const double*, std::size_t, double*);
  void (*codes_f)(op_options const&, const float*, std::size_t, const float*, const float*, void*, int);
  void (*codes_d)(op_options const&, const double*, std::size_t, const double*, const double*, void*, int);
  void (*dequantize_f)(op_options const&, std::size_t, const std::uint8_t*, std::size_t, const float*, const float*,
                       float*, std::size_t, int);
  void (*dequantize_d)(op_options const&, std::size_t, const std::uint8_t*, std::size_t, const double*,
                       const double*, double*, std::size_t, int);
  void (*pack)(stableqat::grid const&, std::size_t, const void*, std::size_t, std::uint8_t*, std::size_t);
  void (*unpack)(stableqat::grid const&, std::size_t, const std::uint8_t*, std::size_t, void*, std::size_t);
  code_storage (*storage_of)(stableqat::grid const&);
  std::size_t (*packed_size)(stableqat::grid const&, std::size_t, std::size_t);
};

/// The module's one exported symbol.
#define STABLEQAT_TORCH_KERNEL_ENTRY "stableqat_torch_kernel_table"

/// The table of the kernel module in use, loaded on first call: $STABLEQAT_TORCH_ARCH
/// (sse2 | avx2 | avx512 | auto) or, when unset/auto, the widest instruction set the
/// CPU and OS support. Throws std::runtime_error when the forced set is unknown or
/// unsupported here, or the module file is missing (naming the path).
kernel_table const& kernels();

/// Calls into the module in use, overloaded on the element type.
namespace dispatched {
inline void run_forward(op_options const& o, forward_buffers<float> const& b, int t) { kernels().forward_f(o, b, t); }
inline void run_forward(op_options const& o, forward_buffers<double> const& b, int t) { kernels().forward_d(o, b, t); }
inline void run_backward(op_options const& o, backward_buffers<float> const& b, int t) {
  kernels().backward_f(o, b, t);
}
inline void run_backward(op_options const& o, backward_buffers<double> const& b, int t) {
  kernels().backward_d(o, b, t);
}
inline void run_forward(op_options const& o, forward_buffers<float, bfloat16> const& b, int t) {
  kernels().forward_bf16(o, b, t);
}
inline void run_forward(op_options const& o, forward_buffers<float, float16> const& b, int t) {
  kernels().forward_f16(o, b, t);
}
inline void run_backward(op_options const& o, backward_buffers<float, bfloat16> const& b, int t) {
  kernels().backward_bf16(o, b, t);
}
inline void run_backward(op_options const& o, backward_buffers<float, float16> const& b, int t) {
  kernels().backward_f16(o, b, t);
}
inline void run_init_steps(op_options const& o, const char* rule, const float* x, std::size_t n, float* s) {
  kernels().init_steps_f(o, rule, x, n, s);
}
inline void run_init_steps(op_options const& o, const char* rule, const double* x, std::size_t n, double* s) {
  kernels().init_steps_d(o, rule, x, n, s);
}
inline void run_quantize_to_codes(op_options const& o, const float* x, std::size_t n, const float* s,
                                  const float* b, void* codes, int t) {
  kernels().codes_f(o, x, n, s, b, codes, t);
}
inline void run_quantize_to_codes(op_options const& o, const double* x, std::size_t n, const double* s,
                                  const double* b, void* codes, int t) {
  kernels().codes_d(o, x, n, s, b, codes, t);
}
inline void run_dequantize(op_options const& o, std::size_t cols, const std::uint8_t* p, std::size_t bytes,
                           const float* s, const float* b, float* y, std::size_t n, int t) {
  kernels().dequantize_f(o, cols, p, bytes, s, b, y, n, t);
}
inline void run_dequantize(op_options const& o, std::size_t cols, const std::uint8_t* p, std::size_t bytes,
                           const double* s, const double* b, double* y, std::size_t n, int t) {
  kernels().dequantize_d(o, cols, p, bytes, s, b, y, n, t);
}
inline void run_pack_codes(stableqat::grid const& g, std::size_t cols, const void* codes, std::size_t n,
                           std::uint8_t* p, std::size_t bytes) {
  kernels().pack(g, cols, codes, n, p, bytes);
}
inline void run_unpack_codes(stableqat::grid const& g, std::size_t cols, const std::uint8_t* p, std::size_t bytes,
                             void* codes, std::size_t n) {
  kernels().unpack(g, cols, p, bytes, codes, n);
}
inline code_storage code_storage_of(stableqat::grid const& g) { return kernels().storage_of(g); }
inline std::size_t packed_size(stableqat::grid const& g, std::size_t rows, std::size_t cols) {
  return kernels().packed_size(g, rows, cols);
}
}  // namespace dispatched

}  // namespace stableqat::torch_adapter
