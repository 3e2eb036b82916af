// stableqat/exec/export_plan.hpp: what the integer-export backends receive and
// how they cut the work.
//
// quantize_to_codes and dequantize are element-wise (no reductions): a
// backend loops over runs of elements sharing one step (for_each_step_run);
// since no element's result depends on its neighbours, every cut of the work
// (exec::simd's chunks, exec::par's threads, exec::cuda's grid) gives the same bits.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "../core/codes.hpp"
#include "../core/layout.hpp"
#include "../core/math.hpp"
#include "policy.hpp"

namespace stableqat::exec {

/// Buffers of quantize_to_codes: codes[i] = code of x[i]. `offsets` is used
/// only when has_offsets. x is stored as E (exec/storage.hpp): T, or on
/// exec::cuda a 16-bit float computed in T = float.
template <real_scalar T, code_type C, class E = T>
struct code_arguments {
  std::span<const E> x;
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<C> codes;
  bool has_offsets = false;
};

/// Buffers of dequantize: y[i] = s * level(code i) + b with the codes packed in
/// rows of `cols` fields of `field.bits` bits (packed.size() == rows * packed_row_bytes).
/// y is stored as E, as x in code_arguments (computed in T, rounded once).
template <real_scalar T, class E = T>
struct dequantize_arguments {
  std::span<const std::uint8_t> packed;
  std::size_t cols = 1;
  code_field field{2, true};
  std::span<const T> steps;
  std::span<const T> offsets;
  std::span<E> y;
  bool has_offsets = false;
};

/// export_backend<Policy> provides static quantize_to_codes(policy, q, code_arguments)
/// and dequantize(policy, q, dequantize_arguments). The backend headers
/// (export_seq.hpp, export_simd.hpp, cuda/export.cuh) specialise it. The
/// front-end reaches device memory through backend<Policy>'s hooks
/// (exec/policy.hpp: check_memory with these argument structs, read_on_host).
template <class Policy>
struct export_backend {
  static_assert(!std::is_same_v<Policy, simd_policy> && !std::is_same_v<Policy, parallel_policy>,
                "integer export on exec::simd / exec::par needs #include <stableqat/exec/export_simd.hpp> "
                "(or <stableqat/stableqat.hpp>) and xsimd");
  static_assert(!std::is_same_v<Policy, cuda_policy>,
                "integer export on exec::cuda needs #include <stableqat/cuda.cuh> in a .cu file compiled by nvcc");
};

namespace export_detail {

/// Splits elements [begin, end) of a tensor into runs sharing one step:
/// f(k, run_begin, run_end) with k = layout.step_index(i) for every i of the run.
/// per_column runs are single elements.
template <class F>
void for_each_step_run(step_layout const& layout, std::size_t begin, std::size_t end, F&& f) {
  switch (layout.type()) {
    case step_layout::kind::per_tensor:
      if (begin < end) {
        f(std::size_t{0}, begin, end);
      }
      return;
    case step_layout::kind::per_column:
      for (std::size_t i = begin; i < end; ++i) {
        f(layout.step_index(i), i, i + 1);
      }
      return;
    default: {
      const std::size_t extent = layout.extent();
      for (std::size_t i = begin; i < end;) {
        const std::size_t k = i / extent;
        const std::size_t stop = std::min(end, (k + 1) * extent);
        f(k, i, stop);
        i = stop;
      }
    }
  }
}

}  // namespace export_detail
}  // namespace stableqat::exec
