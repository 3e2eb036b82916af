// stableqat/exec/cuda/export.cuh: integer export on exec::cuda (nvcc only).
//
// quantize_to_codes and dequantize as element-wise grid-stride kernels over
// export_work.hpp's per-element functions (exec::seq's formulas), on the
// policy's stream; asynchronous like fake_quantize. x (quantize_to_codes) and
// y (dequantize) may be float, double, or __half / __nv_bfloat16 computed in
// float. pack_codes / unpack_codes stay host functions: pack on the host
// (after copying the codes there) and copy the packed bytes to the device.
#pragma once

#if !defined(__CUDACC__)
#error "stableqat/exec/cuda/export.cuh is CUDA code: compile it with nvcc"
#endif

#include <cuda_runtime_api.h>

#include <cstddef>
#include <type_traits>

#include "../../core/codes.hpp"
#include "../../quantizer.hpp"
#include "../export_plan.hpp"
#include "../policy.hpp"
#include "error.hpp"
#include "export_work.hpp"
#include "storage.hpp"

namespace stableqat::exec {

namespace cuda_detail {

/// Threads per block of the export kernels.
inline constexpr unsigned export_block_threads = 256;

template <bool WithOffsets, class E, class T, code_type C, class Levels>
__global__ void __launch_bounds__(export_block_threads) code_kernel(code_buffers<E, T, C> b, Levels levels) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < b.numel; i += stride) {
    code_element<WithOffsets>(b, i, levels);
  }
}

template <bool WithOffsets, class E, class T, class Levels>
__global__ void __launch_bounds__(export_block_threads) dequantize_kernel(dequantize_buffers<E, T> b, Levels levels) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < b.numel; i += stride) {
    dequantize_element<WithOffsets>(b, i, levels);
  }
}

/// Blocks for numel elements: one element per thread up to a cap (the grid
/// strides past it; results do not depend on the grid size).
inline unsigned export_blocks(std::size_t numel) noexcept {
  constexpr std::size_t max_blocks = std::size_t{1} << 16;
  const std::size_t blocks = (numel + export_block_threads - 1) / export_block_threads;
  return static_cast<unsigned>(blocks < max_blocks ? blocks : max_blocks);
}

}  // namespace cuda_detail

/// exec::cuda: quantize_to_codes and dequantize kernels on the policy's
/// stream (arguments validated by the front-end, through backend<cuda_policy>'s
/// hooks: memory kind, host copy of the steps).
template <>
struct export_backend<cuda_policy> {
  template <real_scalar T, class S, code_type C, class E>
    requires storage_for<E, T>
  static void quantize_to_codes(cuda_policy const& policy, quantizer<T, S> const& q,
                                code_arguments<T, C, E> const& a) {
    const cuda_detail::code_buffers<E, T, C> b{a.x.data(), a.steps.data(), a.has_offsets ? a.offsets.data() : nullptr,
                                               a.codes.data(),  a.x.size(),     q.layout(),
                                               static_cast<T>(nan_code(q.grid()))};
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      using Levels = std::remove_cvref_t<decltype(levels)>;
      cuda_detail::code_kernel<decltype(with_offsets)::value, E, T, C, Levels>
          <<<cuda_detail::export_blocks(b.numel), cuda_detail::export_block_threads, 0, policy.stream>>>(b, levels);
      cuda_detail::check_cuda(cudaGetLastError(), "stableqat::quantize_to_codes", "launching code_kernel");
    });
  }

  template <real_scalar T, class S, class E>
    requires storage_for<E, T>
  static void dequantize(cuda_policy const& policy, quantizer<T, S> const& q, dequantize_arguments<T, E> const& a) {
    const cuda_detail::dequantize_buffers<E, T> b{a.packed.data(),
                                                  a.cols,
                                                  packed_row_bytes(a.cols, a.field.bits),
                                                  a.field.bits,
                                                  a.field.is_signed,
                                                  a.steps.data(),
                                                  a.has_offsets ? a.offsets.data() : nullptr,
                                                  a.y.data(),
                                                  a.y.size(),
                                                  q.layout()};
    visit_kernel<T>(q.grid(), a.has_offsets, [&](auto const& levels, auto with_offsets) {
      using Levels = std::remove_cvref_t<decltype(levels)>;
      cuda_detail::dequantize_kernel<decltype(with_offsets)::value, E, T, Levels>
          <<<cuda_detail::export_blocks(b.numel), cuda_detail::export_block_threads, 0, policy.stream>>>(b, levels);
      cuda_detail::check_cuda(cudaGetLastError(), "stableqat::dequantize", "launching dequantize_kernel");
    });
  }
};

}  // namespace stableqat::exec
